// KV storage: one K and one V buffer per attention layer, [nkv, slots, D]
// (head-major: one KV head's rows of a sequence's contiguous slots are one
// contiguous run, which is how decode attention reads them),
// grouped in pools that share slot numbering: pool 0 holds the
// full-attention layers, pool 1 the sliding-window layers, pool 2 + k the
// k-th MTP layer. Which slot a token uses is the runtime's business; the
// model reads slots through AttnMeta tables, so the same buffers serve a
// simple per-sequence cache (slot = position) and paged pools.
#pragma once

#include <memory>
#include <vector>

#include "model/spec.h"
#include "ops/backend.h"

namespace mimo {

constexpr int kPoolFull = 0, kPoolSwa = 1, kPoolMtp0 = 2;
inline int pool_of(AttnKind k) { return k == AttnKind::Full ? kPoolFull : kPoolSwa; }

class KvCache {
 public:
  // pool_slots[p] = slots of pool p (pools beyond the vector get none).
  KvCache(const ModelSpec& spec, Backend& backend, DType dtype, std::vector<int64_t> pool_slots, int num_mtp = 0);

  Tensor& k(int layer) { return k_[size_t(layer)]; }
  Tensor& v(int layer) { return v_[size_t(layer)]; }
  Tensor& mtp_k(int i) { return mk_[size_t(i)]; }
  int num_mtp() const { return int(mk_.size()); }
  Tensor& mtp_v(int i) { return mv_[size_t(i)]; }
  int64_t slots(int pool) const { return pool < int(slots_.size()) ? slots_[size_t(pool)] : 0; }
  // One slot past the pool's slots that no sequence owns: the rows a padded
  // batch adds (graph steps run at a bucketed batch size) write and read
  // their K/V there. Every pool's buffers hold it; MTP pools share the full
  // pool's numbering, so pad_slot(kPoolFull) serves them too.
  int32_t pad_slot(int pool) const { return int32_t(slots(pool)); }
  DType dtype() const { return dtype_; }
  // Unique per cache object (never reused), and a token that expires with
  // it, for whoever holds its addresses (the model's step graphs).
  uint64_t id() const { return id_; }
  std::weak_ptr<const void> lifetime() const { return alive_; }
  // Bytes one token takes in a pool (all layers of the pool together).
  int64_t bytes_per_token(int pool) const;
  int64_t total_bytes() const;

 private:
  DType dtype_;
  uint64_t id_;
  std::shared_ptr<const void> alive_ = std::make_shared<int>(0);
  std::vector<int64_t> slots_;
  std::vector<Tensor> k_, v_, mk_, mv_;
  std::vector<int64_t> bpt_;
};

}  // namespace mimo
