// Packed GEMM for AVX2+FMA (built with -mavx2 -mfma; reached only after
// cpu_features() says so): out = x w^T, x [M, K] fp32, w [N, K] fp32, bf16
// or FP8 with block scales.
//
// Batch invariance fixes the arithmetic. Every product in this backend sums
// an output the way the weight-streaming kernel does (linear_avx2.cc): eight
// FMA chains, chain r over k = r, r+8, r+16, ... (k < K8 = K rounded down to
// 8), then ((c0+c4)+(c2+c6))+((c1+c5)+(c3+c7)), then the last K % 8 terms by
// FMA in order. So a row's result never depends on how many rows share the
// call or which kernel ran it.
//
// The GEMM gets that order at full speed by packing the k axis "residue
// major": packed row data is [r][q] with k = 8q + r. The 6x16 micro-kernel
// (6 broadcast x values, 2 vectors of w, 12 accumulators) then runs one
// chain class r at a time over contiguous memory, leaving eight partial
// 6x16 tiles in L1 that are combined in the tree order above.
//
// Blocking: x is packed once per call into 6-row slivers; each work item
// packs a group of 16-column weight panels (bf16 widened once, here) small
// enough to stay in L2 and runs every sliver against it.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "ops/cpu/gemm_avx2_impl.h"
#include "ops/cpu/kernels.h"
#include "ops/cpu/matmul.h"

namespace mimo::cpu::avx2 {

namespace {

// Depth is cut into blocks of kBlockQ chain steps (8 kBlockQ of k), the
// chains of a tile resuming from eight partial tiles kept between blocks.
// Measured on Zen 3, blocking at 1024 or 2048 was slower than none up to
// K = 4096 (the partial tiles cost more than the L2 misses they save), so
// only deeper products are cut.
constexpr int64_t kBlockQ = 512;

inline int64_t block_panel_floats(int64_t K) { return (8 * std::min<int64_t>(kBlockQ, K / 8) + K % 8) * kNR; }

// Panels per group: as many as fit in ~256 KB (the group is reread for
// every sliver, so it should stay in L2).
inline int64_t group_panels(int64_t K) {
  return std::max<int64_t>(1, (int64_t(256) << 10) / (block_panel_floats(K) * int64_t(sizeof(float))));
}

// Weight rows for packing: fp32 or bf16 rows are read in place; FP8 rows are
// dequantised (dequant_fp8_row: the same fp32 weights the dot-product kernel
// computes) into a per-thread buffer, one panel's rows at a time.
template <typename W>
struct PlainPanels {
  const W* w;
  int64_t ldw;
  void pack(int64_t n, int rows, int64_t K, int64_t q0, int64_t q1, bool last, float* dst) const {
    pack_panel([&](int i) { return w + (n + i) * ldw; }, rows, K, q0, q1, last, dst);
  }
};
template <typename W>
struct TiledPanels {
  const W* w;
  void pack(int64_t n, int rows, int64_t K, int64_t q0, int64_t q1, bool, float* dst) const {
    pack_panel([&](int i) { return w + tiled_row_offset(n + i, K); }, rows, K, q0, q1, false, dst, kTiledRunStep);
  }
};
struct Fp8Panels {
  const Fp8Matrix& w;
  void pack(int64_t n, int rows, int64_t K, int64_t q0, int64_t q1, bool last, float* dst) const {
    thread_local FloatBuffer rowbuf;
    float* r = rowbuf.get(size_t(kNR * K));
    for (int i = 0; i < rows; i++) avx2::dequant_fp8_row(w, n + i, K, r + i * K);
    pack_panel([&](int i) { return static_cast<const float*>(r + i * K); }, rows, K, q0, q1, last, dst);
  }
};

template <typename Panels>
void gemm_impl(const float* pa, int64_t M, int64_t K, int64_t s0, int64_t s1, const Panels& w, int64_t n0, int64_t n1,
               float* out, int64_t ldo, float* wbuf) {
  const int64_t kq = K / 8, kt = K % 8, SX = sliver_floats(K), SW = block_panel_floats(K);
  const int64_t gp = group_panels(K);
  const int64_t nkb = std::max<int64_t>(1, (kq + kBlockQ - 1) / kBlockQ);
  thread_local FloatBuffer part_buf;
  float* parts = nkb > 1 ? part_buf.get(size_t((s1 - s0) * gp * 8 * kMR * kNR)) : nullptr;
  const bool wide = cpu_features().avx512;
  for (int64_t nb = n0; nb < n1; nb += gp * kNR) {
    const int64_t nc = std::min<int64_t>(gp * kNR, n1 - nb);
    const int64_t panels = (nc + kNR - 1) / kNR;
    for (int64_t kb = 0; kb < nkb; kb++) {
      const int64_t q0 = kb * kBlockQ, q1 = std::min(kq, q0 + kBlockQ);
      const bool last = kb == nkb - 1;
      for (int64_t p = 0; p < panels; p++)
        w.pack(nb + p * kNR, int(std::min<int64_t>(kNR, nc - p * kNR)), K, q0, q1, last, wbuf + p * SW);
      // Slivers one at a time (AVX2) or two (AVX-512: 24 of its 32 registers hold a 12x32 tile).
      for (int64_t s = s0; s < s1;) {
        SliverPanels j;
        j.nsl = wide && s + 1 < s1 ? 2 : 1;
        j.a = pa + s * SX, j.sx = SX, j.kq = kq, j.kt = kt, j.q0 = q0, j.nq = q1 - q0;
        j.w = wbuf, j.sw = SW, j.panels = panels, j.nc = nc;
        j.parts = parts ? parts + (s - s0) * panels * 8 * kMR * kNR : nullptr;
        j.resume = kb > 0, j.last = last;
        j.out = out + s * kMR * ldo + nb, j.ldo = ldo;
        j.mr = int(std::min<int64_t>(kMR, M - (s + j.nsl - 1) * kMR));
        if (wide) avx512::sliver_panels(j);
        else sliver_panels(j);
        s += j.nsl;
      }
    }
  }
}

}  // namespace

void sliver_panels(const SliverPanels& j) {
  MIMO_ASSERT(j.nsl == 1, "the AVX2 step takes one sliver at a time");
  using Part = float[kMR * kNR];
  alignas(32) float local[8][kMR * kNR];
  for (int64_t p = 0; p < j.panels; p++) {
    Part* part = j.parts ? reinterpret_cast<Part*>(j.parts) + p * 8 : local;
    const float* b = j.w + p * j.sw;
    for (int r = 0; r < 8; r++)
      ukernel_chain(j.nq, j.a + (r * j.kq + j.q0) * kMR, b + r * j.nq * kNR, part[r], j.resume);
    if (j.last)
      combine_6x16(part, j.kt, j.a + 8 * j.kq * kMR, b + 8 * j.nq * kNR, j.out + p * kNR, j.ldo, j.mr,
                   int(std::min<int64_t>(kNR, j.nc - p * kNR)));
  }
}

size_t gemm_wbuf_floats(int64_t K) { return size_t(group_panels(K) * block_panel_floats(K)); }
int64_t gemm_group_cols(int64_t K) { return group_panels(K) * kNR; }

void pack_a(const float* x, int64_t ldx, int64_t M, int64_t K, int64_t s0, int64_t s1, float* pa) {
  pack_a_impl([&](int64_t i) { return x + i * ldx; }, M, K, s0, s1, pa);
}

void pack_a_rows(const float* x, int64_t ldx, const int32_t* rows, int64_t M, int64_t K, int64_t s0, int64_t s1,
                 float* pa) {
  pack_a_impl([&](int64_t i) { return x + int64_t(rows[i]) * ldx; }, M, K, s0, s1, pa);
}

namespace {
// fp32 or bf16 weights, rows ldw elements apart or in row tiles (ldw == kRowTiles).
template <typename W>
void gemm_rows(const float* pa, int64_t M, int64_t K, int64_t s0, int64_t s1, const W* w, int64_t ldw, int64_t n0,
               int64_t n1, float* out, int64_t ldo, float* wbuf) {
  if (ldw == kRowTiles) gemm_impl(pa, M, K, s0, s1, TiledPanels<W>{w}, n0, n1, out, ldo, wbuf);
  else gemm_impl(pa, M, K, s0, s1, PlainPanels<W>{w, ldw}, n0, n1, out, ldo, wbuf);
}
}  // namespace

void gemm_packed(const float* pa, int64_t M, int64_t K, int64_t s0, int64_t s1, const float* w, int64_t ldw,
                 int64_t n0, int64_t n1, float* out, int64_t ldo, float* wbuf) {
  gemm_rows(pa, M, K, s0, s1, w, ldw, n0, n1, out, ldo, wbuf);
}
void gemm_packed(const float* pa, int64_t M, int64_t K, int64_t s0, int64_t s1, const uint16_t* w, int64_t ldw,
                 int64_t n0, int64_t n1, float* out, int64_t ldo, float* wbuf) {
  gemm_rows(pa, M, K, s0, s1, w, ldw, n0, n1, out, ldo, wbuf);
}
void gemm_packed(const float* pa, int64_t M, int64_t K, int64_t s0, int64_t s1, const Fp8Matrix& w, int64_t n0,
                 int64_t n1, float* out, int64_t ldo, float* wbuf) {
  gemm_impl(pa, M, K, s0, s1, Fp8Panels{w}, n0, n1, out, ldo, wbuf);
}

}  // namespace mimo::cpu::avx2
