// Skinny products for decode: out[M, N] = x[M, K] @ w[N, K]^T with M <= 64,
// bf16 weights and fp32 activations. Reading w is the whole cost, so each
// warp streams 4 weight rows with 16-byte loads (8 bf16 per lane) and reuses
// every activation it loads across those 4 rows; activations stay fp32 (no
// rounding of x, unlike the tensor-core path), so this matches the CPU's
// bf16 linear to fp32 rounding.
#include "ops/cuda/cuda_common.cuh"
#include "ops/cuda/cuda_kernels.h"
#include "ops/cuda/grouped_gemm.cuh"

namespace mimo::cuda {

namespace {

constexpr int kRowsPerWarp = 4, kWarps = 8;

__device__ __forceinline__ void unpack8(const uint4& v, float* f) {
  const uint32_t w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
  for (int i = 0; i < 4; i++) {
    f[2 * i] = __uint_as_float(w[i] << 16);            // lower address = low half
    f[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
  }
}

// The one summation order of every gemv-style kernel here: lane L takes the
// 8-wide chunks k = 8L, 8L + 256, ... of a row in ascending order (then
// warp_sum), whatever the number of activation rows. acc[m][r] accumulates
// xr[m] . wr[r] for the rows m < mc; needs K % 8 == 0 and 16-byte alignment.
template <int M, int UNROLL>
__device__ __forceinline__ void accumulate_vec(const float* const (&xr)[M], int mc,
                                               const uint16_t* const (&wr)[kRowsPerWarp], int64_t K, int lane,
                                               float (&acc)[M][kRowsPerWarp]) {
#pragma unroll(UNROLL)
  for (int64_t k = int64_t(lane) * 8; k < K; k += 32 * 8) {
    float wf[kRowsPerWarp][8];
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; r++) unpack8(__ldg(reinterpret_cast<const uint4*>(wr[r] + k)), wf[r]);
#pragma unroll
    for (int m = 0; m < M; m++) {
      if (m >= mc) break;
      float4 a = __ldg(reinterpret_cast<const float4*>(xr[m] + k));
      float4 b = __ldg(reinterpret_cast<const float4*>(xr[m] + k + 4));
      const float xv[8] = {a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w};
#pragma unroll
      for (int r = 0; r < kRowsPerWarp; r++)
#pragma unroll
        for (int j = 0; j < 8; j++) acc[m][r] = fmaf(xv[j], wf[r][j], acc[m][r]);
    }
  }
}

// Sums each accumulator over the warp; lane 0 writes out[m * ldo + n0 + r]
// for the rows m < mc and the weight rows that exist.
template <int M>
__device__ __forceinline__ void reduce_store(float (&acc)[M][kRowsPerWarp], int mc, int lane, int64_t n0, int64_t N,
                                             float* out, int64_t ldo) {
#pragma unroll
  for (int m = 0; m < M; m++)
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; r++) acc[m][r] = warp_sum(acc[m][r]);
  if (lane == 0)
#pragma unroll
    for (int m = 0; m < M; m++)
#pragma unroll
      for (int r = 0; r < kRowsPerWarp; r++)
        if (m < mc && n0 + r < N) out[m * ldo + n0 + r] = acc[m][r];
}

// TILED: the grid is (row tiles of M, weight blocks), row tiles fastest, so
// the blocks that share a weight block run together and all but the first
// read it from L2.
template <int M, bool VEC, bool TILED = false>
__global__ void __launch_bounds__(kWarps * 32, (M <= 6 ? 2 : 1)) gemv_bf16_kernel(const float* __restrict__ x, int64_t K,
                                                                 const uint16_t* __restrict__ w, int64_t N,
                                                                 float* __restrict__ out) {
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  if constexpr (TILED) {
    x += int64_t(blockIdx.x) * M * K;
    out += int64_t(blockIdx.x) * M * N;
  }
  const int64_t n0 = (int64_t(TILED ? blockIdx.y : blockIdx.x) * kWarps + warp) * kRowsPerWarp;
  if (n0 >= N) return;
  float acc[M][kRowsPerWarp];
#pragma unroll
  for (int m = 0; m < M; m++)
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; r++) acc[m][r] = 0.0f;
  // Rows past N re-read the last row (cheap, cached) instead of branching.
  const uint16_t* wr[kRowsPerWarp];
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; r++) wr[r] = w + (n0 + r < N ? n0 + r : N - 1) * K;

  if constexpr (VEC) {
    const float* xr[M];
#pragma unroll
    for (int m = 0; m < M; m++) xr[m] = x + m * K;
    accumulate_vec<M, (M <= 4 ? 2 : 1)>(xr, M, wr, K, lane, acc);  // two loads in flight per row for narrow M
  } else {
    for (int64_t k = lane; k < K; k += 32) {
      float wf[kRowsPerWarp];
#pragma unroll
      for (int r = 0; r < kRowsPerWarp; r++) wf[r] = bf16_bits_to_f32(wr[r][k]);
#pragma unroll
      for (int m = 0; m < M; m++) {
        float xv = x[m * K + k];
#pragma unroll
        for (int r = 0; r < kRowsPerWarp; r++) acc[m][r] = fmaf(xv, wf[r], acc[m][r]);
      }
    }
  }
  reduce_store<M>(acc, M, lane, n0, N, out, N);
}

template <int M>
void launch(const float* x, int64_t K, const uint16_t* w, int64_t N, float* out, bool vec, cudaStream_t s) {
  unsigned blocks = unsigned(ceil_div(N, kWarps * kRowsPerWarp));
  if (vec)
    gemv_bf16_kernel<M, true><<<blocks, kWarps * 32, 0, s>>>(x, K, w, N, out);
  else
    gemv_bf16_kernel<M, false><<<blocks, kWarps * 32, 0, s>>>(x, K, w, N, out);
}

// The MoE experts' decode case: few rows per expert. Block (x, e) streams
// 32 weight rows of expert e like the dense kernel and applies them to the
// expert's rows in tiles of 8 (later tiles re-read the weights from cache).
// Each output is summed in the dense kernel's order, so a row's result does
// not depend on how many other rows its expert has.
__global__ void __launch_bounds__(kWarps * 32) ggemv_bf16_kernel(GroupedGemm g) {
  constexpr int MT = 8;
  const int e = blockIdx.y;
  const int rb = g.offsets[e], re = g.offsets[e + 1];
  if (rb >= re) return;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int64_t n0 = (int64_t(blockIdx.x) * kWarps + warp) * kRowsPerWarp;
  const int64_t N = g.N, K = g.K;
  if (n0 >= N) return;
  const uint16_t* W = static_cast<const uint16_t*>(g.W) + int64_t(e) * g.w_expert_stride;
  const uint16_t* wr[kRowsPerWarp];
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; r++) wr[r] = W + (n0 + r < N ? n0 + r : N - 1) * K;
  for (int m0 = rb; m0 < re; m0 += MT) {
    const int mc = min(MT, re - m0);
    const float* xr[MT];
#pragma unroll
    for (int m = 0; m < MT; m++) {
      const int row = m0 + min(m, mc - 1);  // rows past the tile repeat its last (not stored)
      xr[m] = g.A + int64_t(g.a_rows ? g.a_rows[row] : row) * g.lda;
    }
    float acc[MT][kRowsPerWarp];
#pragma unroll
    for (int m = 0; m < MT; m++)
#pragma unroll
      for (int r = 0; r < kRowsPerWarp; r++) acc[m][r] = 0.0f;
    accumulate_vec<MT, 1>(xr, mc, wr, K, lane, acc);
    reduce_store<MT>(acc, mc, lane, n0, N, g.C + int64_t(m0) * g.ldc, g.ldc);
  }
}

}  // namespace

bool grouped_gemv_ok(const GroupedGemm& g) {
  return g.bf16 && g.K % 8 == 0 && g.lda % 4 == 0 && reinterpret_cast<uintptr_t>(g.A) % 16 == 0 &&
         reinterpret_cast<uintptr_t>(g.W) % 16 == 0 && g.w_expert_stride % 8 == 0;
}

void grouped_gemv(const GroupedGemm& g, int num_experts, cudaStream_t s) {
  if (num_experts == 0 || g.N == 0) return;
  dim3 grid(unsigned(ceil_div(g.N, kWarps * kRowsPerWarp)), unsigned(num_experts));
  ggemv_bf16_kernel<<<grid, kWarps * 32, 0, s>>>(g);
}

void gemv_bf16(const float* x, int64_t M, int64_t K, const uint16_t* w, int64_t N, float* out, cudaStream_t s) {
  if (M == 0 || N == 0) return;
  // 16-byte loads need K % 8 == 0 and 16-byte aligned bases.
  bool vec = K % 8 == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0 && reinterpret_cast<uintptr_t>(w) % 16 == 0;
  if (M > 8) {
    // Full tiles of 8 rows in one launch, then the rest; every output is
    // summed in the same order as with M <= 8, so a row's result does not
    // depend on M.
    const int64_t full = M / 8;
    dim3 grid(unsigned(full), unsigned(ceil_div(N, kWarps * kRowsPerWarp)));
    if (vec)
      gemv_bf16_kernel<8, true, true><<<grid, kWarps * 32, 0, s>>>(x, K, w, N, out);
    else
      gemv_bf16_kernel<8, false, true><<<grid, kWarps * 32, 0, s>>>(x, K, w, N, out);
    if (M % 8) gemv_bf16(x + full * 8 * K, M % 8, K, w, N, out + full * 8 * N, s);
    return;
  }
  switch (M) {
    case 1: return launch<1>(x, K, w, N, out, vec, s);
    case 2: return launch<2>(x, K, w, N, out, vec, s);
    case 3: return launch<3>(x, K, w, N, out, vec, s);
    case 4: return launch<4>(x, K, w, N, out, vec, s);
    case 5: return launch<5>(x, K, w, N, out, vec, s);
    case 6: return launch<6>(x, K, w, N, out, vec, s);
    case 7: return launch<7>(x, K, w, N, out, vec, s);
    default: return launch<8>(x, K, w, N, out, vec, s);
  }
}

}  // namespace mimo::cuda
