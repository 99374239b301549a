// Randomized stress test of RadixCache + SlotAllocator as a scheduler would drive them: requests match, lock,
// extend (allocating, evicting when short, sliding their SWA window), insert unfinished chunks, finish or abort;
// evictions, lookups, extra locks and resets interleave. After every operation:
//  - conservation: allocator free slots + tree-held slots + request-held slots == capacity, in both pools;
//  - the tree's own invariants (check_invariants);
//  - every running request can still read what attention needs: the full KV of all its positions and the SWA KV
//    of its last `window` positions hold its tokens' KV. Each slot remembers which prefix wrote it (a hash), so a
//    slot freed too early and reused by someone else shows up as a mismatch;
//  - every match returns correct KV, obeys the SWA rule and is the longest usable prefix (checked against
//    match_cached plus the rule applied by brute force);
//  - eviction frees exactly min(n rounded up to pages, evictable) slots.
// At the end all requests finish, reset() succeeds and both allocators are back to full capacity.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "kv/radix_cache.h"

namespace mimo {
namespace {

using Vec = std::vector<int32_t>;

struct Config {
  int page, window;
  bool swa, disabled;
  int vocab;
  uint32_t seed;
};

uint64_t mix(uint64_t h, int32_t tok) {
  h ^= uint64_t(uint32_t(tok)) + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  h *= 0xbf58476d1ce4e5b9ull;
  return h ^ (h >> 31);
}

class Sim {
 public:
  explicit Sim(const Config& c)
      : cfg_(c), rng_(c.seed), full_(kFull, c.page), swa_(kSwa, c.page),
        cache_(full_, c.swa ? &swa_ : nullptr, c.window, c.page, c.disabled),
        wrote_full_(size_t(kFull), 0), wrote_swa_(size_t(kSwa), 0) {
    for (auto& d : docs_) d = random_tokens(300);
  }

  void run(int steps) {
    for (int step = 0; step < steps; ++step) {
      const int op = int(rand(100));
      if (op < 18) start();
      else if (op < 48) extend(pick());
      else if (op < 58) finish(pick());
      else if (op < 66) chunk(pick());
      else if (op < 70) abort(pick());
      else if (op < 77) evict(false, rand(300));
      else if (op < 84) evict(true, rand(300));
      else if (op < 91) lookup(false);
      else if (op < 95) lookup(true);
      else if (op < 99) release_extra();
      else try_reset();
      check(step);
      if (testing::Test::HasFatalFailure()) return;
    }
    while (!reqs_.empty()) finish(0);
    while (!extra_.empty()) release_extra();
    check(steps);
    ASSERT_TRUE(cache_.reset());
    EXPECT_EQ(full_.free_slots(), full_.capacity());
    EXPECT_EQ(swa_.free_slots(), swa_.capacity());
    EXPECT_EQ(cache_.cached_full(), 0);
    EXPECT_EQ(cache_.num_nodes(), 0);
  }

  int64_t evictions = 0, hits = 0;

 private:
  static constexpr int64_t kFull = 1024, kSwa = 640;
  struct Req {
    Vec tokens, full, swa;
    std::vector<uint64_t> hash;  // hash[i] = prefix hash of tokens[0..i]
    int64_t len = 0, prefix = 0;  // KV computed for [0, len); [0, prefix) is the tree's (locked), the rest ours
    RadixNode* node = nullptr;
  };

  uint64_t rand(uint64_t n) { return n ? rng_() % n : 0; }
  Vec random_tokens(int n) {
    Vec v(static_cast<size_t>(n));
    for (auto& t : v) t = int32_t(rand(uint64_t(cfg_.vocab)));
    return v;
  }
  std::vector<uint64_t> hashes(const Vec& t) {
    std::vector<uint64_t> h(t.size());
    uint64_t x = 1;
    for (size_t i = 0; i < t.size(); ++i) h[i] = x = mix(x, t[i]);
    return h;
  }
  size_t pick() { return reqs_.empty() ? 0 : size_t(rand(reqs_.size())); }
  int64_t floor_page(int64_t n) const { return n <= 0 ? 0 : n / cfg_.page * cfg_.page; }

  // Checks a match of `q` against the slot contents and the SWA rule, and that it is the longest usable one.
  void check_match(const Vec& q, const PrefixMatch& m, const PrefixMatch& cached) {
    const auto h = hashes(q);
    ASSERT_EQ(m.length % cfg_.page, 0);
    ASSERT_LT(m.length, std::max<int64_t>(1, int64_t(q.size())));
    ASSERT_EQ(int64_t(m.full_slots.size()), m.length);
    ASSERT_EQ(int64_t(m.swa_slots.size()), m.length);
    ASSERT_EQ(RadixCache::node_end(m.node), m.length);
    for (int64_t i = 0; i < m.length; ++i) {
      ASSERT_EQ(wrote_full_[size_t(m.full_slots[size_t(i)])], h[size_t(i)]) << "full KV of position " << i;
      const int32_t s = m.swa_slots[size_t(i)];
      if (!cfg_.swa) {
        ASSERT_EQ(s, -1);
      } else if (s >= 0) {
        ASSERT_EQ(wrote_swa_[size_t(s)], h[size_t(i)]) << "SWA KV of position " << i;
      } else {
        ASSERT_LT(i, m.length - cfg_.window) << "tombstone inside the window";
      }
    }
    // Longest usable: the rule applied by brute force to everything cached for q.
    const int64_t limit = floor_page(std::min<int64_t>(cached.length, int64_t(q.size()) - 1));
    int64_t want = 0;
    for (int64_t L = limit; L > 0 && want == 0; L -= cfg_.page) {
      bool ok = true;
      for (int64_t i = std::max<int64_t>(0, L - cfg_.window); cfg_.swa && i < L; ++i)
        ok = ok && cached.swa_slots[size_t(i)] >= 0;
      if (ok) want = L;
    }
    ASSERT_EQ(m.length, want);
  }

  PrefixMatch checked_match(const Vec& q) {
    const PrefixMatch cached = cache_.match_cached(q);
    PrefixMatch m = cache_.match_prefix(q);
    check_match(q, m, cached);
    hits += m.length > 0;
    return m;
  }

  Vec new_request_tokens() {
    const Vec& d = docs_[rand(docs_.size())];
    Vec t(d.begin(), d.begin() + long(rand(d.size())));
    const Vec tail = random_tokens(1 + int(rand(60)));
    t.insert(t.end(), tail.begin(), tail.end());
    return t;
  }

  void start() {
    if (reqs_.size() >= 6) return;
    Req r;
    r.tokens = new_request_tokens();
    r.hash = hashes(r.tokens);
    PrefixMatch m = checked_match(r.tokens);
    cache_.lock(m.node);
    r.node = m.node;
    r.len = r.prefix = m.length;
    r.full = m.full_slots;
    r.swa = m.swa_slots;
    reqs_.push_back(std::move(r));
  }

  void extend(size_t i) {
    if (reqs_.empty()) return;
    Req& r = reqs_[i];
    const int64_t n = std::min<int64_t>(1 + int64_t(rand(48)), int64_t(r.tokens.size()) - r.len);
    if (n <= 0) {
      // Prompt done: decode a few more tokens (the tokens grow), or finish.
      if (rand(2)) return finish(i);
      const Vec more = random_tokens(1 + int(rand(8)));
      r.tokens.insert(r.tokens.end(), more.begin(), more.end());
      r.hash = hashes(r.tokens);
      return;
    }
    // Make room in both pools first, so the two allocations below cannot fail halfway.
    const int64_t need_full = full_.pages_needed(r.len, n) * cfg_.page - full_.free_slots();
    if (need_full > 0) evict(false, need_full);
    const int64_t need_swa = swa_.pages_needed(r.len, n) * cfg_.page - swa_.free_slots();
    if (cfg_.swa && need_swa > 0) evict(true, need_swa);
    if (full_.pages_needed(r.len, n) > full_.free_pages() ||
        (cfg_.swa && swa_.pages_needed(r.len, n) > swa_.free_pages()))
      return abort(i);  // retract: still no room
    const int32_t last_full = r.len > 0 ? r.full[size_t(r.len - 1)] : -1;
    ASSERT_TRUE(full_.alloc_extend(r.len, last_full, n, r.full));
    if (cfg_.swa) {
      const int32_t last_swa = r.len > 0 ? r.swa[size_t(r.len - 1)] : -1;
      ASSERT_TRUE(swa_.alloc_extend(r.len, last_swa, n, r.swa));
    } else {
      r.swa.resize(size_t(r.len + n), -1);
    }
    for (int64_t p = r.len; p < r.len + n; ++p) {  // "run the model": write this prefix's KV
      wrote_full_[size_t(r.full[size_t(p)])] = r.hash[size_t(p)];
      if (cfg_.swa) wrote_swa_[size_t(r.swa[size_t(p)])] = r.hash[size_t(p)];
    }
    r.len += n;
    // Slide the SWA window: free our own SWA pages that no query will read again.
    if (cfg_.swa && rand(2)) {
      Vec gone;
      for (int64_t p = r.prefix; p < floor_page(r.len - cfg_.window); ++p)
        if (r.swa[size_t(p)] >= 0) gone.push_back(std::exchange(r.swa[size_t(p)], -1));
      swa_.free(gone);
    }
  }

  void finish(size_t i) {
    if (reqs_.empty()) return;
    Req& r = reqs_[i];
    const auto n = size_t(r.len);
    const int64_t had = cache_.insert(std::span(r.tokens).first(n), std::span(r.full).first(n),
                                      std::span(r.swa).first(n));
    if (!cfg_.disabled) {
      EXPECT_GE(had, r.prefix);
    }
    cache_.unlock(r.node);
    if (!cfg_.disabled && !cfg_.swa && r.len > 0) {  // without SWA everything inserted is usable at once
      Vec q(r.tokens.begin(), r.tokens.begin() + r.len);
      q.push_back(-7);
      EXPECT_EQ(checked_match(q).length, floor_page(r.len));
    }
    reqs_.erase(reqs_.begin() + long(i));
  }

  // Chunked prefill: hand the page-aligned part to the tree, take the tree's slots and node in exchange.
  void chunk(size_t i) {
    if (reqs_.empty() || cfg_.disabled) return;
    Req& r = reqs_[i];
    const int64_t k = floor_page(r.len);
    if (k <= r.prefix) return;
    const auto n = size_t(k);
    EXPECT_GE(cache_.insert(std::span(r.tokens).first(n), std::span(r.full).first(n), std::span(r.swa).first(n)),
              r.prefix);
    const PrefixMatch m = cache_.match_cached(std::span(r.tokens).first(n));
    ASSERT_EQ(m.length, k);
    cache_.lock(m.node);
    cache_.unlock(r.node);
    r.node = m.node;
    r.prefix = k;
    std::copy(m.full_slots.begin(), m.full_slots.end(), r.full.begin());
    std::copy(m.swa_slots.begin(), m.swa_slots.end(), r.swa.begin());
  }

  void abort(size_t i) {
    if (reqs_.empty()) return;
    Req& r = reqs_[i];
    full_.free(std::span(r.full).subspan(size_t(r.prefix), size_t(r.len - r.prefix)));
    if (cfg_.swa) swa_.free(std::span(r.swa).subspan(size_t(r.prefix), size_t(r.len - r.prefix)));
    cache_.unlock(r.node);
    reqs_.erase(reqs_.begin() + long(i));
  }

  void evict(bool swa, int64_t n) {
    SlotAllocator& a = swa ? swa_ : full_;
    const int64_t before = a.free_slots();
    const int64_t evictable = swa ? cache_.evictable_swa() : cache_.evictable_full();
    const int64_t got = swa ? cache_.evict_swa(n) : cache_.evict_full(n);
    const int64_t rounded = n <= 0 ? 0 : (n + cfg_.page - 1) / cfg_.page * cfg_.page;
    EXPECT_EQ(got, std::min(rounded, evictable));
    EXPECT_EQ(a.free_slots() - before, got);
    evictions += got > 0;
  }

  // A lookup that takes no request; sometimes it keeps a lock on what it found.
  void lookup(bool keep_lock) {
    Vec q = new_request_tokens();
    if (!reqs_.empty() && rand(2)) q = reqs_[pick()].tokens;
    PrefixMatch m = checked_match(q);
    if (keep_lock) {
      cache_.lock(m.node);
      extra_.push_back(m.node);
    }
  }

  void release_extra() {
    if (extra_.empty()) return;
    const size_t i = size_t(rand(extra_.size()));
    cache_.unlock(extra_[i]);
    extra_.erase(extra_.begin() + long(i));
  }

  void try_reset() {
    const bool locked = cache_.protected_full() > 0;
    const int64_t before = cache_.cached_full();
    EXPECT_EQ(cache_.reset(), !locked);
    if (locked) {
      EXPECT_EQ(cache_.cached_full(), before);
    }
  }

  void check(int step) {
    SCOPED_TRACE(testing::Message() << "step " << step);
    cache_.check_invariants();
    // Requests hold whole pages: count the distinct pages of the slots they own.
    int64_t req_full = 0, req_swa = 0;
    auto pages_of = [&](const Vec& slots, int64_t from, int64_t to) {
      std::vector<int32_t> pages;
      for (int64_t p = from; p < to; ++p)
        if (slots[size_t(p)] >= 0) pages.push_back(slots[size_t(p)] / cfg_.page);
      std::sort(pages.begin(), pages.end());
      return int64_t(std::unique(pages.begin(), pages.end()) - pages.begin()) * cfg_.page;
    };
    for (const Req& r : reqs_) {
      req_full += pages_of(r.full, r.prefix, r.len);
      if (cfg_.swa) req_swa += pages_of(r.swa, r.prefix, r.len);
      for (int64_t p = 0; p < r.len; ++p) {
        ASSERT_TRUE(full_.is_allocated(r.full[size_t(p)]));
        ASSERT_EQ(wrote_full_[size_t(r.full[size_t(p)])], r.hash[size_t(p)]) << "full KV lost at " << p;
      }
      for (int64_t p = std::max<int64_t>(0, r.len - cfg_.window); cfg_.swa && p < r.len; ++p) {
        const int32_t s = r.swa[size_t(p)];
        ASSERT_TRUE(swa_.is_allocated(s)) << "SWA KV freed inside the window at " << p;
        ASSERT_EQ(wrote_swa_[size_t(s)], r.hash[size_t(p)]) << "SWA KV lost at " << p;
      }
    }
    ASSERT_EQ(full_.free_slots() + cache_.cached_full() + req_full, full_.capacity());
    if (cfg_.swa) {
      ASSERT_EQ(swa_.free_slots() + cache_.cached_swa() + req_swa, swa_.capacity());
    } else {
      ASSERT_EQ(swa_.free_slots(), swa_.capacity());
    }
    if (cfg_.disabled) {
      ASSERT_EQ(cache_.cached_full(), 0);
    }
  }

  Config cfg_;
  std::mt19937_64 rng_;
  SlotAllocator full_, swa_;
  RadixCache cache_;
  std::vector<uint64_t> wrote_full_, wrote_swa_;  // prefix hash of the KV each slot holds
  std::vector<Vec> docs_ = std::vector<Vec>(6);
  std::vector<Req> reqs_;
  std::vector<RadixNode*> extra_;
};

class RadixStress : public testing::TestWithParam<Config> {};

TEST_P(RadixStress, ConservesSlotsAndKeepsKvCorrect) {
  Sim sim(GetParam());
  sim.run(4000);
  RecordProperty("evictions", int(sim.evictions));
  RecordProperty("hits", int(sim.hits));
  if (!GetParam().disabled) {
    EXPECT_GT(sim.hits, 100);  // the workload really shares prefixes
    EXPECT_GT(sim.evictions, 10);  // and really runs out of memory
  }
}

std::vector<Config> configs() {
  std::vector<Config> out;
  uint32_t seed = 1;
  for (int page : {1, 4})
    for (int window : {4, 16})
      for (bool swa : {false, true})
        for (int vocab : {3, 50}) out.push_back({page, window, swa, false, vocab, seed++});
  out.push_back({1, 4, true, true, 3, seed++});
  out.push_back({4, 16, true, true, 50, seed++});
  out.push_back({4, 16, false, true, 3, seed++});
  return out;
}

std::string name(const testing::TestParamInfo<Config>& i) {
  const Config& c = i.param;
  return "page" + std::to_string(c.page) + "_w" + std::to_string(c.window) + (c.swa ? "_swa" : "_full") +
         "_v" + std::to_string(c.vocab) + (c.disabled ? "_disabled" : "");
}

INSTANTIATE_TEST_SUITE_P(Kv, RadixStress, testing::ValuesIn(configs()), name);

}  // namespace
}  // namespace mimo
