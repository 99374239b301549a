// Skinny products for decode: out[M, N] = x[M, K] @ w[N, K]^T with M <= 64,
// bf16 or FP8 (per-row block scales) weights and fp32 activations. Reading
// w is the whole cost, so each warp streams 4 weight rows with 16-byte loads
// (8 bf16 per lane; 8-byte loads of 8 FP8 codes) and reuses every activation
// it loads across those 4 rows; activations stay fp32 (no rounding of x,
// unlike the tensor-core path), so this matches the CPU's linear (bf16, or
// FP8 as fp8 * scale in fp32) to fp32 rounding.
#include <algorithm>
#include <type_traits>

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

// A weight matrix as the kernels read it. rows() gives one warp's
// kRowsPerWarp rows (rows past N re-read the last row: cheap, cached, never
// stored); load8 reads 8 consecutive weights of row i at k (k % 8 == 0,
// aligned: the VEC path), one() a single weight.
struct Bf16Mat {
  const uint16_t* w;
  struct Warp {
    const uint16_t* r[kRowsPerWarp];
    __device__ __forceinline__ void load8(int i, int64_t k, float* f) const {
      unpack8(__ldg(reinterpret_cast<const uint4*>(r[i] + k)), f);
    }
    __device__ __forceinline__ float one(int i, int64_t k) const { return bf16_bits_to_f32(r[i][k]); }
  };
  __device__ __forceinline__ Warp rows(int64_t n0, int64_t N, int64_t K) const {
    Warp wr;
#pragma unroll
    for (int i = 0; i < kRowsPerWarp; i++) wr.r[i] = w + (n0 + i < N ? n0 + i : N - 1) * K;
    return wr;
  }
};
// FP8 rows: each weight is fp8 * its block's scale in fp32 (one rounding),
// then summed in the bf16 kernel's order.
struct Fp8Mat {
  Fp8Rows m;
  struct Warp {
    const uint8_t* r[kRowsPerWarp];
    const float* s[kRowsPerWarp];
    int block;
    __device__ __forceinline__ void load8(int i, int64_t k, float* f) const {
      const uint2 v = __ldg(reinterpret_cast<const uint2*>(r[i] + k));
      const float sc = __ldg(s[i] + k / block);
      const uint32_t w[2] = {v.x, v.y};
#pragma unroll
      for (int j = 0; j < 8; j++) f[j] = fp8_e4m3((w[j / 4] >> (8 * (j % 4))) & 0xffu) * sc;
    }
    __device__ __forceinline__ float one(int i, int64_t k) const { return fp8_e4m3(r[i][k]) * __ldg(s[i] + k / block); }
  };
  __device__ __forceinline__ Warp rows(int64_t n0, int64_t N, int64_t K) const {
    Warp wr;
    wr.block = m.block;
#pragma unroll
    for (int i = 0; i < kRowsPerWarp; i++) {
      const int64_t n = n0 + i < N ? n0 + i : N - 1;
      wr.r[i] = m.q + n * K;
      wr.s[i] = m.s + n * m.lds;
    }
    return wr;
  }
};

// The one summation order of every gemv-style kernel here: lane L takes the
// 8-wide chunks k = 8L, 8L + 256, ... of a row in ascending order (then
// warp_sum), whatever the number of activation rows. acc[m][r] accumulates
// xr[m] . wr[r] for the rows m < mc; needs K % 8 == 0 and 16-byte alignment.
template <int M, int UNROLL, typename WarpRows>
__device__ __forceinline__ void accumulate_vec(const float* const (&xr)[M], int mc, const WarpRows& wr, int64_t K,
                                               int lane, float (&acc)[M][kRowsPerWarp]) {
#pragma unroll(UNROLL)
  for (int64_t k = int64_t(lane) * 8; k < K; k += 32 * 8) {
    float wf[kRowsPerWarp][8];
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; r++) wr.load8(r, k, wf[r]);
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
template <int M, bool VEC, bool TILED, typename Mat>
__global__ void __launch_bounds__(kWarps * 32, (M <= 6 ? 2 : 1)) gemv_kernel(const float* __restrict__ x, int64_t K,
                                                                 Mat w, int64_t N, float* __restrict__ out) {
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
  const auto wr = w.rows(n0, N, K);

  if constexpr (VEC) {
    const float* xr[M];
#pragma unroll
    for (int m = 0; m < M; m++) xr[m] = x + m * K;
    accumulate_vec<M, (M <= 4 ? 2 : 1)>(xr, M, wr, K, lane, acc);  // two loads in flight per row for narrow M
  } else {
    for (int64_t k = lane; k < K; k += 32) {
      float wf[kRowsPerWarp];
#pragma unroll
      for (int r = 0; r < kRowsPerWarp; r++) wf[r] = wr.one(r, k);
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

template <int M, typename Mat>
void launch(const float* x, int64_t K, const Mat& w, int64_t N, float* out, bool vec, cudaStream_t s) {
  unsigned blocks = unsigned(ceil_div(N, kWarps * kRowsPerWarp));
  if (vec)
    gemv_kernel<M, true, false, Mat><<<blocks, kWarps * 32, 0, s>>>(x, K, w, N, out);
  else
    gemv_kernel<M, false, false, Mat><<<blocks, kWarps * 32, 0, s>>>(x, K, w, N, out);
}

// Expert e's weight matrix of a grouped product.
template <typename Mat>
__device__ __forceinline__ Mat expert_mat(const GroupedGemm& g, int e) {
  if constexpr (std::is_same_v<Mat, Fp8Mat>) {
    return Fp8Mat{{static_cast<const uint8_t*>(g.W) + int64_t(e) * g.w_expert_stride, g.S + int64_t(e) * g.s_expert_stride,
                   g.lds, g.block}};
  } else {
    return Bf16Mat{static_cast<const uint16_t*>(g.W) + int64_t(e) * g.w_expert_stride};
  }
}

// The MoE experts' decode case: few rows per expert. Block (x, e) streams
// 32 weight rows of expert e like the dense kernel and applies them to the
// expert's rows in tiles of 8 (later tiles re-read the weights from cache).
// Each output is summed in the dense kernel's order, so a row's result does
// not depend on how many other rows its expert has.
template <typename Mat>
__global__ void __launch_bounds__(kWarps * 32) ggemv_kernel(GroupedGemm g) {
  constexpr int MT = 8;
  const int e = blockIdx.y;
  const int rb = g.offsets[e], re = g.offsets[e + 1];
  if (rb >= re) return;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int64_t n0 = (int64_t(blockIdx.x) * kWarps + warp) * kRowsPerWarp;
  const int64_t N = g.N, K = g.K;
  if (n0 >= N) return;
  const auto wr = expert_mat<Mat>(g, e).rows(n0, N, K);
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

__global__ void fp8_to_bf16_kernel(Fp8Rows w, int64_t n0, int64_t n1, int64_t K, uint16_t* out) {
  const int64_t total = (n1 - n0) * K;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t n = n0 + i / K, k = i % K;
    out[i] = f32_to_bf16_bits(fp8_e4m3(w.q[n * K + k]) * w.s[n * w.lds + k / w.block]);
  }
}

inline bool al(const void* p, uintptr_t n) { return reinterpret_cast<uintptr_t>(p) % n == 0; }

// Every dense product: M > 8 runs full tiles of 8 rows in one launch, then
// the rest; every output is summed in the same order as with M <= 8, so a
// row's result does not depend on M.
template <typename Mat>
void gemv_any(const float* x, int64_t M, int64_t K, const Mat& w, int64_t N, float* out, bool vec, cudaStream_t s) {
  if (M == 0 || N == 0) return;
  if (M > 8) {
    const int64_t full = M / 8;
    dim3 grid(unsigned(full), unsigned(ceil_div(N, kWarps * kRowsPerWarp)));
    if (vec)
      gemv_kernel<8, true, true, Mat><<<grid, kWarps * 32, 0, s>>>(x, K, w, N, out);
    else
      gemv_kernel<8, false, true, Mat><<<grid, kWarps * 32, 0, s>>>(x, K, w, N, out);
    if (M % 8) gemv_any(x + full * 8 * K, M % 8, K, w, N, out + full * 8 * N, vec, s);
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

}  // namespace

bool grouped_gemv_ok(const GroupedGemm& g) {
  if (!(g.bf16 || g.fp8) || g.K % 8 != 0 || g.lda % 4 != 0 || !al(g.A, 16)) return false;
  if (g.fp8) return al(g.W, 8) && g.w_expert_stride % 8 == 0 && g.block % 8 == 0;
  return al(g.W, 16) && g.w_expert_stride % 8 == 0;
}

void grouped_gemv(const GroupedGemm& g, int num_experts, cudaStream_t s) {
  if (num_experts == 0 || g.N == 0) return;
  dim3 grid(unsigned(ceil_div(g.N, kWarps * kRowsPerWarp)), unsigned(num_experts));
  if (g.fp8)
    ggemv_kernel<Fp8Mat><<<grid, kWarps * 32, 0, s>>>(g);
  else
    ggemv_kernel<Bf16Mat><<<grid, kWarps * 32, 0, s>>>(g);
}

void gemv_bf16(const float* x, int64_t M, int64_t K, const uint16_t* w, int64_t N, float* out, cudaStream_t s) {
  // 16-byte loads need K % 8 == 0 and 16-byte aligned bases.
  gemv_any(x, M, K, Bf16Mat{w}, N, out, K % 8 == 0 && al(x, 16) && al(w, 16), s);
}

void gemv_fp8(const float* x, int64_t M, int64_t K, const Fp8Rows& w, int64_t N, float* out, cudaStream_t s) {
  // 8-byte loads of codes need K % 8 == 0 and an 8-byte aligned base; a
  // block of 8k columns keeps each load within one scale.
  gemv_any(x, M, K, Fp8Mat{w}, N, out, K % 8 == 0 && w.block % 8 == 0 && al(x, 16) && al(w.q, 8), s);
}

void fp8_to_bf16(const Fp8Rows& w, int64_t n0, int64_t n1, int64_t K, uint16_t* out, cudaStream_t s) {
  const int64_t total = (n1 - n0) * K;
  if (total <= 0) return;
  fp8_to_bf16_kernel<<<unsigned(std::min<int64_t>(ceil_div(total, 256), 65535)), 256, 0, s>>>(w, n0, n1, K, out);
}

}  // namespace mimo::cuda
