#include "tokenizer/piece_cache.h"

#include <algorithm>
#include <cstring>

namespace mimo {
namespace {

constexpr uint64_t kWriting = uint64_t(1) << 16;  // low bit of the sequence number

// Bytes p[0..n) (n <= 8) as a zero-padded little-endian word, without a
// variable-length memcpy: two overlapping fixed-size loads whose shared bytes
// are the same, so OR-ing them is exact.
inline uint64_t load_word(const char* p, size_t n) {
  if (n >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    return w;
  }
  if (n >= 4) {
    uint32_t a, b;
    std::memcpy(&a, p, 4);
    std::memcpy(&b, p + n - 4, 4);
    return a | (uint64_t(b) << (8 * (n - 4)));
  }
  if (n == 0) return 0;
  return uint64_t(uint8_t(p[0])) | (uint64_t(uint8_t(p[n / 2])) << (8 * (n / 2))) |
         (uint64_t(uint8_t(p[n - 1])) << (8 * (n - 1)));
}

// The key, zero-padded to three words, and a hash of it.
inline uint64_t short_key(std::string_view s, uint64_t w[3]) {
  const size_t n = s.size();
  w[0] = load_word(s.data(), n);
  w[1] = n > 8 ? load_word(s.data() + 8, n - 8) : 0;
  w[2] = n > 16 ? load_word(s.data() + 16, n - 16) : 0;
  uint64_t h = s.size() * 0x9e3779b97f4a7c15ull;
  h = (h ^ (w[0] * 0xbf58476d1ce4e5b9ull));
  h = ((h << 29) | (h >> 35)) ^ (w[1] * 0x94d049bb133111ebull);
  h = ((h << 29) | (h >> 35)) ^ (w[2] * 0xff51afd7ed558ccdull);
  h ^= h >> 32;
  h *= 0xd6e8feb86659fd93ull;
  h ^= h >> 32;
  return h;
}

}  // namespace

PieceCache::PieceCache()
    : slots_(std::make_unique<Slot[]>(kSlots)), shards_(std::make_unique<std::array<Shard, kShards>>()) {}

PieceCache::~PieceCache() = default;

bool PieceCache::find(std::string_view piece, std::vector<int32_t>* out) const {
  if (piece.size() <= kShortKey) {
    uint64_t key[3];
    const uint64_t h = short_key(piece, key);
    const Slot& s = slots_[h & (kSlots - 1)];
    // Seqlock read: a consistent copy is one taken between two equal, even
    // sequence numbers; anything else is treated as a miss.
    const uint64_t head = s.w[0].load(std::memory_order_acquire);
    uint64_t v[7];
    for (size_t k = 0; k < 7; ++k) v[k] = s.w[k + 1].load(std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_acquire);
    const size_t len = (head >> 8) & 0xFF, n = head & 0xFF;
    if (!(head & kWriting) && s.w[0].load(std::memory_order_relaxed) == head && n != 0 && len == piece.size() &&
        v[0] == h && v[1] == key[0] && v[2] == key[1] && v[3] == key[2]) {
      for (size_t i = 0; i < n; ++i) out->push_back(int32_t(uint32_t(v[4 + i / 2] >> (32 * (i % 2)))));
      return true;
    }
    // A short piece with more than kShortIds ids lives in the long tier.
  }
  if (piece.size() > kMaxKeyLen) return false;
  Shard& shard = shard_for(piece);
  std::lock_guard<std::mutex> lock(shard.mu);
  auto it = shard.map.find(piece);
  if (it == shard.map.end()) return false;
  out->insert(out->end(), it->second.begin(), it->second.end());
  return true;
}

void PieceCache::insert(std::string_view piece, const int32_t* ids, size_t n) {
  if (n == 0 || piece.size() > kMaxKeyLen) return;
  if (piece.size() <= kShortKey && n <= kShortIds) {
    uint64_t key[3];
    const uint64_t h = short_key(piece, key);
    Slot& s = slots_[h & (kSlots - 1)];
    uint64_t head = s.w[0].load(std::memory_order_relaxed);
    // Another writer holds the slot: skip, the entry is only an optimisation.
    if ((head & kWriting) || !s.w[0].compare_exchange_strong(head, head + kWriting, std::memory_order_acquire,
                                                            std::memory_order_relaxed)) {
      return;
    }
    std::atomic_thread_fence(std::memory_order_release);
    uint64_t v[7] = {h, key[0], key[1], key[2], 0, 0, 0};
    for (size_t i = 0; i < n; ++i) v[4 + i / 2] |= uint64_t(uint32_t(ids[i])) << (32 * (i % 2));
    for (size_t k = 0; k < 7; ++k) s.w[k + 1].store(v[k], std::memory_order_relaxed);
    const uint64_t seq = ((head >> 16) + 2) << 16;  // even again, one step on
    s.w[0].store(seq | (piece.size() << 8) | n, std::memory_order_release);
    return;
  }
  Shard& shard = shard_for(piece);
  std::lock_guard<std::mutex> lock(shard.mu);
  if (shard.map.size() >= kShardCapacity) shard.map.clear();
  shard.map.emplace(std::string(piece), std::vector<int32_t>(ids, ids + n));
}

void PieceCache::clear() {
  for (size_t i = 0; i < kSlots; ++i) {
    Slot& s = slots_[i];
    uint64_t head = s.w[0].load(std::memory_order_relaxed);
    if ((head & kWriting) == 0 &&
        s.w[0].compare_exchange_strong(head, head + kWriting, std::memory_order_acquire, std::memory_order_relaxed)) {
      s.w[0].store(((head >> 16) + 2) << 16, std::memory_order_release);  // id count 0: empty
    }
  }
  for (Shard& shard : *shards_) {
    std::lock_guard<std::mutex> lock(shard.mu);
    shard.map.clear();
  }
}

}  // namespace mimo
