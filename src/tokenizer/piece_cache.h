// Memoised BPE results per pre-tokenized piece, shared by all encoding
// threads. Most pieces are short words whose merge result is a few ids, so
// they live in a direct-mapped table read without locks (a seqlock per slot:
// a lookup costs a hash and a 64-byte read, where a mutex and a node-based map
// cost more than merging a short piece). Longer pieces (up to 255 bytes, e.g.
// runs of CJK text) go to a sharded map under mutexes. Both tiers evict by
// overwriting or clearing: the cache is bounded (about 4 + 10 MB) and a miss
// only costs a merge.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace mimo {

class PieceCache {
 public:
  static constexpr size_t kMaxKeyLen = 255;  // longer pieces are not cached

  PieceCache();
  ~PieceCache();

  // Appends the cached ids of `piece` to *out and returns true, or returns false.
  bool find(std::string_view piece, std::vector<int32_t>* out) const;
  void insert(std::string_view piece, const int32_t* ids, size_t n);
  void clear();

 private:
  // Short tier: one 64-byte slot per entry, 8 atomic words:
  //   [0] seq << 16 | key length << 8 | id count   (seq odd while written)
  //   [1] key hash, [2..4] key bytes, [5..7] ids (two per word)
  static constexpr size_t kSlots = size_t(1) << 16;
  static constexpr size_t kShortKey = 24;
  static constexpr size_t kShortIds = 6;
  struct alignas(64) Slot {
    std::atomic<uint64_t> w[8];
  };
  std::unique_ptr<Slot[]> slots_;

  // Long tier.
  static constexpr size_t kShards = 64;
  static constexpr size_t kShardCapacity = 1024;
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  struct Shard {
    std::mutex mu;
    std::unordered_map<std::string, std::vector<int32_t>, Hash, std::equal_to<>> map;
  };
  std::unique_ptr<std::array<Shard, kShards>> shards_;
  Shard& shard_for(std::string_view key) const { return (*shards_)[(Hash{}(key) >> 7) % kShards]; }
};

}  // namespace mimo
