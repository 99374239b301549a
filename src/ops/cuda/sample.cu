// Sampling on the device: one block per row of logits, the kept set and the
// draw of ops/sampling.h without sorting the vocabulary.
//
// Every thread owns a contiguous run of token ids, so a scan over the
// threads' partial sums is a scan in id order. Thresholds are found by
// bisection on the order-preserving 32-bit key of each logit:
//   top-k: the largest key t with count(key >= t) >= k; ties at t are kept
//          in id order until k tokens are in;
//   top-p: the largest key t with mass(key >= t) >= top_p x (top-k mass);
//          ties at t are kept in id order while the mass before them is
//          still short of the target (the shortest prefix, as on the host);
//   min-p: weight >= min_p (the top weight is 1);
// then a row with a draft x accepts it when u_accept x (kept mass) < w(x),
// and otherwise (or without a draft) the draw walks the kept weights in id
// order, x left out, to u_draw x (their mass).
// Sums are fp32 in a fixed order (each thread's run, then a tree), so a
// row's token is deterministic; it can differ from the host's double sums
// only where u or top_p falls within rounding of a boundary.
#include "ops/cuda/cuda_common.cuh"
#include "ops/cuda/cuda_kernels.h"

namespace mimo::cuda {

namespace {

constexpr int kSampleThreads = 1024;

// Larger float, larger key (NaN aside).
__device__ __forceinline__ uint32_t order_key(float f) {
  uint32_t b = __float_as_uint(f);
  return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

// The largest key t for which reaches(t) holds, reaches being monotone
// (true at 0, false from some t on): 32 rounds of bisection, every thread
// taking the same branch (reaches is a block-wide reduction).
template <typename F>
__device__ __forceinline__ uint32_t largest_key(F reaches) {
  uint32_t lo = 0, hi = 0xffffffffu;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2 + 1;
    if (reaches(mid)) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

__device__ __forceinline__ int block_sum_int(int v, int* red) {
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  __syncthreads();
  if (lane == 0) red[warp] = v;
  __syncthreads();
  v = lane < nw ? red[lane] : 0;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ int block_min_int(int v, int* red) {
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = min(v, __shfl_xor_sync(0xffffffffu, v, o));
  __syncthreads();
  if (lane == 0) red[warp] = v;
  __syncthreads();
  v = lane < nw ? red[lane] : 0x7fffffff;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = min(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

__device__ __forceinline__ float block_max(float v, float* red) {
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) red[warp] = v;
  __syncthreads();
  v = lane < nw ? red[lane] : -INFINITY;
  return warp_max(v);
}

// Exclusive prefix over threads in thread order (so in id order).
template <typename T>
__device__ __forceinline__ T block_exclusive_scan(T v, T* red) {
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
  T inc = v;
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    T n = __shfl_up_sync(0xffffffffu, inc, o);
    if (lane >= o) inc += n;
  }
  __syncthreads();
  if (lane == 31) red[warp] = inc;
  __syncthreads();
  if (warp == 0) {
    T w = lane < nw ? red[lane] : T(0), wi = w;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
      T n = __shfl_up_sync(0xffffffffu, wi, o);
      if (lane >= o) wi += n;
    }
    if (lane < nw) red[lane] = wi - w;  // warps before this one
  }
  __syncthreads();
  return red[warp] + inc - v;
}

__global__ void sample_kernel(const float* logits, int64_t V, const float* params, const int32_t* drafts,
                              const float* uniform, int32_t* out) {
  __shared__ float redf[32];
  __shared__ int redi[32];
  const float* l = logits + int64_t(blockIdx.x) * V;
  const float* pr = params + 4 * int64_t(blockIdx.x);
  const float temperature = pr[0], top_p = pr[1], min_p = pr[3];
  const int64_t top_k = int64_t(pr[2]);
  const int64_t chunk = ceil_div(V, int64_t(blockDim.x));
  const int64_t i0 = min(V, int64_t(threadIdx.x) * chunk), i1 = min(V, i0 + chunk);

  if (temperature <= 1e-6f || top_k == 1) {  // greedy: the first maximum
    float bv = -INFINITY;
    int bi = 0x7fffffff;
    for (int64_t i = i0; i < i1; i++)
      if (l[i] > bv || bi == 0x7fffffff) bv = l[i], bi = int(i);
    bi = block_argmax(bv, bi, redf, redi);
    if (threadIdx.x == 0) out[blockIdx.x] = bi;
    return;
  }

  float mx = -INFINITY;
  for (int64_t i = i0; i < i1; i++) mx = fmaxf(mx, l[i]);
  mx = block_max(mx, redf);

  // top-k: threshold key tk and, among the tokens at tk, how many (in id
  // order) are in; tk_before is this thread's count of them before i0.
  const bool cut_k = top_k > 0 && top_k < V;
  uint32_t tk = 0;
  int tk_need = 0, tk_before = 0;
  if (cut_k) {
    tk = largest_key([&](uint32_t t) {
      int c = 0;
      for (int64_t i = i0; i < i1; i++) c += order_key(l[i]) >= t;
      return block_sum_int(c, redi) >= top_k;
    });
    int gt = 0, eq = 0;
    for (int64_t i = i0; i < i1; i++) {
      uint32_t k = order_key(l[i]);
      gt += k > tk;
      eq += k == tk;
    }
    tk_need = int(top_k) - block_sum_int(gt, redi);
    tk_before = block_exclusive_scan(eq, redi);
  }
  const float inv_t = 1.0f / temperature;
  // Weight of token i under top-k (0 when cut); `eq_seen` counts this
  // thread's tokens at tk so far, walking its run in id order.
  auto weight_k = [&](int64_t i, int& eq_seen) -> float {
    uint32_t k = order_key(l[i]);
    if (cut_k) {
      if (k < tk) return 0.0f;
      if (k == tk && tk_before + eq_seen++ >= tk_need) return 0.0f;
    }
    return expf((l[i] - mx) * inv_t);
  };
  float s = 0;
  {
    int e = 0;
    for (int64_t i = i0; i < i1; i++) s += weight_k(i, e);
  }
  const float mass_k = block_sum(s, redf);

  // top-p: threshold key tp, the mass strictly above it, and this thread's
  // mass of tokens at tp before i0.
  const bool cut_p = top_p < 1.0f;
  const float target = top_p * mass_k;
  uint32_t tp = 0;
  float above_tp = 0, tp_before = 0;
  if (cut_p) {
    tp = largest_key([&](uint32_t t) {
      float m = 0;
      int e = 0;
      for (int64_t i = i0; i < i1; i++) {
        float w = weight_k(i, e);
        if (order_key(l[i]) >= t) m += w;
      }
      return block_sum(m, redf) >= target;
    });
    float gt = 0, eq = 0;
    int e = 0;
    for (int64_t i = i0; i < i1; i++) {
      float w = weight_k(i, e);
      uint32_t k = order_key(l[i]);
      if (k > tp) gt += w;
      else if (k == tp) eq += w;
    }
    above_tp = block_sum(gt, redf);
    tp_before = block_exclusive_scan(eq, redf);
  }
  // The final weight of token i (0 when cut); walks this thread's run in
  // id order, carrying the tie counters.
  struct Walk {
    int eq_k = 0;
    float eq_p = 0;
  };
  auto weight = [&](int64_t i, Walk& st) -> float {
    float w = weight_k(i, st.eq_k);
    if (w == 0.0f) return 0.0f;
    if (cut_p) {
      uint32_t k = order_key(l[i]);
      if (k < tp) return 0.0f;
      if (k == tp) {
        bool in = above_tp + tp_before + st.eq_p < target;
        st.eq_p += w;
        if (!in) return 0.0f;
      }
    }
    return w < min_p ? 0.0f : w;
  };

  // The draft's weight (0 when cut or absent), then its acceptance.
  const int32_t draft = drafts[blockIdx.x];
  float run = 0, wx = 0;
  int last = -1;
  {
    Walk st;
    for (int64_t i = i0; i < i1; i++) {
      float w = weight(i, st);
      if (i == draft) {
        wx = w;
        continue;
      }
      run += w;
      if (w > 0) last = int(i);
    }
  }
  const float before = block_exclusive_scan(run, redf);
  const float rest = block_sum(run, redf);  // kept mass without the draft
  wx = block_sum(wx, redf);
  const float u_accept = uniform[2 * blockIdx.x], u_draw = uniform[2 * blockIdx.x + 1];
  if (draft >= 0 && (u_accept * (rest + wx) < wx || !(rest > 0))) {
    if (threadIdx.x == 0) out[blockIdx.x] = draft;
    return;
  }
  // The draw: the first kept token in id order (the draft left out) whose
  // cumulative weight passes u_draw x (their mass).
  const float goal = u_draw * rest;
  int pick = 0x7fffffff;
  if (run > 0 && before <= goal) {
    float left = goal - before;
    Walk st;
    for (int64_t i = i0; i < i1 && pick == 0x7fffffff; i++) {
      float w = weight(i, st);
      if (i != draft && w > 0 && (left -= w) < 0) pick = int(i);
    }
  }
  // The lowest claim wins; none (u x mass rounded up to the whole mass):
  // the last kept token.
  pick = block_min_int(pick, redi);
  if (pick == 0x7fffffff) pick = -block_min_int(-last, redi);
  if (threadIdx.x == 0) out[blockIdx.x] = pick;
}

}  // namespace

void sample(const float* logits, int64_t R, int64_t V, const float* params, const int32_t* drafts, const float* u,
            int32_t* out, cudaStream_t s) {
  if (R > 0) sample_kernel<<<unsigned(R), kSampleThreads, 0, s>>>(logits, V, params, drafts, u, out);
}

}  // namespace mimo::cuda
