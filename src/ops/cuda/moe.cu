// MoE on the GPU with no host round trip.
//
// Routing: one warp per token (sigmoid, biased choice scores, group-limited
// top-k by repeated warp argmax with the CPU's tie rule: lower index first).
//
// Experts: the (token, k) assignments are grouped by local expert on the
// device - count, scan (which also lays out a list of 64-row tiles per
// expert), scatter - and two grouped GEMMs run over all experts at once
// (gate_up with the token gather fused into the A loads, then down), with
// SwiGLU between them; for decode-sized batches the grouped products run
// as gemv-style kernels that stream each used expert's weights once. The combine sums each token's k results in k order
// (deterministic; no atomics on the output).
#include <algorithm>
#include <climits>

#include "ops/cuda/cuda_common.cuh"
#include "ops/cuda/cuda_kernels.h"
#include "ops/cuda/grouped_gemm.cuh"

namespace mimo::cuda {

namespace {

// ---- routing ---------------------------------------------------------------
// Shared memory: s[E], c[E], group score[G], group kept[G] (int), chosen[K] (int).
__global__ void moe_route_kernel(const float* logits, const float* bias, int E, int K, int G, int topk_group,
                                 bool norm, float scaling, int32_t* ids, float* weights) {
  extern __shared__ float sm[];
  float* s = sm;
  float* c = s + E;
  float* gs = c + E;
  int* kept = reinterpret_cast<int*>(gs + G);
  int* chosen = kept + G;
  const int64_t t = blockIdx.x;
  const int lane = threadIdx.x;
  for (int e = lane; e < E; e += 32) {
    float sv = 1.0f / (1.0f + expf(-logits[t * E + e]));
    s[e] = sv;
    c[e] = sv + bias[e];
  }
  __syncwarp();
  if (G > 1) {
    const int per = E / G;
    // Group score: the sum of the group's two best biased scores.
    for (int g = lane; g < G; g += 32) {
      float m1 = -INFINITY, m2 = -INFINITY;
      for (int e = g * per; e < (g + 1) * per; e++) {
        float v = c[e];
        if (v > m1) {
          m2 = m1;
          m1 = v;
        } else if (v > m2) {
          m2 = v;
        }
      }
      gs[g] = per >= 2 ? m1 + m2 : m1;
      kept[g] = 0;
    }
    __syncwarp();
    for (int it = 0; it < topk_group; it++) {
      float bv = -INFINITY;
      int bi = INT_MAX;
      for (int g = lane; g < G; g += 32)
        if (!kept[g] && (gs[g] > bv || (gs[g] == bv && g < bi))) bv = gs[g], bi = g;
      warp_argmax(bv, bi);
      if (lane == 0 && bi != INT_MAX) kept[bi] = 1;
      __syncwarp();
    }
    for (int e = lane; e < E; e += 32)
      if (!kept[e / per]) c[e] = -INFINITY;
    __syncwarp();
  }
  // Top-k by repeated argmax; a chosen expert's score becomes NaN, which
  // never compares greater or equal, so it is not chosen again.
  for (int k = 0; k < K; k++) {
    float bv = -INFINITY;
    int bi = INT_MAX;
    for (int e = lane; e < E; e += 32) {
      float v = c[e];
      if (v > bv || (v == bv && e < bi)) bv = v, bi = e;
    }
    warp_argmax(bv, bi);
    if (lane == 0) {
      if (bi == INT_MAX) bi = 0;  // fewer candidates than k: the host rules this out
      chosen[k] = bi;
      c[bi] = __int_as_float(0x7fc00000);
    }
    __syncwarp();
  }
  if (lane == 0) {
    float sum = 0.0f;
    for (int k = 0; k < K; k++) sum += s[chosen[k]];
    float nrm = norm ? 1.0f / (sum + 1e-20f) : 1.0f;
    for (int k = 0; k < K; k++) {
      ids[t * K + k] = chosen[k];
      weights[t * K + k] = s[chosen[k]] * nrm * scaling;
    }
  }
}

// ---- grouping --------------------------------------------------------------
__global__ void count_kernel(const int32_t* ids, int64_t R, int E, int begin, int32_t* counts) {
  for (int64_t a = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; a < R; a += int64_t(gridDim.x) * blockDim.x) {
    int e = ids[a] - begin;
    if (e >= 0 && e < E) atomicAdd(&counts[e], 1);
  }
}

// Exclusive scan of a block's values (blockDim.x = 1024); returns this
// thread's exclusive prefix and sets *total.
__device__ int block_exclusive_scan(int v, int* warp_tot, int* total) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  int inc = v;
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    int n = __shfl_up_sync(0xffffffffu, inc, o);
    if (lane >= o) inc += n;
  }
  if (lane == 31) warp_tot[warp] = inc;
  __syncthreads();
  if (warp == 0) {
    int w = warp_tot[lane];
    int wi = w;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
      int n = __shfl_up_sync(0xffffffffu, wi, o);
      if (lane >= o) wi += n;
    }
    warp_tot[lane] = wi - w;  // exclusive prefix of each warp
    if (lane == 31) *total = wi;
  }
  __syncthreads();
  int r = warp_tot[warp] + inc - v;
  __syncthreads();  // warp_tot is reused by the next call
  return r;
}

// One block of 1024 threads: row offsets per expert, the tile list, and the
// fill counters the scatter uses (reset to zero here).
__global__ void __launch_bounds__(1024) scan_kernel(const int32_t* counts, int E, int32_t* offsets, int32_t* fill,
                                                    int32_t* tile_expert, int32_t* tile_row0, int32_t* num_tiles) {
  __shared__ int warp_tot[32];
  __shared__ int total;
  int row_base = 0, tile_base = 0;
  for (int e0 = 0; e0 < E; e0 += 1024) {
    int e = e0 + int(threadIdx.x);
    int cnt = e < E ? counts[e] : 0;
    int nt = int(ceil_div(cnt, kGroupTileM));
    int row_off = row_base + block_exclusive_scan(cnt, warp_tot, &total);
    int rows = total;
    int tile_off = tile_base + block_exclusive_scan(nt, warp_tot, &total);
    int tiles = total;
    if (e < E) {
      offsets[e] = row_off;
      fill[e] = 0;
      for (int j = 0; j < nt; j++) {
        tile_expert[tile_off + j] = e;
        tile_row0[tile_off + j] = row_off + j * kGroupTileM;
      }
    }
    row_base += rows;
    tile_base += tiles;
  }
  if (threadIdx.x == 0) {
    offsets[E] = row_base;
    *num_tiles = tile_base;
  }
}

// Assignment a = t * K + k goes to row offsets[e] + (arrival order); the
// order within an expert does not change any row's result.
__global__ void scatter_kernel(const int32_t* ids, int64_t R, int K, int E, int begin, const int32_t* offsets,
                               int32_t* fill, int32_t* perm_tok, int32_t* slot_of) {
  for (int64_t a = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; a < R; a += int64_t(gridDim.x) * blockDim.x) {
    int e = ids[a] - begin;
    if (e >= 0 && e < E) {
      int pos = offsets[e] + atomicAdd(&fill[e], 1);
      perm_tok[pos] = int32_t(a / K);
      slot_of[a] = pos;
    } else {
      slot_of[a] = -1;
    }
  }
}

// out[t, :] = sum_k w[t, k] * y[slot_of[t, k], :], in k order.
__global__ void combine_kernel(const float* y, const int32_t* slot_of, const float* w, int K, int64_t H, float* out) {
  const int64_t t = blockIdx.x;
  for (int64_t h = threadIdx.x; h < H; h += blockDim.x) {
    float acc = 0.0f;
    for (int k = 0; k < K; k++) {
      int sl = slot_of[t * K + k];
      if (sl >= 0) acc = fmaf(w[t * K + k], y[int64_t(sl) * H + h], acc);
    }
    out[t * H + h] = acc;
  }
}

// Scratch layout, shared by moe_scratch_bytes and moe_experts.
struct Layout {
  size_t counts, fill, offsets, num_tiles, tile_expert, tile_row0, perm_tok, slot_of, gu, act, y, total;
  int64_t R, max_tiles;
};

Layout layout(const MoEArgs& a) {
  Layout l{};
  l.R = a.T * a.K;
  l.max_tiles = ceil_div(l.R, kGroupTileM) + std::min<int64_t>(a.E, l.R);
  size_t off = 0;
  auto take = [&](size_t bytes) {
    size_t o = off;
    off += (bytes + 255) / 256 * 256;
    return o;
  };
  l.counts = take(size_t(a.E) * 4);
  l.fill = take(size_t(a.E) * 4);
  l.offsets = take(size_t(a.E + 1) * 4);
  l.num_tiles = take(4);
  l.tile_expert = take(size_t(l.max_tiles) * 4);
  l.tile_row0 = take(size_t(l.max_tiles) * 4);
  l.perm_tok = take(size_t(l.R) * 4);
  l.slot_of = take(size_t(l.R) * 4);
  l.gu = take(size_t(l.R * 2 * a.I) * 4);
  l.act = take(size_t(l.R * a.I) * 4);
  l.y = take(size_t(l.R * a.H) * 4);
  l.total = off;
  return l;
}

inline unsigned grid_for(int64_t n, int threads) {
  int64_t b = ceil_div(n, threads);
  return unsigned(std::clamp<int64_t>(b, 1, 4096));
}

}  // namespace

void moe_route(const float* logits, const float* bias, int64_t T, int E, int K, int n_group, int topk_group,
               bool norm_topk_prob, float scaling, int32_t* ids, float* weights, cudaStream_t s) {
  if (T == 0) return;
  int G = n_group > 1 ? n_group : 1;
  size_t smem = size_t(2 * E + 2 * G + K) * 4;
  moe_route_kernel<<<unsigned(T), 32, smem, s>>>(logits, bias, E, K, G, topk_group, norm_topk_prob, scaling, ids,
                                                  weights);
}

size_t moe_scratch_bytes(const MoEArgs& a) { return layout(a).total; }

void moe_experts(const MoEArgs& a, void* scratch, cudaStream_t s) {
  if (a.T == 0) return;
  Layout l = layout(a);
  char* base = static_cast<char*>(scratch);
  auto at = [&](size_t o) { return reinterpret_cast<int32_t*>(base + o); };
  auto atf = [&](size_t o) { return reinterpret_cast<float*>(base + o); };
  int32_t *counts = at(l.counts), *fill = at(l.fill), *offsets = at(l.offsets), *num_tiles = at(l.num_tiles);
  int32_t *tile_expert = at(l.tile_expert), *tile_row0 = at(l.tile_row0), *perm_tok = at(l.perm_tok),
          *slot_of = at(l.slot_of);
  float *gu = atf(l.gu), *act = atf(l.act), *y = atf(l.y);

  cudaMemsetAsync(counts, 0, size_t(a.E) * 4, s);
  count_kernel<<<grid_for(l.R, 256), 256, 0, s>>>(a.ids, l.R, a.E, a.expert_begin, counts);
  scan_kernel<<<1, 1024, 0, s>>>(counts, a.E, offsets, fill, tile_expert, tile_row0, num_tiles);
  scatter_kernel<<<grid_for(l.R, 256), 256, 0, s>>>(a.ids, l.R, a.K, a.E, a.expert_begin, offsets, fill, perm_tok,
                                                    slot_of);
  GroupedGemm g;
  g.bf16 = a.bf16;
  g.fp8 = a.fp8;
  g.block = a.block;
  g.tile_expert = tile_expert;
  g.tile_row0 = tile_row0;
  g.num_tiles = num_tiles;
  g.offsets = offsets;
  g.max_tiles = l.max_tiles;
  // gate_up: gu[r] = x[token(r)] @ gate_up[e]^T
  g.A = a.x;
  g.lda = a.H;
  g.a_rows = perm_tok;
  g.W = a.gate_up;
  g.w_expert_stride = 2 * a.I * a.H;
  g.S = a.gate_up_scales;
  g.lds = a.fp8 ? ceil_div(a.H, a.block) : 0;
  g.s_expert_stride = 2 * a.I * g.lds;
  g.N = 2 * a.I;
  g.K = a.H;
  g.C = gu;
  g.ldc = 2 * a.I;
  // Decode-sized batches stream each used expert once on CUDA cores; larger
  // ones run the tensor-core tiles.
  const bool small = l.R <= kGroupedGemvMaxRows;
  auto product = [&] {
    if (small && grouped_gemv_ok(g)) grouped_gemv(g, a.E, s);
    else grouped_gemm(g, s);
  };
  product();
  // Only the rows that exist (offsets[E], on the device) are activated.
  silu_mul(gu, l.R, a.I, act, offsets + a.E, s);
  // down: y[r] = act[r] @ down[e]^T
  g.A = act;
  g.lda = a.I;
  g.a_rows = nullptr;
  g.W = a.down;
  g.w_expert_stride = a.H * a.I;
  g.S = a.down_scales;
  g.lds = a.fp8 ? ceil_div(a.I, a.block) : 0;
  g.s_expert_stride = a.H * g.lds;
  g.N = a.H;
  g.K = a.I;
  g.C = y;
  g.ldc = a.H;
  product();
  combine_kernel<<<unsigned(a.T), 256, 0, s>>>(y, slot_of, a.weights, a.K, a.H, a.out);
}

}  // namespace mimo::cuda
