// CPU kernels behind CpuBackend. Each has a portable version; the hot ones
// have an AVX2+FMA version picked at run time (cpu_features()), and the
// matrix products an AVX-512 one on top. AVX2 code lives only in the
// *_avx2.cc files, AVX-512 code only in the *_avx512.cc files: the only ones
// built with those instruction sets.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/tensor.h"

namespace mimo::cpu {

struct CpuFeatures {
  bool avx2_fma = false;  // AVX2 + FMA + F16C
  bool avx512 = false;    // AVX-512 F/BW/DQ/VL, with avx2_fma
  bool amx = false;       // AMX-BF16 tiles granted by the kernel, with avx512
};
const CpuFeatures& cpu_features();
// Tests run the narrower paths on wider machines through this (it never
// enables what the CPU lacks); nullptr restores the detected features. Not
// thread-safe: call between kernels only.
void override_cpu_features(const CpuFeatures* f);
// Applies MIMOSERVE_CPU_ISA (amx, avx512, avx2 or portable: the widest path to
// use) when it is set; an unknown value throws naming it. Called once by
// every CpuBackend; benchmarks use it to compare paths on one machine.
void apply_cpu_isa_env();
// "amx", "avx512", "avx2+fma" or "portable": the path the kernels take now.
const char* cpu_isa_name();

// ---- Matrix products: out[m, n] = sum_k x[m, k] * w[n, k] ----------------
//
// Batch invariance: with AVX2 every output is summed in ONE order whatever
// kernel computes it and however many rows share the call: eight FMA chains
// (chain r takes k = r, r+8, ... below K8 = K - K % 8), combined as
// ((c0+c4)+(c2+c6))+((c1+c5)+(c3+c7)), then the K % 8 last terms by FMA in
// order. (The portable path has its own single order, also independent of M.)
//
// Two kernels produce it. Small M (decode) is memory-bound: a dot-product
// form that streams weight rows once, bf16 widened in registers. Larger M is
// compute-bound: a GEMM on packed operands (k stored chain-class-major, so a
// 6x16 broadcast micro-kernel runs each chain class over contiguous data).
constexpr int kMR = 6, kNR = 16;
// M at and above which the packed GEMM wins over the dot-product form:
// below it, widening and transposing weights for the GEMM costs more than it
// saves. For bf16 1024-deep weights the two cross near M = 40 with AVX2 (Zen
// 3), and near M = 80-88 with AVX-512 since the dot form's groups read
// their slabs from L2 (linear_tiles.inc, rows_paced; 2 threads, bf16 row
// tiles: 4096 x 1024 in cache M = 64 dot 1.96 ms vs GEMM 2.10, M = 80 2.52
// vs 2.49, M = 96 3.08 vs 2.90; 1024 x 1024 from DRAM M = 64 0.55 vs 0.62,
// M = 80 0.65 vs 0.71; 1024 x 2048 row-major M = 64 1.16 vs 1.10).
constexpr int64_t kGemmMinM = 40, kGemmMinMAvx512 = 80;

// Row tiles: the layout CpuBackend::prepare_weight gives fp32 and bf16
// weights [N, K] with N and K multiples of 8 and rows of at most
// kTiledMaxRowBytes: kTileRows rows interleaved per 8 values of k, so row
// n's values k..k+8 (k a multiple of 8) sit at
//   (n / 8) * 8 K + (k / 8) * 64 + (n % 8) * 8
// ([N/8][K/8][8 rows][8]). A decode step then reads each thread's weights as
// one or two sequential streams instead of one stream per row of a tile
// (rows of 2 KB or less are too short for the prefetcher to ramp up on;
// longer rows stream well as they are, and 2-16 rows of x read them 6-25%
// slower from tiles); the arithmetic (and so every bit of the result) is the
// row-major one. The entry points below take such a matrix as ldw == kRowTiles.
constexpr int64_t kTileRows = Tensor::kRowTileRows, kRowTiles = 0, kTiledMaxRowBytes = 2048;
// Offset (in elements) of row n's first value in a row-tiled matrix of depth
// K, and the step between its consecutive runs of 8.
inline int64_t tiled_row_offset(int64_t n, int64_t K) { return n / kTileRows * kTileRows * K + n % kTileRows * 8; }
constexpr int64_t kTiledRunStep = 8 * kTileRows;

// AMX tiles: the layout CpuBackend::prepare_weight gives bf16 weights [N,
// K] with N and K multiples of 32 when the AMX path runs: 1 KB tiles of
// kAmxRows rows x 32 k, pair-interleaved (the 32-bit word p * 16 + r holds
// row r's values k = 2p, 2p + 1), the two tiles of a 32-row pair side by
// side per 32 k, in k order, so row n's value k sits at
//   (n / 32) * 32 K + (k / 32) * 1024 + (n / 16 % 2) * 512 + (k % 32 / 2) * 32 + (n % 16) * 2 + k % 2
// ([N/32][K/32][2][16 pairs][16 rows][2]): 32 rows are one sequential
// stream, and a tile is one TDPBF16PS B operand. Only amx::linear reads it
// (every product of such a weight goes there, whatever M; its sums are not
// the AVX2 order above, but they are batch invariant too, see
// linear_amx.cc).
constexpr int64_t kAmxRows = Tensor::kAmxTileRows, kAmxTileElems = 512;
inline int64_t amx_tile(int64_t n, int64_t k, int64_t K) {
  return n / 32 * 32 * K + k / 32 * 2 * kAmxTileElems + n / 16 % 2 * kAmxTileElems;
}
inline int64_t amx_offset(int64_t n, int64_t k, int64_t K) {
  return amx_tile(n, k, K) + k % 32 / 2 * 32 + n % kAmxRows * 2 + k % 2;
}
// bf16 elements of one 16-row block of x packed for amx::linear: per 32 k
// a hi and a lo tile [16 rows][32 k] (x = hi + lo, each bf16; rows past M
// are left unwritten: the kernel shapes its tiles to the live rows).
inline int64_t amx_block_elems(int64_t K) { return K * 32; }
// Floats (the unit of the packing scratch) of x [M, K] packed for AMX.
inline int64_t amx_packed_floats(int64_t M, int64_t K) { return (M + 15) / 16 * amx_block_elems(K) / 2; }

namespace amx {
// Asks Linux for the AMX tile state (once per process); false: no AMX.
bool enable();
// Packs 16-row blocks [b0, b1) of x [M, K] (K a multiple of 32) into px
// (block b at b * amx_block_elems(K)); the second form gathers rows
// x[rows[0]], x[rows[1]], ...
void pack_x(const float* x, int64_t ldx, int64_t M, int64_t K, int64_t b0, int64_t b1, uint16_t* px);
void pack_x_rows(const float* x, int64_t ldx, const int32_t* rows, int64_t M, int64_t K, int64_t b0, int64_t b1,
                 uint16_t* px);
// out[m, n] = x[m] . w[n] for m < M, n in [n0, n1) (multiples of 16; `out`
// points at column 0): packed x against an AMX-tiled bf16 w.
void linear(const uint16_t* px, int64_t M, int64_t K, const uint16_t* w, int64_t n0, int64_t n1, float* out,
            int64_t ldo);
}  // namespace amx

// Floats of one packed 6-row sliver / 16-row weight panel of depth K.
inline int64_t sliver_floats(int64_t K) { return K * kMR; }
inline int64_t panel_floats(int64_t K) { return K * kNR; }
// Floats of packed A for an M x K matrix: ceil(M / kMR) slivers.
inline int64_t packed_a_floats(int64_t M, int64_t K) { return (M + kMR - 1) / kMR * sliver_floats(K); }

// FP8 E4M3 weights with per-row block scales: w[n][k] = fp8(q[n ld + k]) *
// s[n lds + k / block], block a multiple of 8. Every kernel computes that
// fp32 weight with one rounding and then runs the fp32 order above, so an
// FP8 product equals the fp32 product with the dequantised matrix exactly.
struct Fp8Matrix {
  const uint8_t* q = nullptr;
  int64_t ld = 0;
  const float* s = nullptr;
  int64_t lds = 0;
  int64_t block = 0;
};

// Dispatching single-thread entry points: the dot-product form (any M; meant
// for M below use_gemm's threshold).
void linear_f32(const float* x, int64_t ldx, const float* w, int64_t ldw, float* out, int64_t ldo, int64_t M,
                int64_t n0, int64_t n1, int64_t K);
void linear_bf16(const float* x, int64_t ldx, const uint16_t* w, int64_t ldw, float* out, int64_t ldo, int64_t M,
                 int64_t n0, int64_t n1, int64_t K);
void linear_fp8(const float* x, int64_t ldx, const Fp8Matrix& w, float* out, int64_t ldo, int64_t M, int64_t n0,
                int64_t n1, int64_t K);
// Row n of w in fp32 (K elements).
void dequant_fp8_row(const Fp8Matrix& w, int64_t n, int64_t K, float* dst);

namespace avx2 {
void linear_f32(const float* x, int64_t ldx, const float* w, int64_t ldw, float* out, int64_t ldo, int64_t M,
                int64_t n0, int64_t n1, int64_t K);
void linear_bf16(const float* x, int64_t ldx, const uint16_t* w, int64_t ldw, float* out, int64_t ldo, int64_t M,
                 int64_t n0, int64_t n1, int64_t K);
void linear_fp8(const float* x, int64_t ldx, const Fp8Matrix& w, float* out, int64_t ldo, int64_t M, int64_t n0,
                int64_t n1, int64_t K);
void dequant_fp8_row(const Fp8Matrix& w, int64_t n, int64_t K, float* dst);

// Packs slivers [s0, s1) of x [M, K] into pa (sliver s at s * sliver_floats(K)).
void pack_a(const float* x, int64_t ldx, int64_t M, int64_t K, int64_t s0, int64_t s1, float* pa);
// The same for the rows x[rows[0]], x[rows[1]], ... (a gather).
void pack_a_rows(const float* x, int64_t ldx, const int32_t* rows, int64_t M, int64_t K, int64_t s0, int64_t s1,
                 float* pa);
// Floats of the per-thread weight-panel buffer gemm_packed needs.
size_t gemm_wbuf_floats(int64_t K);
// Columns one weight-panel group covers (work split granularity).
int64_t gemm_group_cols(int64_t K);
// out rows of slivers [s0, s1) (rows < M), columns [n0, n1) = packed A times
// w^T; `out` points at column 0. wbuf: gemm_wbuf_floats(K) floats, 32-byte
// aligned (thread_wbuf in matmul.h).
void gemm_packed(const float* pa, int64_t M, int64_t K, int64_t s0, int64_t s1, const float* w, int64_t ldw,
                 int64_t n0, int64_t n1, float* out, int64_t ldo, float* wbuf);
void gemm_packed(const float* pa, int64_t M, int64_t K, int64_t s0, int64_t s1, const uint16_t* w, int64_t ldw,
                 int64_t n0, int64_t n1, float* out, int64_t ldo, float* wbuf);
void gemm_packed(const float* pa, int64_t M, int64_t K, int64_t s0, int64_t s1, const Fp8Matrix& w, int64_t n0,
                 int64_t n1, float* out, int64_t ldo, float* wbuf);
// The GEMM's inner step (gemm_avx2.cc): one packed 6-row sliver against a
// group of packed weight panels over one depth block, each output summed in
// the backend's order. Both ISAs implement it, with the same bits.
struct SliverPanels {
  const float* a = nullptr;  // the (first) sliver, whole depth, chain-class-major
  int nsl = 1;               // consecutive slivers in this job: 1, or 2 (AVX-512 only)
  int64_t sx = 0;            // floats from one sliver to the next
  int64_t kq = 0, kt = 0;    // K / 8, K % 8
  int64_t q0 = 0, nq = 0;    // this block's chain steps
  const float* w = nullptr;  // this block's packed panels, `sw` floats apart
  int64_t sw = 0, panels = 0, nc = 0;  // nc: columns the panels cover
  float* parts = nullptr;  // 8 partial 6x16 tiles per panel and sliver kept across blocks; null with one block
  bool resume = false, last = true;  // resume: continue the chains in parts; last: combine into out
  float* out = nullptr;              // the (first) sliver's first row, the group's first column
  int64_t ldo = 0;
  int mr = 0;  // live rows of the last sliver (the others are whole)
};
void sliver_panels(const SliverPanels& j);
float dot_f32(const float* a, const float* b, int64_t n);
float dot_bf16(const float* a, const uint16_t* b, int64_t n);
void axpy_f32(float a, const float* x, float* y, int64_t n);  // y += a x
void axpy_bf16(float a, const uint16_t* x, float* y, int64_t n);
}  // namespace avx2

// The same kernels with 512-bit vectors, bit-identical results to avx2's:
// linear_* (each vector holds two weight rows' eight chains) and the GEMM's
// sliver step (16 columns per vector).
namespace avx512 {
void linear_f32(const float* x, int64_t ldx, const float* w, int64_t ldw, float* out, int64_t ldo, int64_t M,
                int64_t n0, int64_t n1, int64_t K);
void linear_bf16(const float* x, int64_t ldx, const uint16_t* w, int64_t ldw, float* out, int64_t ldo, int64_t M,
                 int64_t n0, int64_t n1, int64_t K);
void linear_fp8(const float* x, int64_t ldx, const Fp8Matrix& w, float* out, int64_t ldo, int64_t M, int64_t n0,
                int64_t n1, int64_t K);
// avx2::sliver_panels with a 12x32 micro-kernel (two slivers, two panels per pass).
void sliver_panels(const avx2::SliverPanels& j);
}  // namespace avx512

// The query rows [row0, row0 + nrows) of one sequence that share kv head kh:
// out[row, kh*G + g] = softmax(q k^T * scale [+ sink]) v over the keys each
// row sees (positions lo..hi, lo = pos - window + 1 when windowed).
// The element type of a KV cache: fp32, bf16, or FP8 E4M3 (--kv-cache-dtype
// fp8_e4m3: values cast as they are, saturating at +-448, as SGLang's cache
// without scales).
enum class KvType : uint8_t { F32, BF16, FP8 };

struct AttnRows {
  const float* q = nullptr;  // [T, H, D]
  const void* k_cache = nullptr;  // kv head kh's plane of the cache: [slots, D | Dv], bf16 or fp32
  const void* v_cache = nullptr;
  KvType kv = KvType::F32;
  int H = 0, nkv = 0, D = 0, Dv = 0, kh = 0;
  const int32_t* slots = nullptr;  // slot of each key position of the sequence
  const int32_t* pos = nullptr;    // [T] positions of the rows
  int64_t row0 = 0, nrows = 0, kv_len = 0;
  int window = 0;
  float scale = 1.0f;
  const float* sinks = nullptr;  // [H] or null
  float* out = nullptr;          // [T, H, Dv]
};
namespace avx2 {
void attention_rows(const AttnRows& a);
}

// The next key block's K and V rows, for attn_scores to prefetch into L2 a
// few at a time while it computes.
struct AttnPrefetch {
  const void* const* k = nullptr;
  const void* const* v = nullptr;
  int64_t n = 0, kbytes = 0, vbytes = 0;
};
// avx2::attention_rows' direct products with 512-bit vectors, same bits:
// S[i][j] = q[i] . k[j] for R <= 6 queries (one sliver) against nk cached
// key rows (bf16 or fp32), and o[i][:Dv] += sum over j of p[j][i] v[j] (p
// packed [key][kMR]; Dv a multiple of 16).
namespace avx512 {
void attn_scores(int R, const float* const* q, const void* const* k, KvType kv, int64_t nk, int64_t D, float* S,
                 int64_t ldS, const AttnPrefetch& next);
void attn_pv(int R, int64_t nk, const float* p, const void* const* v, KvType kv, int64_t Dv, float* o, int64_t ldo,
             const AttnPrefetch& next);
}  // namespace avx512

// Dot products and axpy (dispatching).
float dot(const float* a, const float* b, int64_t n);
float dot(const float* a, const uint16_t* b, int64_t n);
float dot(const float* a, const uint8_t* b, int64_t n);  // FP8 E4M3 (portable only)
void axpy(float a, const float* x, float* y, int64_t n);
void axpy(float a, const uint16_t* x, float* y, int64_t n);
void axpy(float a, const uint8_t* x, float* y, int64_t n);  // FP8 E4M3 (portable only)

// ---- Element-wise and row kernels (dispatching) ---------------------------
// out[i] = w[i] * x[i] / sqrt(mean(x^2) + eps) for one row of n; w F32 or BF16.
void rms_norm_row(const float* x, const void* w, bool w_bf16, float eps, float* out, int64_t n);
// out[i] = silu(g[i]) * u[i]
void silu_mul_row(const float* g, const float* u, float* out, int64_t n);
void add_row(float* x, const float* y, int64_t n);
// dst = bf16(src * scale), round to nearest even.
void to_bf16_row(const float* src, float scale, uint16_t* dst, int64_t n);
// dst = fp8 e4m3(src * scale), as f32_to_fp8e4m3 (nearest even, saturating).
void to_fp8_row(const float* src, float scale, uint8_t* dst, int64_t n);
void to_f32_row(const uint16_t* src, float* dst, int64_t n);
// NeoX rotation of one head: x[i], x[i + half] by (cos[i], sin[i]).
void rope_row(float* x, const float* cs, const float* sn, int half);

namespace avx2 {
void rms_norm_row(const float* x, const void* w, bool w_bf16, float eps, float* out, int64_t n);
void silu_mul_row(const float* g, const float* u, float* out, int64_t n);
void add_row(float* x, const float* y, int64_t n);
void to_bf16_row(const float* src, float scale, uint16_t* dst, int64_t n);
void to_fp8_row(const float* src, float scale, uint8_t* dst, int64_t n);
void to_f32_row(const uint16_t* src, float* dst, int64_t n);
void rope_row(float* x, const float* cs, const float* sn, int half);
// out[i] = exp(x[i]): relative error < 4e-7; below -87.3 (and -inf) 0.
void exp_row(const float* x, float* out, int64_t n);
}  // namespace avx2

}  // namespace mimo::cpu
