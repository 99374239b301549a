// RadixCache unit tests: matching and splitting, page-granular keys, the SWA usability rule, locks, LRU order,
// duplicate freeing and tombstone revival on insert, disabled mode, reset.
#include "kv/radix_cache.h"

#include <gtest/gtest.h>

#include <numeric>
#include <vector>

namespace mimo {
namespace {

using Vec = std::vector<int32_t>;

Vec iota(int n, int first) {
  Vec v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), first);
  return v;
}
Vec cat(Vec a, const Vec& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}
Vec head(const Vec& v, size_t n) { return Vec(v.begin(), v.begin() + long(n)); }
Vec alloc(SlotAllocator& a, int64_t n) {
  Vec out;
  EXPECT_TRUE(a.alloc(n, out));
  return out;
}
// Slots for a sequence of n tokens whose first m.length come from a match (the tree's), the rest fresh.
Vec extend(SlotAllocator& a, const Vec& prefix, int64_t n) {
  Vec out = prefix;
  EXPECT_TRUE(a.alloc_extend(int64_t(prefix.size()), prefix.empty() ? -1 : prefix.back(),
                             n - int64_t(prefix.size()), out));
  return out;
}
// SWA slots: live for positions in [live_from, live_to), -1 elsewhere.
Vec swa_slots(SlotAllocator& a, int n, int live_from, int live_to) {
  Vec out(size_t(n), -1);
  Vec live = alloc(a, live_to - live_from);
  std::copy(live.begin(), live.end(), out.begin() + live_from);
  return out;
}

TEST(RadixCache, MatchSplitsAndNeverReturnsWholeQuery) {
  SlotAllocator full(64, 1);
  RadixCache c(full, nullptr, 0, 1, false);
  const Vec a{1, 2, 3, 4, 5};
  const Vec fa = alloc(full, 5);
  EXPECT_EQ(c.insert(a, fa, {}), 0);
  EXPECT_EQ(c.cached_full(), 5);
  EXPECT_EQ(c.num_nodes(), 1);

  PrefixMatch m = c.match_prefix(a);  // at most size - 1
  EXPECT_EQ(m.length, 4);
  EXPECT_EQ(m.full_slots, head(fa, 4));
  EXPECT_EQ(m.swa_slots, Vec(4, -1));
  EXPECT_EQ(RadixCache::node_end(m.node), 4);
  EXPECT_EQ(c.num_nodes(), 2);  // split at 4 so the match ends on a node

  m = c.match_prefix(cat(a, {6}));
  EXPECT_EQ(m.length, 5);
  EXPECT_EQ(m.full_slots, fa);
  m = c.match_prefix(Vec{1, 2, 9});
  EXPECT_EQ(m.length, 2);
  EXPECT_EQ(c.num_nodes(), 3);
  m = c.match_prefix(Vec{7, 1});
  EXPECT_EQ(m.length, 0);
  EXPECT_EQ(RadixCache::node_end(m.node), 0);
  EXPECT_TRUE(m.full_slots.empty());
  EXPECT_EQ(c.match_prefix(Vec{1}).length, 0);
  EXPECT_EQ(c.match_prefix(Vec{}).length, 0);

  // A branch off the shared prefix.
  const Vec b{1, 2, 7, 8};
  m = c.match_prefix(b);
  ASSERT_EQ(m.length, 2);
  const Vec fb = extend(full, m.full_slots, 4);
  EXPECT_EQ(c.insert(b, fb, {}), 2);
  EXPECT_EQ(c.cached_full(), 7);
  EXPECT_EQ(full.free_slots(), 64 - 7);
  EXPECT_EQ(c.match_prefix(cat(b, {0})).full_slots, fb);
  EXPECT_EQ(c.match_prefix(cat(a, {0})).full_slots, fa);
  c.check_invariants();
  EXPECT_TRUE(c.reset());
  EXPECT_EQ(full.free_slots(), 64);
}

TEST(RadixCache, InsertFreesDuplicatesButNotMatchedSlots) {
  SlotAllocator full(64, 1), swa(64, 1);
  RadixCache c(full, &swa, 4, 1, false);
  const Vec a = iota(5, 10);
  ASSERT_EQ(c.insert(a, alloc(full, 5), alloc(swa, 5)), 0);
  // The same tokens computed again from scratch: all the new slots are duplicates and go back.
  EXPECT_EQ(c.insert(a, alloc(full, 5), alloc(swa, 5)), 5);
  EXPECT_EQ(full.free_slots(), 59);
  EXPECT_EQ(swa.free_slots(), 59);
  // A request that matched 4 tokens and extended by 3: only the 3 new tokens' slots move to the tree; the
  // matched ones are the tree's own and are not freed (a double free would abort).
  const Vec b = cat(head(a, 4), {20, 21, 22});
  PrefixMatch m = c.match_prefix(b);
  ASSERT_EQ(m.length, 4);
  const Vec fb = extend(full, m.full_slots, 7), sb = extend(swa, m.swa_slots, 7);
  EXPECT_EQ(c.insert(b, fb, sb), 4);
  EXPECT_EQ(c.cached_full(), 8);
  EXPECT_EQ(c.cached_swa(), 8);
  EXPECT_EQ(full.free_slots(), 56);
  EXPECT_EQ(swa.free_slots(), 56);
  // Partly cached, no match taken: the 3 duplicated tokens' fresh slots are freed, the last one is kept.
  const Vec d = cat(head(a, 3), {30});
  EXPECT_EQ(c.insert(d, alloc(full, 4), alloc(swa, 4)), 3);
  EXPECT_EQ(c.cached_full(), 9);
  EXPECT_EQ(full.free_slots(), 55);
  EXPECT_EQ(swa.free_slots(), 55);
  // The caller passes -1 for SWA where the tree has a live slot: the tree keeps its own.
  EXPECT_EQ(c.insert(a, alloc(full, 5), Vec(5, -1)), 5);
  EXPECT_EQ(c.cached_swa(), 9);
  EXPECT_EQ(full.free_slots(), 55);
  c.check_invariants();
  EXPECT_TRUE(c.reset());
  EXPECT_EQ(full.free_slots(), 64);
  EXPECT_EQ(swa.free_slots(), 64);
}

TEST(RadixCache, DisabledModeCachesNothing) {
  SlotAllocator full(32, 1), swa(32, 1);
  RadixCache c(full, &swa, 4, 1, true);
  const Vec t = iota(10, 0);
  EXPECT_EQ(c.insert(t, alloc(full, 10), alloc(swa, 10)), 0);
  EXPECT_EQ(full.free_slots(), 32);
  EXPECT_EQ(swa.free_slots(), 32);
  PrefixMatch m = c.match_prefix(t);
  EXPECT_EQ(m.length, 0);
  EXPECT_EQ(RadixCache::node_end(m.node), 0);
  c.lock(m.node);
  EXPECT_EQ(c.evict_full(10), 0);
  EXPECT_EQ(c.evict_swa(10), 0);
  c.unlock(m.node);
  EXPECT_EQ(c.cached_full(), 0);
  EXPECT_EQ(c.match_cached(t).length, 0);
  EXPECT_TRUE(c.reset());
}

TEST(RadixCache, PageAlignedKeysAndSplits) {
  SlotAllocator full(64, 4);
  RadixCache c(full, nullptr, 0, 4, false);
  const Vec x{1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  EXPECT_EQ(c.insert(x, alloc(full, 10), {}), 0);
  EXPECT_EQ(c.cached_full(), 8);  // the partial third page went back
  EXPECT_EQ(full.free_slots(), 56);
  EXPECT_EQ(c.match_prefix(x).length, 8);
  EXPECT_EQ(c.match_prefix(head(x, 8)).length, 4);  // at most 7 tokens, rounded down to the page
  // Shares 6 tokens: only one whole page matches, and the split happens at the page boundary.
  const Vec y{1, 2, 3, 4, 5, 6, 9, 9, 11, 12, 13, 14, 15};
  PrefixMatch m = c.match_prefix(y);
  EXPECT_EQ(m.length, 4);
  EXPECT_EQ(c.num_nodes(), 2);
  // A sibling whose first page starts with the same token (5) as the existing child: keyed by the whole page.
  EXPECT_EQ(c.insert(y, extend(full, m.full_slots, 13), {}), 4);
  EXPECT_EQ(c.cached_full(), 16);
  EXPECT_EQ(full.free_slots(), 48);
  EXPECT_EQ(c.num_nodes(), 3);
  EXPECT_EQ(c.match_prefix(cat(head(x, 8), {0})).length, 8);
  EXPECT_EQ(c.match_prefix(y).length, 12);
  // A fresh computation of y with its own slots: the first page of duplicates is freed, whole.
  EXPECT_EQ(c.insert(head(y, 12), alloc(full, 12), {}), 12);
  EXPECT_EQ(full.free_slots(), 48);
  c.check_invariants();
  EXPECT_EQ(c.evict_full(1), 4);  // rounded up to a page
  EXPECT_EQ(full.free_slots(), 52);
  EXPECT_TRUE(c.reset());
  EXPECT_EQ(full.free_slots(), 64);
}

// Brute-force SWA rule: the longest page-aligned L <= limit with no tombstone on [max(0, L - window), L).
int64_t expected_usable(const Vec& swa, int64_t cached, int64_t limit, int window, int page) {
  for (int64_t L = std::min(cached, limit) / page * page; L > 0; L -= page) {
    bool ok = true;
    for (int64_t i = std::max<int64_t>(0, L - window); i < L; ++i) ok = ok && swa[size_t(i)] >= 0;
    if (ok) return L;
  }
  return 0;
}

struct SwaCase {
  int page, window, len;
  std::vector<std::pair<int, int>> live;  // live runs [from, to)
};

TEST(RadixCache, SwaUsabilityRule) {
  const std::vector<SwaCase> cases{
      {1, 4, 20, {{8, 20}}},           // early part tombstoned
      {1, 4, 20, {{0, 12}, {16, 20}}},  // a tombstoned gap in the middle
      {1, 4, 20, {{0, 3}, {10, 13}}},
      {4, 4, 24, {{8, 24}}},
      {4, 6, 24, {{0, 8}, {12, 24}}},
      {4, 8, 24, {{4, 8}, {16, 24}}},
  };
  for (const SwaCase& k : cases) {
    SCOPED_TRACE(testing::Message() << "page " << k.page << " window " << k.window);
    SlotAllocator full(128, k.page), swa(128, k.page);
    RadixCache c(full, &swa, k.window, k.page, false);
    const Vec t = iota(k.len, 100);
    Vec s(size_t(k.len), -1);
    for (auto [from, to] : k.live) {
      Vec live = alloc(swa, to - from);
      std::copy(live.begin(), live.end(), s.begin() + from);
    }
    const Vec f = alloc(full, k.len);
    ASSERT_EQ(c.insert(t, f, s), 0);
    // Every divergence point d (the query shares d tokens, then differs) and the exact query.
    for (int d = 0; d <= k.len; ++d) {
      const Vec q = d < k.len ? cat(head(t, size_t(d)), {-5}) : t;
      const int64_t limit = (int64_t(q.size()) - 1) / k.page * k.page;
      const PrefixMatch m = c.match_prefix(q);
      EXPECT_EQ(m.length, expected_usable(s, d, limit, k.window, k.page)) << "d = " << d;
      EXPECT_EQ(m.full_slots, head(f, size_t(m.length)));
      EXPECT_EQ(m.swa_slots, head(s, size_t(m.length)));
      for (int64_t i = std::max<int64_t>(0, m.length - k.window); i < m.length; ++i) EXPECT_GE(m.swa_slots[size_t(i)], 0);
      // match_cached ignores the rule and the one-token reserve.
      const PrefixMatch mc = c.match_cached(q);
      EXPECT_EQ(mc.length, int64_t(std::min<size_t>(size_t(d), q.size())) / k.page * k.page);
      EXPECT_EQ(mc.swa_slots, head(s, size_t(mc.length)));
      c.check_invariants();
    }
    EXPECT_TRUE(c.reset());
    EXPECT_EQ(full.free_slots(), full.capacity());
    EXPECT_EQ(swa.free_slots(), swa.capacity());
  }
}

TEST(RadixCache, LockProtectsFullPathToRoot) {
  SlotAllocator full(64, 1);
  RadixCache c(full, nullptr, 0, 1, false);
  const Vec a{1, 2, 3, 4, 5}, b{1, 2, 3, 7, 8}, d{9, 9, 9};
  c.insert(a, alloc(full, 5), {});
  c.insert(b, extend(full, c.match_prefix(b).full_slots, 5), {});
  c.insert(d, alloc(full, 3), {});
  EXPECT_EQ(c.cached_full(), 10);
  PrefixMatch m = c.match_prefix(cat(a, {0}));
  c.lock(m.node);
  EXPECT_EQ(c.protected_full(), 5);
  EXPECT_EQ(c.evictable_full(), 5);
  EXPECT_EQ(c.evict_full(100), 5);  // b's own leaf and d; the shared prefix is a's
  EXPECT_EQ(c.cached_full(), 5);
  EXPECT_EQ(c.match_prefix(cat(a, {0})).full_slots, m.full_slots);
  EXPECT_EQ(c.match_prefix(cat(b, {0})).length, 3);
  EXPECT_FALSE(c.reset());  // refuses while locked, and changes nothing
  EXPECT_EQ(c.cached_full(), 5);
  c.lock(m.node);  // locks count
  c.unlock(m.node);
  EXPECT_EQ(c.evict_full(100), 0);
  c.unlock(m.node);
  EXPECT_EQ(c.evictable_full(), 5);
  c.check_invariants();
  EXPECT_EQ(c.evict_full(100), 5);
  EXPECT_EQ(full.free_slots(), 64);
}

TEST(RadixCache, LockProtectsSwaOnlyForTheLastWindow) {
  for (auto [page, window, prot] : {std::tuple{1, 4, 4}, std::tuple{4, 6, 8}, std::tuple{4, 40, 20}}) {
    SCOPED_TRACE(testing::Message() << "page " << page << " window " << window);
    SlotAllocator full(64, page), swa(64, page);
    RadixCache c(full, &swa, window, page, false);
    const Vec t = iota(20, 0);
    c.insert(t, alloc(full, 20), alloc(swa, 20));
    PrefixMatch m = c.match_prefix(cat(t, {-1}));
    ASSERT_EQ(m.length, 20);
    c.lock(m.node);
    EXPECT_EQ(c.protected_swa(), prot);  // the last window, rounded out to the page
    EXPECT_EQ(c.evictable_swa(), 20 - prot);
    EXPECT_EQ(c.evictable_full(), 0);
    EXPECT_EQ(c.evict_swa(100), 20 - prot);  // the older SWA KV goes even though the request holds the node
    EXPECT_EQ(c.cached_swa(), prot);
    EXPECT_EQ(c.cached_full(), 20);
    EXPECT_EQ(swa.free_slots(), 64 - prot);
    EXPECT_EQ(c.match_prefix(cat(t, {-1})).length, 20);  // still usable: the last window is live
    c.check_invariants();
    c.unlock(m.node);
    EXPECT_EQ(c.evictable_swa(), prot);
    // Now unlocked, the live leaf is deleted outright (its full slots too); the tombstoned front stays.
    EXPECT_EQ(c.evict_swa(100), prot);
    EXPECT_EQ(c.cached_full(), 20 - prot);
    EXPECT_EQ(c.cached_swa(), 0);
    EXPECT_EQ(c.evict_full(100), 20 - prot);
    EXPECT_EQ(full.free_slots(), 64);
    EXPECT_EQ(swa.free_slots(), 64);
  }
}

TEST(RadixCache, LockSurvivesLaterSplits) {
  SlotAllocator full(128, 1), swa(128, 1);
  RadixCache c(full, &swa, 6, 1, false);
  const Vec t = iota(30, 0);
  c.insert(t, alloc(full, 30), alloc(swa, 30));
  PrefixMatch m = c.match_prefix(cat(t, {-1}));
  c.lock(m.node);
  const int64_t prot = c.protected_swa();
  EXPECT_EQ(prot, 6);
  // Splits inside the locked chain (matches ending at 26, 27 and 10) must not change what unlock undoes.
  for (int d : {26, 27, 10, 25, 24}) c.match_prefix(cat(head(t, size_t(d)), {-1}));
  EXPECT_EQ(c.protected_swa(), prot);
  c.check_invariants();
  c.unlock(m.node);
  EXPECT_EQ(c.protected_swa(), 0);
  EXPECT_EQ(c.protected_full(), 0);
  c.check_invariants();
  EXPECT_TRUE(c.reset());
}

TEST(RadixCache, FullEvictionIsLruAndCascades) {
  SlotAllocator full(64, 1);
  RadixCache c(full, nullptr, 0, 1, false);
  const Vec a{1, 1, 1, 1}, b{2, 2, 2, 2}, d{3, 3, 3, 3};
  for (const Vec& v : {a, b, d}) c.insert(v, alloc(full, 4), {});
  c.match_prefix(cat(a, {0}));  // a is now the newest
  EXPECT_EQ(c.evict_full(4), 4);  // b, the oldest
  EXPECT_EQ(c.match_prefix(cat(b, {0})).length, 0);
  EXPECT_EQ(c.match_prefix(cat(a, {0})).length, 4);
  EXPECT_EQ(c.evict_full(1), 1);  // d is oldest now: its tail page is trimmed, the rest stays
  EXPECT_EQ(c.match_prefix(cat(d, {0})).length, 3);
  EXPECT_EQ(c.match_prefix(cat(a, {0})).length, 4);
  c.check_invariants();
  EXPECT_TRUE(c.reset());
  // A parent that becomes an unlocked leaf is evicted in turn.
  const Vec p{1, 2, 3, 4}, q{1, 2, 3, 5};
  c.insert(p, alloc(full, 4), {});
  c.insert(q, extend(full, c.match_prefix(q).full_slots, 4), {});
  EXPECT_EQ(c.num_nodes(), 3);
  EXPECT_EQ(c.evict_full(100), 5);
  EXPECT_EQ(c.num_nodes(), 0);
  EXPECT_EQ(full.free_slots(), 64);
}

TEST(RadixCache, SwaEvictionOrder) {
  SlotAllocator full(64, 1), swa(64, 1);
  RadixCache c(full, &swa, 2, 1, false);
  const Vec a = iota(8, 1), a2 = cat(head(a, 4), {20, 21, 22, 23}), b = iota(8, 40);
  c.insert(a, alloc(full, 8), alloc(swa, 8));  // tick 1
  PrefixMatch m = c.match_prefix(a2);          // tick 2 on a[0..4) (split off a[4..8), which keeps tick 1)
  ASSERT_EQ(m.length, 4);
  c.insert(a2, extend(full, m.full_slots, 8), extend(swa, m.swa_slots, 8));  // tick 3 on a[0..4) and a2's leaf
  c.insert(b, alloc(full, 8), alloc(swa, 8));                               // tick 4
  // Oldest: a's leaf a[4..8), unlocked, so it is deleted outright (its full slots go too).
  EXPECT_EQ(c.cached_full(), 20);
  EXPECT_EQ(c.evict_swa(4), 4);
  EXPECT_EQ(c.cached_full(), 16);
  EXPECT_EQ(c.cached_swa(), 16);
  // Next the tie at tick 3: the shallower node a[0..4) is tombstoned first (it is internal, full KV stays).
  EXPECT_EQ(c.evict_swa(2), 2);  // only its first two tokens
  EXPECT_EQ(c.cached_full(), 16);
  EXPECT_EQ(c.cached_swa(), 14);
  EXPECT_EQ(c.match_prefix(cat(a2, {0})).length, 8);  // the leaf still has `window` live tokens behind its end
  EXPECT_EQ(c.match_prefix(cat(head(a2, 3), {0})).length, 0);  // ends right after a tombstone
  // b is older than a2 now (the match above touched a2): b goes before a2's nodes.
  EXPECT_EQ(c.evict_swa(8), 8);
  EXPECT_EQ(c.match_prefix(cat(b, {0})).length, 0);
  EXPECT_EQ(c.match_prefix(cat(a2, {0})).length, 8);
  c.check_invariants();
  EXPECT_TRUE(c.reset());
  EXPECT_EQ(full.free_slots(), 64);
  EXPECT_EQ(swa.free_slots(), 64);
}

TEST(RadixCache, InsertRevivesTombstones) {
  SlotAllocator full(64, 1), swa(64, 1);
  RadixCache c(full, &swa, 2, 1, false);
  const Vec t = iota(8, 0);
  c.insert(t, alloc(full, 8), swa_slots(swa, 8, 4, 8));  // [0, 4) tombstoned
  EXPECT_EQ(c.cached_swa(), 4);
  EXPECT_EQ(c.match_prefix(cat(head(t, 3), {-1})).length, 0);
  // Recomputed with SWA live only on [2, 8): [2, 4) is revived with the caller's slots, [0, 2) stays a tombstone,
  // and the caller's duplicates ([4, 8) SWA, all full) are freed.
  const Vec s = swa_slots(swa, 8, 2, 8);
  EXPECT_EQ(c.insert(t, alloc(full, 8), s), 8);
  EXPECT_EQ(c.cached_swa(), 6);
  EXPECT_EQ(c.cached_full(), 8);
  EXPECT_EQ(full.free_slots(), 56);
  EXPECT_EQ(swa.free_slots(), 58);
  PrefixMatch m = c.match_prefix(cat(head(t, 4), {-1}));
  EXPECT_EQ(m.length, 4);
  EXPECT_EQ(m.swa_slots[2], s[2]);
  EXPECT_EQ(m.swa_slots[0], -1);
  c.check_invariants();
  EXPECT_TRUE(c.reset());
  EXPECT_EQ(swa.free_slots(), 64);
}

TEST(RadixCache, InsertIgnoresStaleSwaOfMatchedTokens) {
  SlotAllocator full(64, 1), swa(64, 1);
  RadixCache c(full, &swa, 2, 1, false);
  const Vec t = iota(10, 0);
  c.insert(t, alloc(full, 10), alloc(swa, 10));
  PrefixMatch m = c.match_prefix(cat(t, {-1}));
  c.lock(m.node);
  EXPECT_EQ(c.evict_swa(100), 8);  // tombstones [0, 8) under the request
  Vec other = alloc(swa, 8);       // someone else now holds those SWA slots
  // The request finishes and inserts with its stale copy of the tree's SWA slots: they must be neither taken
  // (revived) nor freed.
  const Vec t2 = cat(t, {50, 51});
  c.insert(t2, extend(full, m.full_slots, 12), extend(swa, m.swa_slots, 12));
  c.unlock(m.node);
  EXPECT_EQ(c.cached_swa(), 4);
  EXPECT_EQ(swa.free_slots(), 64 - 4 - 8);
  c.check_invariants();
  swa.free(other);
  EXPECT_TRUE(c.reset());
  EXPECT_EQ(swa.free_slots(), 64);
  EXPECT_EQ(full.free_slots(), 64);
}

}  // namespace
}  // namespace mimo
