// Attention over slot-indexed KV (paged or not), with sliding windows and
// per-head sinks. One work item is (query row, kv head): the group of query
// heads sharing that kv head is scored against each key in one pass, so K
// and V are read once per group. Two passes over the visible keys (scores,
// then the weighted sum of V), softmax in fp32.
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "core/thread_pool.h"
#include "ops/cpu/cpu_backend.h"
#include "ops/cpu/kernels.h"

namespace mimo {

namespace {

template <typename KV>
void attend(const float* q, const KV* kc, const KV* vc, const float* sinks, const AttnMeta& meta,
            const AttnParams& p, int H, int nkv, int D, int Dv, float* out, ThreadPool& pool) {
  const int G = H / nkv;
  const int32_t* pos = meta.positions.ptr<int32_t>();
  const int32_t* qs = meta.q_start.ptr<int32_t>();
  const int32_t* kvl = meta.kv_len.ptr<int32_t>();
  const int32_t* ts = meta.table_start.ptr<int32_t>();
  const int32_t* table = meta.table.ptr<int32_t>();
  const int64_t T = qs[meta.num_seqs];
  // Row -> sequence, so work items can be flat.
  std::vector<int32_t> seq_of(static_cast<size_t>(T));
  for (int s = 0; s < meta.num_seqs; s++)
    for (int32_t r = qs[s]; r < qs[s + 1]; r++) seq_of[size_t(r)] = s;

  pool.parallel_for(T * nkv, 1, [&](int64_t b, int64_t e) {
    std::vector<float> scores;
    std::vector<float> acc(size_t(G) * size_t(Dv));
    for (int64_t item = b; item < e; item++) {
      int64_t row = item / nkv;
      int kh = int(item % nkv);
      int s = seq_of[size_t(row)];
      int64_t ppos = pos[row];
      int64_t hi = std::min<int64_t>(ppos, kvl[s] - 1);
      int64_t lo = p.window > 0 ? std::max<int64_t>(0, ppos - p.window + 1) : 0;
      int64_t L = std::max<int64_t>(0, hi - lo + 1);
      const int32_t* slots = table + ts[s] + lo;
      scores.resize(size_t(G * L));
      const float* qrow = q + (row * H + int64_t(kh) * G) * D;
      for (int64_t j = 0; j < L; j++) {
        const KV* k = kc + (int64_t(slots[j]) * nkv + kh) * D;
        for (int g = 0; g < G; g++) scores[size_t(g * L + j)] = cpu::dot(qrow + g * D, k, D) * p.scale;
      }
      std::fill(acc.begin(), acc.end(), 0.0f);
      std::vector<float> denom(static_cast<size_t>(G));
      for (int g = 0; g < G; g++) {
        float* sc = scores.data() + g * L;
        float m = -INFINITY;
        for (int64_t j = 0; j < L; j++) m = std::max(m, sc[j]);
        float sink = sinks ? sinks[kh * G + g] : -INFINITY;
        m = std::max(m, sink);
        float l = 0;
        for (int64_t j = 0; j < L; j++) {
          sc[j] = std::exp(sc[j] - m);
          l += sc[j];
        }
        if (sinks) l += std::exp(sink - m);
        denom[size_t(g)] = l;
      }
      for (int64_t j = 0; j < L; j++) {
        const KV* v = vc + (int64_t(slots[j]) * nkv + kh) * Dv;
        for (int g = 0; g < G; g++) cpu::axpy(scores[size_t(g * L + j)], v, acc.data() + g * Dv, Dv);
      }
      for (int g = 0; g < G; g++) {
        float* o = out + (row * H + int64_t(kh) * G + g) * Dv;
        float inv = denom[size_t(g)] > 0 ? 1.0f / denom[size_t(g)] : 0.0f;
        for (int d = 0; d < Dv; d++) o[d] = acc[size_t(g * Dv + d)] * inv;
      }
    }
  });
}

}  // namespace

void CpuBackend::attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const Tensor& sinks,
                           const AttnMeta& meta, const AttnParams& p, Tensor& out) {
  int H = int(q.dim(1)), D = int(q.dim(2)), nkv = int(k_cache.dim(1)), Dv = int(v_cache.dim(2));
  MIMO_ASSERT(H % nkv == 0 && k_cache.dim(2) == D && out.dim(2) == Dv);
  const float* sk = sinks.numel() > 0 && sinks.data() ? sinks.ptr<float>() : nullptr;
  if (k_cache.dtype() == DType::BF16)
    attend(q.ptr<float>(), k_cache.ptr<uint16_t>(), v_cache.ptr<uint16_t>(), sk, meta, p, H, nkv, D, Dv,
           out.ptr<float>(), pool_);
  else
    attend(q.ptr<float>(), k_cache.ptr<float>(), v_cache.ptr<float>(), sk, meta, p, H, nkv, D, Dv, out.ptr<float>(),
           pool_);
}

}  // namespace mimo
