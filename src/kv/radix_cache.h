// Prefix (radix) cache over token ids for a hybrid full/SWA model.
//
// Each cached token holds a full-pool slot and an SWA-pool slot, or -1 for the SWA slot (an SWA tombstone: its
// SWA KV was freed while the full KV is kept). Invariants:
//  - Nodes hold runs of tokens whose length is a multiple of page_size, so every node starts at a page-aligned
//    position and its slots are whole allocator pages (SlotAllocator's page-contiguity). Children are keyed by
//    their first page; comparisons and splits happen in whole pages, so a partial page is never cached.
//  - A node's SWA state is uniform: all its SWA slots are live, or all are -1 (tombstoned). Inserting or reviving
//    a run with mixed SWA state splits nodes at the (page-aligned) transitions.
//  - The tree owns every slot it holds: cached_full() / cached_swa() slots, each exactly once, freed back to the
//    allocator it came from exactly once (by eviction, by insert for duplicates, or by reset). The destructor frees
//    nothing (the allocators may already be gone); call reset() first to hand slots back.
//  - A RadixNode* stays valid (and keeps its end position) until the node is evicted. Splits always create the
//    new node as the upper piece, so a locked node or one just returned by match_prefix keeps meaning the same
//    prefix. Locked nodes are never evicted; unlocked pointers are dead after any eviction or reset.
//  - LRU: every match/insert takes a new tick and stamps it on the nodes of its path, so a parent's tick is never
//    older than its children's. Full eviction deletes unlocked leaves (oldest tick first); SWA eviction tombstones
//    SWA-unlocked live nodes (oldest tick first, ties shallower first: the front of an old prefix goes before
//    its end, which keeps the end usable as a match point).
//  - Eviction is page-precise, not node-granular: evict_full(n) trims the tail pages of the oldest leaf when the
//    whole leaf is more than needed, and evict_swa(n) tombstones only the leading pages of an internal node.
//    Either frees ceil(n / page) pages when that much is evictable (so it may return up to page_size - 1 more
//    than n), else everything evictable.
//  - Leaf vs internal under SWA eviction: an unlocked leaf (no full lock) is removed outright, tail first
//    (freeing its full slots too: a tombstoned leaf can never end a usable match); any other node is tombstoned.
//  - Lock counting: lock(node) raises the full lock of every node from `node` to the root, and the SWA lock of the
//    nodes covering positions [floor_page(end - window), end) (lock splits a node so that one starts exactly
//    there, which makes unlock find the same nodes after any later splits). So a locked request's last `window`
//    (rounded out to the page) tokens keep their SWA KV; older SWA KV of its prefix may be tombstoned, and the
//    request must not read it (it sits outside every query's window).
//  - Disabled (--disable-radix-cache): the tree stays empty; match returns nothing, insert frees what it is given.
//
// Not thread-safe: the scheduler thread owns the cache and both allocators.
#pragma once

#include <cstdint>
#include <memory>
#include <set>
#include <span>
#include <vector>

#include "kv/slot_allocator.h"

namespace mimo {

struct RadixNode;  // opaque to users

struct PrefixMatch {
  int64_t length = 0;                 // usable cached tokens (multiple of page_size; see SWA rule)
  std::vector<int32_t> full_slots;    // [length]
  std::vector<int32_t> swa_slots;     // [length]; -1 where tombstoned (only possible more than `window` tokens before the end)
  RadixNode* node = nullptr;          // deepest node of the usable match (pass to lock/unlock); root when length == 0
};

class RadixCache {
 public:
  // swa == nullptr for models without sliding layers (then swa_slots are all -1 and SWA logic is off).
  // window = the sliding window W (keys a query sees). disabled == true: match returns nothing and insert
  // frees what it is given (--disable-radix-cache). page_size must be a multiple of both allocators' page sizes.
  RadixCache(SlotAllocator& full, SlotAllocator* swa, int window, int page_size, bool disabled);
  ~RadixCache();
  RadixCache(const RadixCache&) = delete;
  RadixCache& operator=(const RadixCache&) = delete;

  // Longest usable cached prefix of `tokens` (never the whole `tokens`: at most tokens.size() - 1, so a request
  // always has at least one token to run). SWA rule: a match ending at position L is usable only if every token in
  // [L - window, L) has a live SWA slot (non-tombstone), or L <= window and no tombstone lies on [0, L);
  // so the longest usable L is returned, rounded down to page_size. Updates LRU times along the path.
  // If the match ends inside a node, that node is split so the match ends at a node boundary.
  PrefixMatch match_prefix(std::span<const int32_t> tokens);

  // The longest cached prefix of `tokens` itself (up to all of it, page-aligned), ignoring the SWA rule: for a
  // request that just inserted its own computed prefix (chunked prefill) and now takes the tree's slots and node
  // in place of its own. swa_slots are -1 where tombstoned, anywhere. Updates LRU times like match_prefix.
  PrefixMatch match_cached(std::span<const int32_t> tokens);

  // Inserts tokens[0..n) with their slots (n a multiple of page_size unless it is the whole finished sequence; the
  // cache keeps only the page-aligned part and frees the slots of the rest). Slots for tokens the tree already holds
  // are returned to their allocators by insert itself (they are duplicates the caller no longer needs), EXCEPT slots
  // the caller got from a match on this same tree (those equal the tree's own and must not be freed twice — compare
  // slot values). A token whose full slot equals the tree's is the tree's own: its SWA value from the caller is
  // ignored (the caller's copy may be stale after SWA eviction). A token whose SWA slot is -1 is inserted
  // tombstoned; if the tree has a live SWA slot for a token the caller passes as -1, the tree keeps its own; if the
  // tree has a tombstone where the caller passes its own live SWA slot, the tree takes it (revives the tombstone).
  // After insert the caller owns none of the slots it passed. swa_slots may be empty when the cache has no SWA pool.
  // Returns the number of leading tokens that were already cached. In disabled mode everything passed is freed, so
  // do not insert an unfinished request there.
  int64_t insert(std::span<const int32_t> tokens, std::span<const int32_t> full_slots,
                 std::span<const int32_t> swa_slots);

  // Lock counting: a running request locks its matched prefix so eviction leaves it alone. lock() protects the full
  // slots of every node from `node` to the root, and the SWA slots only of the last `window` tokens before the
  // node's end (rounded out to the page; older SWA slots may be tombstoned by SWA eviction even while locked).
  // unlock() undoes exactly that. Locking the root (an empty match) does nothing.
  void lock(RadixNode* node);
  void unlock(RadixNode* node);

  // Eviction, LRU by last access. evict_full frees up to n full slots (and their SWA slots) by deleting unlocked
  // leaves, oldest first, cascading to parents that become unlocked leaves. evict_swa frees up to n SWA slots by
  // tombstoning unlocked (for SWA) nodes, oldest first; an unlocked leaf is deleted outright instead (its full slots
  // are freed too, not counted). Both round n up to whole pages and return the number of slots actually freed.
  int64_t evict_full(int64_t n);
  int64_t evict_swa(int64_t n);
  int64_t evictable_full() const { return cached_full_ - locked_full_; }  // full slots evict_full could free now
  int64_t evictable_swa() const { return cached_swa_ - locked_swa_; }     // SWA slots evict_swa could free now
  int64_t cached_full() const { return cached_full_; }                    // full slots held by the tree
  int64_t cached_swa() const { return cached_swa_; }                      // live SWA slots held by the tree
  int64_t protected_full() const { return locked_full_; }                 // full slots under some lock
  int64_t protected_swa() const { return locked_swa_; }                   // live SWA slots under some SWA lock

  // Frees everything (refuses with false if anything is locked).
  bool reset();

  bool disabled() const { return disabled_; }
  int page_size() const { return page_; }
  int window() const { return window_; }
  bool has_swa() const { return swa_ != nullptr; }
  int64_t num_nodes() const { return num_nodes_; }
  // Tokens from the root to the end of `node` (0 for the root).
  static int64_t node_end(const RadixNode* node);
  // Walks the whole tree and MIMO_ASSERTs every invariant above plus the counters and LRU sets (O(tree); tests).
  void check_invariants() const;

 private:
  struct LruKey {
    uint64_t tick;
    int64_t start;
    uint64_t id;
    RadixNode* node;
    bool operator<(const LruKey& o) const {
      if (tick != o.tick) return tick < o.tick;
      if (start != o.start) return start < o.start;
      return id < o.id;
    }
  };

  PrefixMatch match_impl(std::span<const int32_t> tokens, bool usable_only);
  RadixNode* absorb(RadixNode* node, int64_t pos, std::span<const int32_t> full, std::span<const int32_t> swa,
                    uint64_t tick, std::vector<int32_t>& free_full, std::vector<int32_t>& free_swa);
  void add_chain(RadixNode* parent, int64_t pos, int64_t end, std::span<const int32_t> tokens,
                 std::span<const int32_t> full, std::span<const int32_t> swa, uint64_t tick);
  RadixNode* find_child(const RadixNode* parent, const int32_t* page_tokens) const;
  uint64_t child_key(const int32_t* page_tokens) const;
  int64_t common_length(const int32_t* a, const int32_t* b, int64_t n) const;
  RadixNode* split(RadixNode* node, int64_t k);
  void attach(RadixNode* node);
  void detach(RadixNode* node);
  void touch(RadixNode* node, uint64_t tick);
  void delete_leaf(RadixNode* node);
  void trim_tail(RadixNode* node, int64_t n);
  void tombstone(RadixNode* node);
  void destroy_all(bool free_slots);
  int64_t pages_up(int64_t n) const { return (n + page_ - 1) / page_ * page_; }

  SlotAllocator& full_;
  SlotAllocator* swa_;
  int window_, page_;
  bool disabled_;
  std::unique_ptr<RadixNode> root_;
  std::set<LruKey> full_lru_;  // unlocked leaves
  std::set<LruKey> swa_lru_;   // live nodes without an SWA lock
  uint64_t clock_ = 0, next_id_ = 1;
  int64_t cached_full_ = 0, cached_swa_ = 0, locked_full_ = 0, locked_swa_ = 0, num_nodes_ = 0;
};

}  // namespace mimo
