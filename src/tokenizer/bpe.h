// The byte-level BPE model of tokenizer.json: vocab, ranked merges, and the
// merge loop. Merges are applied lowest rank first (leftmost on ties), as
// Hugging Face does. Long pieces use a heap over a linked list of symbols, so
// they cost O(n log n) rather than a rescan per merge; results are memoised
// per piece (piece_cache.h) because encode runs on many HTTP threads at once.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace mimo {

class PieceCache;

class BpeModel {
 public:
  // `model` is tokenizer.json's "model" object. Throws mimo::Error for
  // anything but a byte-level-compatible BPE, and for merges that refer to
  // tokens missing from the vocab (as Hugging Face does).
  static std::unique_ptr<BpeModel> from_json(const nlohmann::json& model);
  ~BpeModel();

  // Appends the ids of one pre-tokenized piece, given as raw bytes (the
  // ByteLevel mapping happens here through a byte -> id table).
  void encode(std::string_view piece, std::vector<int32_t>* out) const;
  // Two merge loops with identical results: a rescan of the few pairs of a
  // short piece (cheapest below ~32 symbols) and a heap for long pieces.
  // kAuto picks by length; tests force each to check they agree.
  enum class MergeLoop { kAuto, kScan, kHeap };
  // encode() without the cache (tests compare the two; benchmarks time it).
  void encode_uncached(std::string_view piece, std::vector<int32_t>* out, MergeLoop loop = MergeLoop::kAuto) const;
  void clear_cache() const;

  int32_t id_limit() const { return int32_t(tok_off_.size()) - 1; }  // largest id + 1
  std::optional<int32_t> token_to_id(std::string_view token) const;
  // The vocab string of `id`; nullopt when the vocab has no such id.
  std::optional<std::string_view> id_to_token(int32_t id) const;

 private:
  BpeModel();

  struct Merge {
    int32_t rank;
    int32_t new_id;
  };
  // Open-addressing map from a pair of ids to its merge: the lookup in the
  // inner loop of encode, so it avoids std::unordered_map's node chasing.
  class PairMap {
   public:
    void reserve(size_t n);
    void insert(int32_t a, int32_t b, Merge m);
    const Merge* find(int32_t a, int32_t b) const;

   private:
    struct Slot {
      uint64_t key;
      Merge merge;
    };
    static constexpr uint64_t kEmpty = ~0ull;
    std::vector<Slot> slots_;
    uint64_t mask_ = 0;
  };

  struct Symbol {
    int32_t id, prev, next;
    uint32_t len;  // bytes covered; 0 once merged into its left neighbour
  };
  void merge_scan(std::vector<Symbol>& sym, std::vector<int32_t>* out) const;
  void merge_heap(std::vector<Symbol>& sym, std::vector<int32_t>* out) const;

  std::string tok_blob_;             // all vocab strings, back to back
  std::vector<uint32_t> tok_off_;    // id -> offset in tok_blob_ (id_limit + 1 entries)
  std::vector<bool> has_id_;         // vocab ids can have holes
  std::unordered_map<std::string_view, int32_t> vocab_;  // views into tok_blob_
  std::array<int32_t, 256> byte_id_{};                   // byte -> id of its mapped char, or -1
  PairMap merges_;
  int32_t unk_id_ = -1;
  bool fuse_unk_ = false;
  bool ignore_merges_ = false;
  std::unique_ptr<PieceCache> cache_;  // mutable through the pointer: a cache, not state
};

}  // namespace mimo
