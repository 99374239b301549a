// The two grouped GEMM kernels behind the MoE experts (see grouped_gemm.cuh).
//
// BF16 (and FP8, converted to bf16 as staged) weights: 64x64 output tiles, 4 warps of 32x32 each on WMMA
// 16x16x16 bf16 fragments with fp32 accumulators. The next K slice is loaded
// into registers while the tensor cores work on the current one, so global
// latency overlaps the math. Activations are rounded to bf16 when staged
// (round to nearest even, as the CPU rounds), which is the documented
// tolerance of this path (about 2^-9 relative per product term).
//
// F32 weights (test models): a 64x64 tile per 256 threads, 4x4 outputs per
// thread, fp32 FMA in k order; results match the CPU to fp32 rounding.
#include <mma.h>

#include "ops/cuda/cuda_common.cuh"
#include "ops/cuda/grouped_gemm.cuh"

namespace mimo::cuda {

namespace {

constexpr int BM = kGroupTileM, BN = 64;

// Which rows this tile covers; false when the tile is past the list's end.
struct TileRows {
  int e, row0, row_end;
};
__device__ __forceinline__ bool tile_rows(const GroupedGemm& g, TileRows& t) {
  int tile = blockIdx.x;
  if (tile >= *g.num_tiles) return false;
  t.e = g.tile_expert[tile];
  t.row0 = g.tile_row0[tile];
  t.row_end = min(g.offsets[t.e + 1], t.row0 + BM);
  return true;
}

// ---- bf16 weights on tensor cores ----------------------------------------
constexpr int BK16 = 32, LDS16 = BK16 + 8;  // +8 bf16 keeps WMMA's 16-byte row alignment, spreads banks

__global__ void __launch_bounds__(128) ggemm_bf16_kernel(GroupedGemm g, bool vec_a, bool vec_w) {
  using namespace nvcuda;
  TileRows tr;
  if (!tile_rows(g, tr)) return;
  const int64_t n0 = int64_t(blockIdx.y) * BN;
  const uint16_t* W = g.fp8 ? nullptr : static_cast<const uint16_t*>(g.W) + int64_t(tr.e) * g.w_expert_stride;
  const uint8_t* W8 = g.fp8 ? static_cast<const uint8_t*>(g.W) + int64_t(tr.e) * g.w_expert_stride : nullptr;
  __shared__ __align__(32) uint16_t As[BM * LDS16];
  __shared__ __align__(32) uint16_t Bs[BN * LDS16];
  __shared__ __align__(32) float Cs[BM * (BN + 4)];

  const int tid = threadIdx.x, warp = tid >> 5;
  // Staging: thread -> one row (tid / 2) and 16 consecutive k (half of BK16).
  const int lr = tid >> 1, lk = (tid & 1) * 16;
  const int r = tr.row0 + lr;
  const bool row_ok = r < tr.row_end;
  const float* arow = row_ok ? g.A + int64_t(g.a_rows ? g.a_rows[r] : r) * g.lda : nullptr;
  const bool n_ok = n0 + lr < g.N;
  const uint16_t* wrow = n_ok && W ? W + (n0 + lr) * g.K : nullptr;
  const uint8_t* wrow8 = n_ok && W8 ? W8 + (n0 + lr) * g.K : nullptr;
  const float* srow = n_ok && W8 ? g.S + int64_t(tr.e) * g.s_expert_stride + (n0 + lr) * g.lds : nullptr;
  float areg[16];
  uint16_t wreg[16];

  auto load = [&](int64_t k0) {
    const int64_t kb = k0 + lk;
    if (vec_a && row_ok && kb + 16 <= g.K) {
#pragma unroll
      for (int q = 0; q < 4; q++) {
        float4 v = *reinterpret_cast<const float4*>(arow + kb + 4 * q);
        areg[4 * q] = v.x, areg[4 * q + 1] = v.y, areg[4 * q + 2] = v.z, areg[4 * q + 3] = v.w;
      }
    } else {
#pragma unroll
      for (int q = 0; q < 16; q++) areg[q] = row_ok && kb + q < g.K ? arow[kb + q] : 0.0f;
    }
    if (g.fp8) {
      // FP8: the weight (fp8 * its block scale, fp32) rounded to bf16.
#pragma unroll
      for (int q = 0; q < 16; q++)
        wreg[q] = n_ok && kb + q < g.K ? f32_to_bf16_bits(fp8_e4m3(wrow8[kb + q]) * srow[(kb + q) / g.block]) : uint16_t(0);
    } else if (vec_w && n_ok && kb + 16 <= g.K) {
      uint4 a = __ldg(reinterpret_cast<const uint4*>(wrow + kb));
      uint4 b = __ldg(reinterpret_cast<const uint4*>(wrow + kb + 8));
      const uint32_t u[8] = {a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w};
#pragma unroll
      for (int q = 0; q < 8; q++) wreg[2 * q] = uint16_t(u[q] & 0xffff), wreg[2 * q + 1] = uint16_t(u[q] >> 16);
    } else {
#pragma unroll
      for (int q = 0; q < 16; q++) wreg[q] = n_ok && kb + q < g.K ? wrow[kb + q] : uint16_t(0);
    }
  };

  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][2];
#pragma unroll
  for (int i = 0; i < 2; i++)
#pragma unroll
    for (int j = 0; j < 2; j++) wmma::fill_fragment(acc[i][j], 0.0f);
  const int wm = (warp >> 1) * 32, wn = (warp & 1) * 32;

  load(0);
  for (int64_t k0 = 0; k0 < g.K; k0 += BK16) {
#pragma unroll
    for (int q = 0; q < 16; q++) {
      As[lr * LDS16 + lk + q] = f32_to_bf16_bits(areg[q]);
      Bs[lr * LDS16 + lk + q] = wreg[q];
    }
    __syncthreads();
    if (k0 + BK16 < g.K) load(k0 + BK16);  // in flight during the MMAs below
#pragma unroll
    for (int kk = 0; kk < BK16; kk += 16) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> fa[2];
      wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> fb[2];
#pragma unroll
      for (int i = 0; i < 2; i++)
        wmma::load_matrix_sync(fa[i], reinterpret_cast<const __nv_bfloat16*>(As + (wm + 16 * i) * LDS16 + kk), LDS16);
#pragma unroll
      for (int j = 0; j < 2; j++)  // B(k, n) = W[n][k]: W's rows are B's columns
        wmma::load_matrix_sync(fb[j], reinterpret_cast<const __nv_bfloat16*>(Bs + (wn + 16 * j) * LDS16 + kk), LDS16);
#pragma unroll
      for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 2; j++) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 2; i++)
#pragma unroll
    for (int j = 0; j < 2; j++)
      wmma::store_matrix_sync(Cs + (wm + 16 * i) * (BN + 4) + wn + 16 * j, acc[i][j], BN + 4, wmma::mem_row_major);
  __syncthreads();
  for (int idx = tid; idx < BM * BN; idx += 128) {
    int rr = idx / BN, cc = idx % BN;
    if (tr.row0 + rr < tr.row_end && n0 + cc < g.N) g.C[int64_t(tr.row0 + rr) * g.ldc + n0 + cc] = Cs[rr * (BN + 4) + cc];
  }
}

// ---- fp32 weights on CUDA cores ------------------------------------------
constexpr int BK32 = 16, LDS32 = BM + 4;

__global__ void __launch_bounds__(256) ggemm_f32_kernel(GroupedGemm g) {
  TileRows tr;
  if (!tile_rows(g, tr)) return;
  const int64_t n0 = int64_t(blockIdx.y) * BN;
  const float* W = static_cast<const float*>(g.W) + int64_t(tr.e) * g.w_expert_stride;
  __shared__ float As[BK32 * LDS32];  // transposed: [k][m]
  __shared__ float Bs[BK32 * LDS32];  // transposed: [k][n]
  const int tid = threadIdx.x;
  // Staging: thread -> one row (tid / 4) and 4 consecutive k.
  const int lr = tid >> 2, lk = (tid & 3) * 4;
  const int r = tr.row0 + lr;
  const bool row_ok = r < tr.row_end;
  const float* arow = row_ok ? g.A + int64_t(g.a_rows ? g.a_rows[r] : r) * g.lda : nullptr;
  const bool n_ok = n0 + lr < g.N;
  const float* wrow = n_ok ? W + (n0 + lr) * g.K : nullptr;
  // Compute: thread -> rows ty + 16 i, columns tx + 16 j.
  const int tx = tid & 15, ty = tid >> 4;
  float acc[4][4] = {};
  for (int64_t k0 = 0; k0 < g.K; k0 += BK32) {
#pragma unroll
    for (int q = 0; q < 4; q++) {
      int64_t k = k0 + lk + q;
      As[(lk + q) * LDS32 + lr] = row_ok && k < g.K ? arow[k] : 0.0f;
      Bs[(lk + q) * LDS32 + lr] = n_ok && k < g.K ? wrow[k] : 0.0f;
    }
    __syncthreads();
#pragma unroll
    for (int k = 0; k < BK32; k++) {
      float a[4], b[4];
#pragma unroll
      for (int i = 0; i < 4; i++) a[i] = As[k * LDS32 + ty + 16 * i];
#pragma unroll
      for (int j = 0; j < 4; j++) b[j] = Bs[k * LDS32 + tx + 16 * j];
#pragma unroll
      for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 4; i++) {
    int rr = tr.row0 + ty + 16 * i;
    if (rr >= tr.row_end) continue;
#pragma unroll
    for (int j = 0; j < 4; j++)
      if (n0 + tx + 16 * j < g.N) g.C[int64_t(rr) * g.ldc + n0 + tx + 16 * j] = acc[i][j];
  }
}

}  // namespace

void grouped_gemm(const GroupedGemm& g, cudaStream_t s) {
  if (g.max_tiles == 0 || g.N == 0) return;
  dim3 grid(unsigned(g.max_tiles), unsigned(ceil_div(g.N, BN)));
  if (g.bf16 || g.fp8) {
    auto al16 = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
    bool vec_a = g.lda % 4 == 0 && al16(g.A);
    bool vec_w = !g.fp8 && g.K % 8 == 0 && g.w_expert_stride % 8 == 0 && al16(g.W);
    ggemm_bf16_kernel<<<grid, 128, 0, s>>>(g, vec_a, vec_w);
  } else {
    ggemm_f32_kernel<<<grid, 256, 0, s>>>(g);
  }
}

}  // namespace mimo::cuda
