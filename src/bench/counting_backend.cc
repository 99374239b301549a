#include "bench/counting_backend.h"

#include <algorithm>
#include <chrono>
#include <vector>

namespace mimo::bench {

namespace {
double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
std::vector<int32_t> host_ints(Backend& be, const Tensor& t) {
  std::vector<int32_t> v(static_cast<size_t>(t.numel()));
  if (!v.empty()) be.copy_to_host(v.data(), t);
  return v;
}
}  // namespace

const char* op_kind_name(int k) {
  static const char* names[kNumOpKinds] = {"linear", "attention", "moe", "norm+add", "rope", "other"};
  return k >= 0 && k < kNumOpKinds ? names[k] : "?";
}

CountingBackend::Timer::Timer(OpCounts& c_, int k_) : c(c_), k(k_), t0(now()) {}
CountingBackend::Timer::~Timer() { c.seconds[k] += now() - t0; }

namespace {
// Bytes a kernel reads for a weight: its elements plus any block scales.
double stored_bytes(const Tensor& w) { return double(w.nbytes()) + (w.scales() ? double(w.scales()->nbytes()) : 0.0); }
}  // namespace

void CountingBackend::linear(const Tensor& x, const Tensor& w, Tensor& out) {
  {
    Timer t(c_, kOpLinear);
    in_.linear(x, w, out);
  }
  int64_t K = w.dim(1), N = w.dim(0), M = x.numel() / K;
  c_.bytes[kOpLinear] += stored_bytes(w);
  c_.flops += 2.0 * double(M) * double(N) * double(K);
}

void CountingBackend::moe_experts(const Tensor& x, const Tensor& ids, const Tensor& weights, const Tensor& gate_up,
                                  const Tensor& down, int expert_begin, Tensor& out) {
  {
    Timer t(c_, kOpMoe);
    in_.moe_experts(x, ids, weights, gate_up, down, expert_begin, out);
  }
  const int E = int(gate_up.dim(0));
  const double per_expert = (stored_bytes(gate_up) + stored_bytes(down)) / E;
  const double mac = double(gate_up.dim(1)) * double(gate_up.dim(2)) + double(down.dim(1)) * double(down.dim(2));
  std::vector<char> seen(static_cast<size_t>(E), 0);
  for (int32_t id : host_ints(*this, ids)) {
    int e = id - expert_begin;
    if (e < 0 || e >= E) continue;
    c_.flops += 2.0 * mac;
    if (!seen[size_t(e)]) {
      seen[size_t(e)] = 1;
      c_.experts++;
      c_.bytes[kOpMoe] += per_expert;
    }
  }
}

void CountingBackend::attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const Tensor& sinks,
                                const AttnMeta& meta, const AttnParams& p, Tensor& out) {
  {
    Timer t(c_, kOpAttention);
    in_.attention(q, k_cache, v_cache, sinks, meta, p, out);
  }
  auto pos = host_ints(*this, meta.positions), qs = host_ints(*this, meta.q_start), kvl = host_ints(*this, meta.kv_len);
  const int64_t H = q.dim(1), D = q.dim(2), Dv = v_cache.dim(2), nkv = k_cache.dim(0);  // caches: [nkv, slots, D]
  const double kv_token_bytes = double(nkv * (D + Dv)) * double(dtype_size(k_cache.dtype()));
  for (int s = 0; s < meta.num_seqs; s++) {
    // Keys visible to any row of the sequence are read once (per kv head,
    // shared by its query heads); every row pays FLOPs for its own keys.
    int64_t lo_all = INT64_MAX, hi_all = -1;
    for (int32_t r = qs[size_t(s)]; r < qs[size_t(s) + 1]; r++) {
      int64_t hi = std::min<int64_t>(pos[size_t(r)], kvl[size_t(s)] - 1);
      int64_t lo = p.window > 0 ? std::max<int64_t>(0, pos[size_t(r)] - p.window + 1) : 0;
      if (hi < lo) continue;
      lo_all = std::min(lo_all, lo);
      hi_all = std::max(hi_all, hi);
      c_.flops += 2.0 * double(H) * double(D + Dv) * double(hi - lo + 1);
    }
    if (hi_all >= lo_all) c_.bytes[kOpAttention] += kv_token_bytes * double(hi_all - lo_all + 1);
  }
}

}  // namespace mimo::bench
