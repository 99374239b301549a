// Attention over slot-indexed KV (paged or not), with sliding windows and
// per-head sinks. Work items are (sequence, kv head, block of query rows):
// the query heads sharing a kv head read each key and value once.
//
// With AVX2 the items run the flash-style kernel of attention_avx2.cc. The
// portable path keeps the simple per-row form: two passes over the visible
// keys (scores, then the weighted sum of V), softmax in fp32. Both give a
// row a result that does not depend on the other rows of the step.
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
void attend_portable(const float* q, const KV* kc, const KV* vc, const float* sinks, const AttnMeta& meta,
                     const AttnParams& p, int H, int nkv, int64_t n_slots, int D, int Dv, float* out, ThreadPool& pool,
                     const std::vector<int32_t>& seq_of) {
  const int G = H / nkv;
  const int32_t* pos = meta.positions.ptr<int32_t>();
  const int32_t* kvl = meta.kv_len.ptr<int32_t>();
  const int32_t* ts = meta.table_start.ptr<int32_t>();
  const int32_t* table = meta.table.ptr<int32_t>();
  const int64_t T = int64_t(seq_of.size());
  pool.parallel_for(T * nkv, 1, [&](int64_t b, int64_t e) {
    std::vector<float> scores, acc(size_t(G) * size_t(Dv)), denom(static_cast<size_t>(G));
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
        const KV* k = kc + (int64_t(kh) * n_slots + slots[j]) * D;
        for (int g = 0; g < G; g++) scores[size_t(g * L + j)] = cpu::dot(qrow + g * D, k, D) * p.scale;
      }
      std::fill(acc.begin(), acc.end(), 0.0f);
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
        const KV* v = vc + (int64_t(kh) * n_slots + slots[j]) * Dv;
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
  // Caches are [nkv, slots, D | Dv] (kv_cache.h).
  const int H = int(q.dim(1)), D = int(q.dim(2)), nkv = int(k_cache.dim(0)), Dv = int(v_cache.dim(2));
  const int64_t n_slots = k_cache.dim(1);
  MIMO_ASSERT(H % nkv == 0 && k_cache.dim(2) == D && out.dim(2) == Dv && v_cache.dim(1) == n_slots);
  const float* sk = sinks.numel() > 0 && sinks.data() ? sinks.ptr<float>() : nullptr;
  MIMO_ASSERT(v_cache.dtype() == k_cache.dtype());
  const cpu::KvType kv = k_cache.dtype() == DType::BF16      ? cpu::KvType::BF16
                         : k_cache.dtype() == DType::F8E4M3 ? cpu::KvType::FP8
                                                            : cpu::KvType::F32;
  const int32_t* qs = meta.q_start.ptr<int32_t>();
  const int S = meta.num_seqs;
  const int64_t T = qs[S];
  if (!cpu::cpu_features().avx2_fma) {
    seq_of_.resize(size_t(T));
    for (int s = 0; s < S; s++)
      for (int32_t r = qs[s]; r < qs[s + 1]; r++) seq_of_[size_t(r)] = s;
    if (kv == cpu::KvType::BF16)
      attend_portable(q.ptr<float>(), k_cache.ptr<uint16_t>(), v_cache.ptr<uint16_t>(), sk, meta, p, H, nkv, n_slots, D, Dv,
                      out.ptr<float>(), pool_, seq_of_);
    else if (kv == cpu::KvType::FP8)
      attend_portable(q.ptr<float>(), k_cache.ptr<uint8_t>(), v_cache.ptr<uint8_t>(), sk, meta, p, H, nkv, n_slots, D, Dv,
                      out.ptr<float>(), pool_, seq_of_);
    else
      attend_portable(q.ptr<float>(), k_cache.ptr<float>(), v_cache.ptr<float>(), sk, meta, p, H, nkv, n_slots, D, Dv,
                      out.ptr<float>(), pool_, seq_of_);
    return;
  }
  // Items: (sequence, query block, kv head), a block being up to ~48 query
  // vectors (rows x heads per kv head). Later blocks of a sequence see more
  // keys, so they go first and the cheap ones fill in at the end.
  const int G = H / nkv;
  const int64_t rows_per_block = std::max<int64_t>(1, 48 / G);
  seq_of_.clear();  // reused as the item list: (sequence, first row, rows)
  for (int s = 0; s < S; s++)
    for (int32_t r1 = qs[s + 1]; r1 > qs[s];) {
      int32_t r0 = int32_t(std::max<int64_t>(qs[s], r1 - rows_per_block));
      seq_of_.insert(seq_of_.end(), {s, r0, r1 - r0});
      r1 = r0;
    }
  const int64_t items = int64_t(seq_of_.size() / 3) * nkv;
  const int32_t* kvl = meta.kv_len.ptr<int32_t>();
  const int32_t* ts = meta.table_start.ptr<int32_t>();
  pool_.run_chunks(items, [&](int64_t it) {
    const int32_t* item = seq_of_.data() + (it / nkv) * 3;
    cpu::AttnRows a;
    a.q = q.ptr<float>();
    a.H = H, a.nkv = nkv, a.D = D, a.Dv = Dv, a.kh = int(it % nkv);
    const int64_t es = int64_t(dtype_size(k_cache.dtype()));
    a.k_cache = static_cast<const char*>(k_cache.data()) + a.kh * n_slots * D * es;  // this head's plane
    a.v_cache = static_cast<const char*>(v_cache.data()) + a.kh * n_slots * Dv * es;
    a.kv = kv;
    a.slots = meta.table.ptr<int32_t>() + ts[item[0]];
    a.pos = meta.positions.ptr<int32_t>();
    a.row0 = item[1], a.nrows = item[2], a.kv_len = kvl[item[0]];
    a.window = p.window;
    a.scale = p.scale;
    a.sinks = sk;
    a.out = out.ptr<float>();
    cpu::avx2::attention_rows(a);
  });
}

}  // namespace mimo
