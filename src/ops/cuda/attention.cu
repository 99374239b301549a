// Attention over slot-indexed KV, one kernel for prefill, decode and
// multi-token verify. FlashAttention-style: a block takes up to 64 "query
// vectors" (row, head) of one sequence that share one KV head (GQA groups
// are packed together, so decode with 16 heads per KV head still fills the
// tile), streams that head's keys in tiles of 32 through shared memory and
// keeps an fp32 online softmax (running max and sum per vector), so the
// scores never touch device memory. Keys are looked up through the
// sequence's slot table, so contiguous and paged caches are the same path.
//
// Steps of few rows per sequence (decode, speculative verify) split each
// block's keys across blockIdx.z (flash-decoding) in chunks of kSplitKeys
// keys at absolute positions; each split writes its unnormalised sum with
// its max and denominator and a second kernel merges them and adds the sink.
// Fixed chunks keep a row's arithmetic independent of the batch (a chunk a
// row cannot see adds exact zeros to the merge), so a decode row and the same
// row in a verify give the same bits whatever else runs in the step.
//
// Arithmetic is plain fp32 FMA on CUDA cores: q.k and p.v match the CPU
// backend to rounding for F32 and BF16 caches (bf16 is widened on load).
#include <algorithm>
#include <climits>

#include "ops/cuda/cuda_common.cuh"
#include "ops/cuda/cuda_kernels.h"

namespace mimo::cuda {

namespace {

constexpr int kQV = 64;       // query vectors per block
constexpr int kBK = 32;       // keys per tile
constexpr int kThreads = 256; // 16 x 16 threads; see the mappings below
constexpr int kSP = kBK + 1;  // score row stride (odd: no bank conflicts)
constexpr int kSplitKeys = 256;  // keys per split (a multiple of kBK)
constexpr int kSplitMaxQ = 8;    // steps with at most this many rows per sequence split
constexpr int64_t kSplitBudgetBytes = int64_t(512) << 20;  // partial sums beyond this: no split

size_t smem_floats(int D, int Dv) {
  return size_t(kQV) * (D + 1) + size_t(kBK) * (D + 1) + size_t(kBK) * Dv + size_t(kQV) * kSP + 3 * kQV +
         2 * kQV + kBK;  // the last three groups are ints, same size as floats
}

template <typename KV, int DVI>
__global__ void __launch_bounds__(kThreads, 2) attn_kernel(AttnArgs a, int tiles_per_seq) {
  extern __shared__ float smem[];
  const int G = a.H / a.nkv, D = a.D, Dv = a.Dv, DP = D + 1;
  const int s = blockIdx.x / tiles_per_seq, tile = blockIdx.x % tiles_per_seq;
  const int kh = blockIdx.y, split = blockIdx.z;
  const int q0 = a.q_start[s], qlen = a.q_start[s + 1] - q0;
  const int v0 = tile * kQV, nv = min(kQV, qlen * G - v0);
  if (nv <= 0) return;  // this sequence has fewer rows than the longest one
  const int kvl = a.kv_len[s];
  const int32_t* tab = a.table + a.table_start[s];
  const KV* kc = static_cast<const KV*>(a.k_cache);
  const KV* vc = static_cast<const KV*>(a.v_cache);

  float* Qs = smem;
  float* Ks = Qs + kQV * DP;
  float* Vs = Ks + kBK * DP;
  float* Ss = Vs + kBK * Dv;
  float* m_run = Ss + kQV * kSP;
  float* l_run = m_run + kQV;
  float* alpha = l_run + kQV;
  int* lo_s = reinterpret_cast<int*>(alpha + kQV);
  int* hi_s = lo_s + kQV;
  int* slot_s = hi_s + kQV;
  __shared__ int range[2];
  const int tid = threadIdx.x;

  // Visible key positions [lo, hi] of each query vector.
  if (tid < kQV) {
    int lo = INT_MAX, hi = -1;
    if (tid < nv) {
      int p = a.positions[q0 + (v0 + tid) / G];
      hi = min(p, kvl - 1);
      lo = a.window > 0 ? max(0, p - a.window + 1) : 0;
    }
    lo_s[tid] = lo;
    hi_s[tid] = hi;
    m_run[tid] = -INFINITY;
    l_run[tid] = 0.0f;
  }
  for (int i = tid; i < kQV * D; i += kThreads) {
    int m = i / D, d = i - m * D;
    float val = 0.0f;
    if (m < nv) {
      int v = v0 + m, row = q0 + v / G, h = kh * G + v % G;
      val = a.q[(int64_t(row) * a.H + h) * D + d];
    }
    Qs[m * DP + d] = val;
  }
  __syncthreads();
  // The block's key range is the union of its vectors' ranges.
  if (tid < 32) {
    int lo = __reduce_min_sync(0xffffffffu, min(lo_s[tid], lo_s[tid + 32]));
    int hi = __reduce_max_sync(0xffffffffu, max(hi_s[tid], hi_s[tid + 32]));
    if (tid == 0) {
      range[0] = lo;
      range[1] = hi;
    }
  }
  __syncthreads();
  // Key tiles start at multiples of kBK, not at the block's first key: a
  // vector then meets the same tiles whichever vectors share its block
  // (tiles it cannot see leave its sums untouched), so a decode row and the
  // same row inside a verify or a prefill give the same bits.
  int kb = range[0] / kBK * kBK, ke = range[1] + 1;  // [kb, ke); empty when ke <= kb
  if (a.nsplit > 1 && ke > kb) {
    // Split z takes the z-th absolute chunk from the one holding the block's first key.
    int b = (range[0] / kSplitKeys + split) * kSplitKeys;
    kb = max(kb, b);
    ke = min(ke, b + kSplitKeys);
  }

  // Thread (mg, cg): query vectors mg + 16 i (i < 4); keys cg + 16 c (c < 2)
  // for scores, value dims cg + 16 c (c < DVI) for the output.
  const int mg = tid >> 4, cg = tid & 15;
  float acc[4][DVI];
#pragma unroll
  for (int i = 0; i < 4; i++)
#pragma unroll
    for (int c = 0; c < DVI; c++) acc[i][c] = 0.0f;

  for (int k0 = kb; k0 < ke; k0 += kBK) {
    const int nk = min(kBK, ke - k0);
    if (tid < kBK) slot_s[tid] = tid < nk ? tab[k0 + tid] : -1;
    __syncthreads();
    for (int i = tid; i < kBK * D; i += kThreads) {
      int j = i / D, d = i - j * D, sl = slot_s[j];
      Ks[j * DP + d] = sl >= 0 ? load_f32(kc, (int64_t(kh) * a.n_slots + sl) * D + d) : 0.0f;
    }
    for (int i = tid; i < kBK * Dv; i += kThreads) {
      int j = i / Dv, d = i - j * Dv, sl = slot_s[j];
      Vs[j * Dv + d] = sl >= 0 ? load_f32(vc, (int64_t(kh) * a.n_slots + sl) * Dv + d) : 0.0f;
    }
    __syncthreads();

    float sc[4][2] = {};
    for (int d = 0; d < D; d++) {
      float qv[4], kv[2];
#pragma unroll
      for (int i = 0; i < 4; i++) qv[i] = Qs[(mg + 16 * i) * DP + d];
#pragma unroll
      for (int c = 0; c < 2; c++) kv[c] = Ks[(cg + 16 * c) * DP + d];
#pragma unroll
      for (int i = 0; i < 4; i++)
#pragma unroll
        for (int c = 0; c < 2; c++) sc[i][c] = fmaf(qv[i], kv[c], sc[i][c]);
    }
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
      for (int c = 0; c < 2; c++) {
        int m = mg + 16 * i, j = cg + 16 * c, kpos = k0 + j;
        bool ok = m < nv && j < nk && slot_s[j] >= 0 && kpos >= lo_s[m] && kpos <= hi_s[m];
        Ss[m * kSP + j] = ok ? sc[i][c] * a.scale : -INFINITY;
      }
    __syncthreads();

    // Online softmax: 4 threads per vector, 8 keys each.
    {
      const int m = tid >> 2, part = tid & 3;
      float* sr = Ss + m * kSP + part * 8;
      float mx = -INFINITY;
#pragma unroll
      for (int j = 0; j < 8; j++) mx = fmaxf(mx, sr[j]);
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      const float m_old = m_run[m], m_new = fmaxf(m_old, mx);
      float sum = 0.0f;
#pragma unroll
      for (int j = 0; j < 8; j++) {
        float p = m_new == -INFINITY ? 0.0f : expf(sr[j] - m_new);
        sr[j] = p;
        sum += p;
      }
      sum += __shfl_xor_sync(0xffffffffu, sum, 1);
      sum += __shfl_xor_sync(0xffffffffu, sum, 2);
      if (part == 0) {
        float al = m_old == -INFINITY ? 0.0f : expf(m_old - m_new);
        alpha[m] = al;
        l_run[m] = l_run[m] * al + sum;
        m_run[m] = m_new;
      }
    }
    __syncthreads();

#pragma unroll
    for (int i = 0; i < 4; i++) {
      float al = alpha[mg + 16 * i];
#pragma unroll
      for (int c = 0; c < DVI; c++) acc[i][c] *= al;
    }
    for (int j = 0; j < nk; j++) {
      float p[4], vv[DVI];
#pragma unroll
      for (int i = 0; i < 4; i++) p[i] = Ss[(mg + 16 * i) * kSP + j];
#pragma unroll
      for (int c = 0; c < DVI; c++) vv[c] = cg + 16 * c < Dv ? Vs[j * Dv + cg + 16 * c] : 0.0f;
#pragma unroll
      for (int i = 0; i < 4; i++)
#pragma unroll
        for (int c = 0; c < DVI; c++) acc[i][c] = fmaf(p[i], vv[c], acc[i][c]);
    }
    __syncthreads();  // the next tile overwrites K, V and the scores
  }

#pragma unroll
  for (int i = 0; i < 4; i++) {
    const int m = mg + 16 * i;
    if (m >= nv) continue;
    const int v = v0 + m, row = q0 + v / G, h = kh * G + v % G;
    const float mm = m_run[m], l = l_run[m];
    if (a.nsplit > 1) {
      float* pa = a.part_acc + ((int64_t(split) * a.T + row) * a.H + h) * Dv;
#pragma unroll
      for (int c = 0; c < DVI; c++)
        if (cg + 16 * c < Dv) pa[cg + 16 * c] = acc[i][c];
      if (cg == 0) {
        float* pm = a.part_ml + ((int64_t(split) * a.T + row) * a.H + h) * 2;
        pm[0] = mm;
        pm[1] = l;
      }
      continue;
    }
    // The sink is one more logit with no value vector.
    float factor = mm == -INFINITY ? 0.0f : 1.0f, den = l;
    if (a.sinks) {
      float sk = a.sinks[h], mf = fmaxf(mm, sk);
      factor = mm == -INFINITY ? 0.0f : expf(mm - mf);
      den = l * factor + expf(sk - mf);
    }
    float inv = den > 0.0f ? factor / den : 0.0f;
    float* o = a.out + (int64_t(row) * a.H + h) * Dv;
#pragma unroll
    for (int c = 0; c < DVI; c++)
      if (cg + 16 * c < Dv) o[cg + 16 * c] = acc[i][c] * inv;
  }
}

// Merges the splits of one (row, head): rescale each split's sum to the
// common max, add the sink to the denominator, normalise. Splits in z order;
// an empty split (max -inf) weighs exactly 0.
__global__ void attn_combine_kernel(const float* part_acc, const float* part_ml, const float* sinks, int nsplit,
                                    int64_t T, int H, int Dv, float* out) {
  __shared__ float inv_den, m_final;
  const int64_t rh = blockIdx.x;
  const int h = int(rh % H);
  if (threadIdx.x == 0) {
    float M = -INFINITY;
    for (int z = 0; z < nsplit; z++) M = fmaxf(M, part_ml[(z * T * H + rh) * 2]);
    float sk = sinks ? sinks[h] : -INFINITY, Mf = fmaxf(M, sk);
    float den = 0.0f;
    for (int z = 0; z < nsplit; z++) {
      float mz = part_ml[(z * T * H + rh) * 2], lz = part_ml[(z * T * H + rh) * 2 + 1];
      den += lz * (mz == -INFINITY ? 0.0f : expf(mz - Mf));
    }
    if (sinks) den += expf(sk - Mf);
    inv_den = den > 0.0f ? 1.0f / den : 0.0f;
    m_final = Mf;
  }
  __syncthreads();
  for (int d = threadIdx.x; d < Dv; d += blockDim.x) {
    float o = 0.0f;
    for (int z = 0; z < nsplit; z++) {
      float mz = part_ml[(z * T * H + rh) * 2];
      o += part_acc[(z * T * H + rh) * Dv + d] * (mz == -INFINITY ? 0.0f : expf(mz - m_final));
    }
    out[rh * Dv + d] = o * inv_den;
  }
}


template <typename KV, int DVI>
void launch(const AttnArgs& a, cudaStream_t s) {
  int G = a.H / a.nkv;
  int tiles = int(ceil_div(int64_t(a.max_q_len) * G, kQV));
  dim3 grid(unsigned(a.num_seqs * tiles), unsigned(a.nkv), unsigned(a.nsplit));
  size_t smem = smem_floats(a.D, a.Dv) * sizeof(float);
  attn_kernel<KV, DVI><<<grid, kThreads, smem, s>>>(a, tiles);
}

template <typename KV>
void launch_kv(const AttnArgs& a, cudaStream_t s) {
  if (a.Dv <= 32) launch<KV, 2>(a, s);
  else if (a.Dv <= 64) launch<KV, 4>(a, s);
  else if (a.Dv <= 128) launch<KV, 8>(a, s);
  else launch<KV, 16>(a, s);
}

template <typename KV>
void set_smem_limit() {
  int bytes = int(smem_floats(kAttnMaxHeadDim, kAttnMaxHeadDim) * sizeof(float));
  cudaFuncSetAttribute(attn_kernel<KV, 2>, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
  cudaFuncSetAttribute(attn_kernel<KV, 4>, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
  cudaFuncSetAttribute(attn_kernel<KV, 8>, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
  cudaFuncSetAttribute(attn_kernel<KV, 16>, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
}

}  // namespace

int attention_splits(const AttnArgs& a) {
  if (a.max_q_len > kSplitMaxQ) return 1;
  // Keys a block can span: a sliding window plus the block's rows, or the context.
  int64_t span = a.max_kv_len;
  if (a.window > 0) span = std::min<int64_t>(span, int64_t(a.window) + a.max_q_len - 1);
  // Chunks from the one holding the block's first key to the one holding its last.
  int64_t n = (std::max<int64_t>(span, 1) - 1) / kSplitKeys + 2;
  if (n * a.T * a.H * (a.Dv + 2) * 4 > kSplitBudgetBytes) return 1;
  return int(n);
}

void attention_prepare() {
  set_smem_limit<float>();
  set_smem_limit<uint16_t>();
}

void attention(const AttnArgs& a, cudaStream_t s) {
  if (a.T == 0 || a.num_seqs == 0) return;
  if (a.kv_bf16) launch_kv<uint16_t>(a, s);
  else launch_kv<float>(a, s);
  if (a.nsplit > 1)
    attn_combine_kernel<<<unsigned(int64_t(a.T) * a.H), 128, 0, s>>>(a.part_acc, a.part_ml, a.sinks, a.nsplit, a.T,
                                                                      a.H, a.Dv, a.out);
}

}  // namespace mimo::cuda
