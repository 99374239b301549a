// Launchers for the CUDA kernels behind CudaBackend. This header is plain C++
// (no CUDA syntax, no fmt) so that cuda_backend.cc is compiled by the host
// compiler and the .cu files never parse the project's fmt/spdlog headers.
// Every launcher only enqueues work on `stream`; the caller checks
// cudaGetLastError() afterwards. Pointers are device pointers; shapes are
// validated by the caller.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace mimo::cuda {

// ---- elementwise.cu -------------------------------------------------------
// cudaSuccess when this build has machine code (or PTX) the current device
// can run; cudaErrorNoKernelImageForDevice when it was built for another GPU.
cudaError_t probe_kernels();
// table is F32 (bf16=false) or BF16 [V, H]; ids outside [0, V) give zero rows
// (the host validates ids before a step; a kernel cannot throw).
void embedding(const int32_t* ids, int64_t T, const void* table, bool bf16, int64_t V, int64_t H, float* out,
               cudaStream_t s);
void rms_norm(const float* x, const void* w, bool w_bf16, float eps, int64_t T, int64_t H, float* out,
              cudaStream_t s);
void add(float* x, const float* y, int64_t n, cudaStream_t s);
// inv_freq [rot_dim / 2] is computed on the host exactly as the CPU does.
void rope(float* x, const int32_t* pos, const float* inv_freq, int64_t T, int64_t H, int64_t D, int rot_dim,
          cudaStream_t s);
// k [T, nkv, D], v [T, nkv, Dv]; caches [nkv, n_slots, D | Dv], F32 or BF16.
void store_kv(const float* k, const float* v, float v_scale, const int32_t* slots, int64_t T, int64_t nkv, int64_t D,
              int64_t Dv, int64_t n_slots, void* kc, void* vc, bool bf16, cudaStream_t s);
// out[T, I] = silu(gu[:, :I]) * gu[:, I:]; when rows_dev is set, only the
// first *rows_dev rows are computed (MoE: the row count lives on the device).
void silu_mul(const float* gu, int64_t T, int64_t I, float* out, const int32_t* rows_dev, cudaStream_t s);
void gather_rows(const void* x, int64_t n_rows, int64_t row_bytes, const int32_t* rows, int64_t R, void* out,
                 cudaStream_t s);
void argmax(const float* x, int64_t R, int64_t V, int32_t* out, cudaStream_t s);
// One token per row (ops/sampling.h, verify_row): params [R, 4] (temperature,
// top_p, top_k, min_p), drafts [R] (-1: none), u [R, 2] (accept, draw).
void sample(const float* logits, int64_t R, int64_t V, const float* params, const int32_t* drafts, const float* u,
            int32_t* out, cudaStream_t s);
void f32_to_bf16(const float* x, int64_t n, uint16_t* out, cudaStream_t s);
void bf16_to_f32(const uint16_t* x, int64_t n, float* out, cudaStream_t s);

// ---- gemv.cu --------------------------------------------------------------
// out[M, N] = x[M, K] @ w[N, K]^T with bf16 w and fp32 x, fp32 accumulation;
// for decode and verify batches, where reading w is the whole cost. Rows
// beyond 8 go in tiles of 8 that re-read w from L2; each output is summed
// in an order that does not depend on M (batch invariance for M <= 64).
constexpr int kGemvMaxM = 64;
void gemv_bf16(const float* x, int64_t M, int64_t K, const uint16_t* w, int64_t N, float* out, cudaStream_t s);
// FP8 E4M3 weights with per-row block scales, the CPU's layout: w[n][k] =
// fp8(q[n K + k]) * s[n lds + k / block], block a multiple of 8.
struct Fp8Rows {
  const uint8_t* q = nullptr;
  const float* s = nullptr;
  int64_t lds = 0;
  int block = 0;
};
// The same product as gemv_bf16 (same order and launch shapes) on FP8 rows.
void gemv_fp8(const float* x, int64_t M, int64_t K, const Fp8Rows& w, int64_t N, float* out, cudaStream_t s);
// Rows [n0, n1) of FP8 weights as bf16 (fp8 * scale rounded to nearest even),
// row-major [n1 - n0, K], for the tensor-core path.
void fp8_to_bf16(const Fp8Rows& w, int64_t n0, int64_t n1, int64_t K, uint16_t* out, cudaStream_t s);

// ---- attention.cu ---------------------------------------------------------
struct AttnArgs {
  const float* q = nullptr;      // [T, H, D]
  const void* k_cache = nullptr; // [nkv, n_slots, D] (kv_cache.h)
  const void* v_cache = nullptr; // [nkv, n_slots, Dv]
  int64_t n_slots = 0;
  bool kv_bf16 = false;
  const float* sinks = nullptr;  // [H] or null
  const int32_t *positions = nullptr, *q_start = nullptr, *kv_len = nullptr, *table_start = nullptr,
                *table = nullptr;
  int num_seqs = 0, max_q_len = 0, max_kv_len = 0;
  int T = 0, H = 0, nkv = 0, D = 0, Dv = 0;
  int window = 0;
  float scale = 1.0f;
  float* out = nullptr;  // [T, H, Dv]
  // Split-KV (flash-decoding): when nsplit > 1, partial results go to
  // part_acc [nsplit, T, H, Dv] and part_ml [nsplit, T, H, 2] and a second
  // kernel merges them.
  int nsplit = 1;
  float* part_acc = nullptr;
  float* part_ml = nullptr;
};
constexpr int kAttnMaxHeadDim = 256;
// How many KV splits a step uses: steps of at most 8 rows per sequence split
// keys in absolute 256-key chunks (enough splits for the widest block, at
// least 2), unless the partial sums would pass 512 MB; other steps do not
// split. A caller that forces nsplit > 1 must give at least this many.
int attention_splits(const AttnArgs& a);
// Dynamic shared memory the attention kernel needs; the backend raises the
// kernel's limit once (attention_prepare).
void attention_prepare();
void attention(const AttnArgs& a, cudaStream_t s);

// ---- moe.cu ---------------------------------------------------------------
void moe_route(const float* logits, const float* bias, int64_t T, int E, int K, int n_group, int topk_group,
               bool norm_topk_prob, float scaling, int32_t* ids, float* weights, cudaStream_t s);

struct MoEArgs {
  const float* x = nullptr;        // [T, H]
  const int32_t* ids = nullptr;    // [T, K]
  const float* weights = nullptr;  // [T, K]
  const void* gate_up = nullptr;   // [E, 2I, H]
  const void* down = nullptr;      // [E, H, I]
  bool bf16 = false;
  // FP8 experts: per-row block scales, [E, 2I, ceil(H / block)] and [E, H, ceil(I / block)].
  bool fp8 = false;
  const float* gate_up_scales = nullptr;
  const float* down_scales = nullptr;
  int block = 0;
  int64_t T = 0, H = 0, I = 0;
  int K = 0, E = 0, expert_begin = 0;
  float* out = nullptr;  // [T, H]
};
// Scratch the experts need, in bytes (a bound computed from T, K, H, I, E).
size_t moe_scratch_bytes(const MoEArgs& a);
void moe_experts(const MoEArgs& a, void* scratch, cudaStream_t s);

}  // namespace mimo::cuda
