#include "kv/kv_cache.h"

#include <atomic>

#include "core/error.h"

namespace mimo {

namespace {
uint64_t next_id() {
  static std::atomic<uint64_t> n{0};
  return ++n;
}
}  // namespace

KvCache::KvCache(const ModelSpec& spec, Backend& backend, DType dtype, std::vector<int64_t> pool_slots, int num_mtp)
    : dtype_(dtype), id_(next_id()), slots_(std::move(pool_slots)) {
  bpt_.assign(size_t(kPoolMtp0 + num_mtp), 0);
  // MTP layers address their KV with the full pool's slots unless told otherwise.
  for (size_t p = slots_.size(); p < bpt_.size(); p++) slots_.push_back(p >= size_t(kPoolMtp0) && !slots_.empty() ? slots_[0] : 0);
  auto make = [&](const AttnSpec& a, int pool, Tensor& k, Tensor& v) {
    int64_t n = slots_[size_t(pool)] + 1;  // + the padding slot
    k = backend.alloc_streamed({a.num_kv_heads, n, a.head_dim}, dtype);
    v = backend.alloc_streamed({a.num_kv_heads, n, a.v_head_dim}, dtype);
    bpt_[size_t(pool)] += int64_t(a.num_kv_heads) * (a.head_dim + a.v_head_dim) * int64_t(dtype_size(dtype));
  };
  k_.resize(size_t(spec.num_layers()));
  v_.resize(size_t(spec.num_layers()));
  for (int l = 0; l < spec.num_layers(); l++)
    make(spec.layers[size_t(l)].attn, pool_of(spec.layers[size_t(l)].attn.kind), k_[size_t(l)], v_[size_t(l)]);
  mk_.resize(size_t(num_mtp));
  mv_.resize(size_t(num_mtp));
  for (int i = 0; i < num_mtp; i++) make(spec.mtp_attn, kPoolMtp0 + i, mk_[size_t(i)], mv_[size_t(i)]);
}

int64_t KvCache::bytes_per_token(int pool) const { return pool < int(bpt_.size()) ? bpt_[size_t(pool)] : 0; }

int64_t KvCache::total_bytes() const {
  int64_t n = 0;
  for (size_t p = 0; p < bpt_.size(); p++) n += bpt_[p] * slots_[p];
  return n;
}

}  // namespace mimo
