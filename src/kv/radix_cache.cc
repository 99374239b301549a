#include "kv/radix_cache.h"

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include "core/error.h"

namespace mimo {

struct RadixNode {
  RadixNode* parent = nullptr;
  // Keyed by child_key(first page); several children may share a key only on a hash collision (page_size > 1),
  // which find_child resolves by comparing the page.
  std::unordered_multimap<uint64_t, std::unique_ptr<RadixNode>> children;
  std::vector<int32_t> tokens, full, swa;  // [len] each; swa is empty when the cache has no SWA pool
  int64_t start = 0;                       // tokens from the root to this node's first token
  bool tomb = false;                       // all SWA slots freed (-1)
  int32_t full_lock = 0, swa_lock = 0;
  uint64_t tick = 0, id = 0;
  // What attach() last added to the cache's counters and LRU sets; detach() takes away exactly that, so state
  // may change freely between the two.
  bool attached = false, in_full_lru = false, in_swa_lru = false;
  uint64_t key_tick = 0;
  int64_t key_start = 0;
  int64_t c_full = 0, c_swa = 0, c_lfull = 0, c_lswa = 0;

  int64_t len() const { return int64_t(tokens.size()); }
  int64_t end() const { return start + len(); }
};

RadixCache::RadixCache(SlotAllocator& full, SlotAllocator* swa, int window, int page_size, bool disabled)
    : full_(full), swa_(swa), window_(window), page_(page_size), disabled_(disabled),
      root_(std::make_unique<RadixNode>()) {
  MIMO_ASSERT(page_size >= 1 && page_size % full.page_size() == 0, "radix page {} vs full pool page {}", page_size,
              full.page_size());
  if (swa) {
    MIMO_ASSERT(page_size % swa->page_size() == 0, "radix page {} vs SWA pool page {}", page_size, swa->page_size());
    MIMO_ASSERT(window >= 1, "sliding window {}", window);
  }
}

RadixCache::~RadixCache() { destroy_all(false); }

int64_t RadixCache::node_end(const RadixNode* node) { return node->end(); }

// ---- structure helpers ----

uint64_t RadixCache::child_key(const int32_t* t) const {
  if (page_ == 1) return uint32_t(t[0]);
  uint64_t h = 0x9e3779b97f4a7c15ull;
  for (int i = 0; i < page_; ++i) {
    h = (h ^ uint32_t(t[i])) * 0xff51afd7ed558ccdull;
    h ^= h >> 33;
  }
  return h;
}

RadixNode* RadixCache::find_child(const RadixNode* parent, const int32_t* t) const {
  auto [b, e] = parent->children.equal_range(child_key(t));
  for (auto it = b; it != e; ++it)
    if (std::equal(t, t + page_, it->second->tokens.data())) return it->second.get();
  return nullptr;
}

int64_t RadixCache::common_length(const int32_t* a, const int32_t* b, int64_t n) const {
  int64_t i = 0;
  while (i < n && a[i] == b[i]) ++i;
  return i / page_ * page_;  // only whole pages are shared
}

void RadixCache::attach(RadixNode* x) {
  MIMO_ASSERT(!x->attached && x != root_.get());
  x->c_full = x->len();
  x->c_swa = (swa_ && !x->tomb) ? x->len() : 0;
  x->c_lfull = x->full_lock > 0 ? x->c_full : 0;
  x->c_lswa = x->swa_lock > 0 ? x->c_swa : 0;
  cached_full_ += x->c_full;
  cached_swa_ += x->c_swa;
  locked_full_ += x->c_lfull;
  locked_swa_ += x->c_lswa;
  x->key_tick = x->tick;
  x->key_start = x->start;
  x->in_full_lru = x->children.empty() && x->full_lock == 0;
  x->in_swa_lru = x->c_swa > 0 && x->swa_lock == 0;
  if (x->in_full_lru) full_lru_.insert({x->key_tick, x->key_start, x->id, x});
  if (x->in_swa_lru) swa_lru_.insert({x->key_tick, x->key_start, x->id, x});
  x->attached = true;
}

void RadixCache::detach(RadixNode* x) {
  if (!x->attached) return;
  cached_full_ -= x->c_full;
  cached_swa_ -= x->c_swa;
  locked_full_ -= x->c_lfull;
  locked_swa_ -= x->c_lswa;
  if (x->in_full_lru) full_lru_.erase({x->key_tick, x->key_start, x->id, x});
  if (x->in_swa_lru) swa_lru_.erase({x->key_tick, x->key_start, x->id, x});
  x->attached = x->in_full_lru = x->in_swa_lru = false;
}

void RadixCache::touch(RadixNode* x, uint64_t tick) {
  if (x->tick == tick) return;
  detach(x);
  x->tick = tick;
  attach(x);
}

// Cuts `c` after its first k tokens. The new node is the upper piece and `c` keeps the lower one, so pointers
// callers hold (always to a match's end) keep their end position. Locks are copied to both pieces: every lock
// chain through `c` now runs through both (see lock() for why SWA chains stay exact).
RadixNode* RadixCache::split(RadixNode* c, int64_t k) {
  MIMO_ASSERT(k > 0 && k < c->len() && k % page_ == 0, "split at {} of {}", k, c->len());
  RadixNode* p = c->parent;
  detach(c);
  auto top = std::make_unique<RadixNode>();
  RadixNode* t = top.get();
  t->parent = p;
  t->start = c->start;
  t->tomb = c->tomb;
  t->full_lock = c->full_lock;
  t->swa_lock = c->swa_lock;
  t->tick = c->tick;
  t->id = next_id_++;
  auto cut = [k](std::vector<int32_t>& from, std::vector<int32_t>& to) {
    if (from.empty()) return;
    to.assign(from.begin(), from.begin() + k);
    from.erase(from.begin(), from.begin() + k);
  };
  cut(c->tokens, t->tokens);
  cut(c->full, t->full);
  cut(c->swa, t->swa);
  c->start += k;
  // The parent's entry for c is keyed by the first page, which now belongs to the top piece: hand it over.
  auto [b, e] = p->children.equal_range(child_key(t->tokens.data()));
  auto it = std::find_if(b, e, [c](const auto& kv) { return kv.second.get() == c; });
  MIMO_ASSERT(it != e, "split: node missing from its parent");
  std::unique_ptr<RadixNode> own_c = std::move(it->second);
  it->second = std::move(top);
  c->parent = t;
  t->children.emplace(child_key(c->tokens.data()), std::move(own_c));
  ++num_nodes_;
  attach(t);
  attach(c);
  return t;
}

void RadixCache::delete_leaf(RadixNode* x) {
  MIMO_ASSERT(x != root_.get() && x->children.empty() && x->full_lock == 0, "deleting a locked or inner node");
  detach(x);
  full_.free(x->full);
  if (swa_ && !x->tomb) swa_->free(x->swa);
  RadixNode* p = x->parent;
  const bool inner = p != root_.get();
  if (inner) detach(p);  // p may become a leaf
  auto [b, e] = p->children.equal_range(child_key(x->tokens.data()));
  auto it = std::find_if(b, e, [x](const auto& kv) { return kv.second.get() == x; });
  MIMO_ASSERT(it != e, "delete: node missing from its parent");
  p->children.erase(it);
  --num_nodes_;
  if (inner) attach(p);
}

void RadixCache::trim_tail(RadixNode* x, int64_t n) {
  MIMO_ASSERT(x->children.empty() && x->full_lock == 0 && n > 0 && n < x->len() && n % page_ == 0);
  detach(x);
  const int64_t keep = x->len() - n;
  full_.free(std::span<const int32_t>(x->full).subspan(size_t(keep)));
  if (swa_ && !x->tomb) swa_->free(std::span<const int32_t>(x->swa).subspan(size_t(keep)));
  x->tokens.resize(size_t(keep));
  x->full.resize(size_t(keep));
  if (swa_) x->swa.resize(size_t(keep));
  attach(x);
}

void RadixCache::tombstone(RadixNode* x) {
  MIMO_ASSERT(swa_ && !x->tomb && x->swa_lock == 0);
  detach(x);
  swa_->free(x->swa);
  std::fill(x->swa.begin(), x->swa.end(), -1);
  x->tomb = true;
  attach(x);
}

// ---- match ----

PrefixMatch RadixCache::match_prefix(std::span<const int32_t> tokens) { return match_impl(tokens, true); }
PrefixMatch RadixCache::match_cached(std::span<const int32_t> tokens) { return match_impl(tokens, false); }

PrefixMatch RadixCache::match_impl(std::span<const int32_t> tokens, bool usable_only) {
  PrefixMatch m;
  m.node = root_.get();
  if (disabled_) return m;
  int64_t limit = int64_t(tokens.size()) - (usable_only ? 1 : 0);
  limit = limit <= 0 ? 0 : limit / page_ * page_;
  struct Step {
    RadixNode* node;
    int64_t k;  // tokens of node matched
  };
  std::vector<Step> path;
  RadixNode* cur = root_.get();
  int64_t pos = 0;
  while (pos < limit) {
    RadixNode* c = find_child(cur, tokens.data() + pos);
    if (!c) break;
    const int64_t k = common_length(c->tokens.data(), tokens.data() + pos, std::min(c->len(), limit - pos));
    path.push_back({c, k});
    pos += k;
    if (k < c->len()) break;
    cur = c;
  }
  // The usable end: the deepest node end (or partial end) with `window` live SWA tokens behind it since the last
  // tombstone. Inside a live run, the end of the run is the best point, so node ends are the only candidates.
  size_t used = 0;
  int64_t tomb_end = -1;  // end of the last tombstoned node on the path; -1 = none yet
  for (size_t i = 0; i < path.size(); ++i) {
    const int64_t e = path[i].node->start + path[i].k;
    if (!usable_only || !swa_) {
      used = i + 1;
    } else if (path[i].node->tomb) {
      tomb_end = e;
    } else if (tomb_end < 0 || e - tomb_end >= window_) {
      used = i + 1;
    }
  }
  if (used == 0) return m;
  Step& last = path[used - 1];
  if (last.k < last.node->len()) last.node = split(last.node, last.k);
  const uint64_t tick = ++clock_;
  m.length = last.node->end();
  m.full_slots.reserve(size_t(m.length));
  m.swa_slots.reserve(size_t(m.length));
  for (size_t i = 0; i < used; ++i) {
    RadixNode* x = path[i].node;
    touch(x, tick);
    m.full_slots.insert(m.full_slots.end(), x->full.begin(), x->full.end());
    if (swa_) m.swa_slots.insert(m.swa_slots.end(), x->swa.begin(), x->swa.end());
  }
  if (!swa_) m.swa_slots.assign(size_t(m.length), -1);
  m.node = last.node;
  return m;
}

// ---- insert ----

int64_t RadixCache::insert(std::span<const int32_t> tokens, std::span<const int32_t> full,
                           std::span<const int32_t> swa) {
  const int64_t n = int64_t(tokens.size());
  MIMO_ASSERT(int64_t(full.size()) == n, "insert: {} tokens, {} full slots", n, full.size());
  if (swa_) {
    MIMO_ASSERT(int64_t(swa.size()) == n, "insert: {} tokens, {} SWA slots", n, swa.size());
  } else {
    MIMO_ASSERT(swa.empty() || int64_t(swa.size()) == n, "insert: {} tokens, {} SWA slots", n, swa.size());
    MIMO_ASSERT(std::all_of(swa.begin(), swa.end(), [](int32_t s) { return s < 0; }), "SWA slots without SWA pool");
    swa = {};
  }
  std::vector<int32_t> free_full, free_swa;
  auto give_back = [&](int64_t from, int64_t to) {  // the caller's own slots of [from, to)
    free_full.insert(free_full.end(), full.begin() + from, full.begin() + to);
    if (swa_) free_swa.insert(free_swa.end(), swa.begin() + from, swa.begin() + to);
  };
  const int64_t aligned = disabled_ ? 0 : n / page_ * page_;
  give_back(aligned, n);  // a partial last page is never cached (the tree is page-granular)
  int64_t pos = 0;
  if (aligned > 0) {
    const uint64_t tick = ++clock_;
    RadixNode* cur = root_.get();
    while (pos < aligned) {
      RadixNode* c = find_child(cur, tokens.data() + pos);
      if (!c) break;
      const int64_t k = common_length(c->tokens.data(), tokens.data() + pos, std::min(c->len(), aligned - pos));
      if (k < c->len()) c = split(c, k);
      cur = absorb(c, pos, full, swa, tick, free_full, free_swa);
      pos += k;
    }
    if (pos < aligned) add_chain(cur, pos, aligned, tokens, full, swa, tick);
  }
  full_.free(free_full);
  if (swa_) swa_->free(free_swa);
  return pos;
}

// Merges the caller's slots for the tokens [pos, pos + len) that node `x` already holds: the caller's own
// duplicates go to the free lists, its live SWA slots revive tombstoned runs. Returns the deepest piece of x
// (x itself unless reviving split it).
RadixNode* RadixCache::absorb(RadixNode* x, int64_t pos, std::span<const int32_t> full, std::span<const int32_t> swa,
                              uint64_t tick, std::vector<int32_t>& free_full, std::vector<int32_t>& free_swa) {
  const int64_t len = x->len();
  const int fp = full_.page_size();
  std::vector<uint8_t> revive(size_t(len), 0);
  bool any_revive = false;
  for (int64_t j = 0; j < len; ++j) {
    const int32_t f = full[size_t(pos + j)], t = x->full[size_t(j)];
    if (f == t) continue;  // the tree's own slot (from a match): its SWA state is the tree's business too
    MIMO_ASSERT(f >= 0 && f / fp != t / fp, "insert: full slot {} shares a page with the tree's {}", f, t);
    free_full.push_back(f);
    if (!swa_) continue;
    const int32_t s = swa[size_t(pos + j)];
    if (s < 0) continue;
    if (x->tomb) {
      revive[size_t(j)] = 1;
      any_revive = true;
    } else if (s != x->swa[size_t(j)]) {
      MIMO_ASSERT(s / swa_->page_size() != x->swa[size_t(j)] / swa_->page_size(), "insert: SWA slot {} shares a page",
                  s);
      free_swa.push_back(s);
    }
  }
  if (!any_revive) {
    touch(x, tick);
    return x;
  }
  // Split x into runs of equal `revive`, top first (x stays the lowest piece), and hand the caller's live SWA
  // slots to the revived runs.
  for (int64_t o = 0; o < len;) {
    int64_t r = 1;
    while (o + r < len && revive[size_t(o + r)] == revive[size_t(o)]) ++r;
    MIMO_ASSERT(r % page_ == 0, "insert: SWA liveness changes inside a page at position {}", pos + o + r);
    RadixNode* piece = o + r < len ? split(x, r) : x;
    if (revive[size_t(o)]) {
      detach(piece);
      std::copy_n(swa.begin() + pos + o, r, piece->swa.begin());
      piece->tomb = false;
      attach(piece);
    }
    touch(piece, tick);
    o += r;
  }
  return x;
}

// New nodes for tokens [pos, end) under `parent`, one per run of equal SWA liveness (a node's SWA state is uniform).
void RadixCache::add_chain(RadixNode* parent, int64_t pos, int64_t end, std::span<const int32_t> tokens,
                           std::span<const int32_t> full, std::span<const int32_t> swa, uint64_t tick) {
  RadixNode* cur = parent;
  while (pos < end) {
    int64_t run_end = end;
    const bool live = swa_ && swa[size_t(pos)] >= 0;
    if (swa_) {
      run_end = pos + 1;
      while (run_end < end && (swa[size_t(run_end)] >= 0) == live) ++run_end;
    }
    MIMO_ASSERT((run_end - pos) % page_ == 0, "insert: SWA liveness changes inside a page at position {}", run_end);
    auto node = std::make_unique<RadixNode>();
    RadixNode* x = node.get();
    x->parent = cur;
    x->start = pos;
    x->tokens.assign(tokens.begin() + pos, tokens.begin() + run_end);
    x->full.assign(full.begin() + pos, full.begin() + run_end);
    MIMO_ASSERT(std::all_of(x->full.begin(), x->full.end(), [](int32_t s) { return s >= 0; }),
                "insert: missing full slot");
    if (swa_) x->swa.assign(swa.begin() + pos, swa.begin() + run_end);
    x->tomb = swa_ && !live;
    x->tick = tick;
    x->id = next_id_++;
    const bool inner = cur != root_.get();
    if (inner) detach(cur);  // cur stops being a leaf
    cur->children.emplace(child_key(x->tokens.data()), std::move(node));
    if (inner) attach(cur);
    attach(x);
    ++num_nodes_;
    cur = x;
    pos = run_end;
  }
}

// ---- locks ----
//
// The SWA chain of a lock on a node ending at e is the nodes from it up to the one that starts at
// b = floor_page(max(e - window, 0)); lock() splits so that a node starts exactly at b. unlock() walks up until a
// node starts at or before e - window. Later splits keep both in agreement: a piece below b starts at least a page
// after b, hence after e - window, and the piece starting at b inherits the lock count by the copy in split().

void RadixCache::lock(RadixNode* node) {
  if (disabled_ || node == root_.get()) return;
  const int64_t thr = std::max<int64_t>(node->end() - window_, 0);
  if (swa_) {
    const int64_t b = thr / page_ * page_;
    for (RadixNode* x = node; x != root_.get(); x = x->parent) {
      if (x->start > b) continue;
      if (x->start < b) split(x, b - x->start);
      break;
    }
  }
  bool in_swa_chain = swa_ != nullptr;
  for (RadixNode* x = node; x != root_.get(); x = x->parent) {
    detach(x);
    ++x->full_lock;
    if (in_swa_chain) ++x->swa_lock;
    attach(x);
    if (x->start <= thr) in_swa_chain = false;
  }
}

void RadixCache::unlock(RadixNode* node) {
  if (disabled_ || node == root_.get()) return;
  const int64_t thr = std::max<int64_t>(node->end() - window_, 0);
  bool in_swa_chain = swa_ != nullptr;
  for (RadixNode* x = node; x != root_.get(); x = x->parent) {
    MIMO_ASSERT(x->full_lock > 0 && (!in_swa_chain || x->swa_lock > 0), "unlock without lock");
    detach(x);
    --x->full_lock;
    if (in_swa_chain) --x->swa_lock;
    attach(x);
    if (x->start <= thr) in_swa_chain = false;
  }
}

// ---- eviction ----

int64_t RadixCache::evict_full(int64_t n) {
  int64_t freed = 0;
  while (freed < n && !full_lru_.empty()) {
    RadixNode* x = full_lru_.begin()->node;
    const int64_t want = pages_up(n - freed);
    if (want >= x->len()) {
      freed += x->len();
      delete_leaf(x);  // its parent may join full_lru_ now (cascade)
    } else {
      trim_tail(x, want);  // keep the leaf's front: a shorter prefix is still a hit
      freed += want;
    }
  }
  return freed;
}

int64_t RadixCache::evict_swa(int64_t n) {
  int64_t freed = 0;
  while (freed < n && !swa_lru_.empty()) {
    RadixNode* x = swa_lru_.begin()->node;
    const int64_t want = pages_up(n - freed);
    if (x->children.empty() && x->full_lock == 0) {
      if (want >= x->len()) {
        freed += x->len();
        delete_leaf(x);
      } else {
        trim_tail(x, want);
        freed += want;
      }
    } else {
      // Tombstone the oldest tokens first: the node's front, so its end may still follow `window` live tokens.
      if (want < x->len()) x = split(x, want);
      freed += x->len();
      tombstone(x);
    }
  }
  return freed;
}

// ---- teardown ----

void RadixCache::destroy_all(bool free_slots) {
  std::vector<int32_t> ff, fs;
  std::vector<std::unique_ptr<RadixNode>> stack;  // iterative: paths can be thousands of nodes deep
  for (auto& kv : root_->children) stack.push_back(std::move(kv.second));
  root_->children.clear();
  while (!stack.empty()) {
    std::unique_ptr<RadixNode> x = std::move(stack.back());
    stack.pop_back();
    for (auto& kv : x->children) stack.push_back(std::move(kv.second));
    x->children.clear();
    if (free_slots) {
      ff.insert(ff.end(), x->full.begin(), x->full.end());
      if (swa_ && !x->tomb) fs.insert(fs.end(), x->swa.begin(), x->swa.end());
    }
  }
  if (free_slots) {
    full_.free(ff);
    if (swa_) swa_->free(fs);
  }
  full_lru_.clear();
  swa_lru_.clear();
  cached_full_ = cached_swa_ = locked_full_ = locked_swa_ = num_nodes_ = 0;
}

bool RadixCache::reset() {
  if (locked_full_ > 0) return false;
  destroy_all(true);
  return true;
}

// ---- self-check ----

void RadixCache::check_invariants() const {
  int64_t sum_full = 0, sum_swa = 0, sum_lfull = 0, sum_lswa = 0, nodes = 0, in_full = 0, in_swa = 0;
  std::unordered_set<int32_t> seen_full, seen_swa;
  std::vector<const RadixNode*> stack{root_.get()};
  // A page-aligned run of a sequence fills whole allocator pages with consecutive slots.
  auto check_pages = [](const RadixNode* x, const std::vector<int32_t>& s, const SlotAllocator& a) {
    const int ap = a.page_size();
    for (int64_t j = 0; j < x->len(); ++j) {
      const int32_t v = s[size_t(j)];
      MIMO_ASSERT(a.is_allocated(v), "tree slot {} is free in its allocator", v);
      if ((x->start + j) % ap == 0) MIMO_ASSERT(v % ap == 0, "slot {} starts no page", v);
      else MIMO_ASSERT(v == s[size_t(j - 1)] + 1, "slots of a page not consecutive");
    }
  };
  while (!stack.empty()) {
    const RadixNode* x = stack.back();
    stack.pop_back();
    int32_t child_locks = 0;
    for (const auto& [key, cp] : x->children) {
      const RadixNode* c = cp.get();
      MIMO_ASSERT(c->parent == x && c->start == x->end(), "broken parent link");
      MIMO_ASSERT(c->len() > 0 && c->len() % page_ == 0, "node length {} not whole pages", c->len());
      MIMO_ASSERT(key == child_key(c->tokens.data()) && find_child(x, c->tokens.data()) == c, "bad child key");
      MIMO_ASSERT(x == root_.get() || c->tick <= x->tick, "child newer than its parent");
      child_locks += c->full_lock;
      stack.push_back(c);
    }
    if (x == root_.get()) continue;
    ++nodes;
    MIMO_ASSERT(x->full_lock >= child_locks && x->swa_lock >= 0 && x->swa_lock <= x->full_lock, "lock counts");
    MIMO_ASSERT(int64_t(x->full.size()) == x->len() && int64_t(x->swa.size()) == (swa_ ? x->len() : 0));
    check_pages(x, x->full, full_);
    for (int32_t s : x->full) MIMO_ASSERT(seen_full.insert(s).second, "full slot {} held twice", s);
    if (swa_) {
      const bool all_dead = std::all_of(x->swa.begin(), x->swa.end(), [](int32_t s) { return s < 0; });
      MIMO_ASSERT(x->tomb == all_dead, "SWA state not uniform");
      if (!x->tomb) check_pages(x, x->swa, *swa_);
      if (!x->tomb)
        for (int32_t s : x->swa) MIMO_ASSERT(seen_swa.insert(s).second, "SWA slot {} held twice", s);
    }
    const int64_t cs = (swa_ && !x->tomb) ? x->len() : 0;
    MIMO_ASSERT(x->attached && x->c_full == x->len() && x->c_swa == cs &&
                    x->c_lfull == (x->full_lock > 0 ? x->len() : 0) && x->c_lswa == (x->swa_lock > 0 ? cs : 0),
                "stale counters on node {}", x->id);
    const bool fl = x->children.empty() && x->full_lock == 0, sl = cs > 0 && x->swa_lock == 0;
    MIMO_ASSERT(x->in_full_lru == fl && x->in_swa_lru == sl && x->key_tick == x->tick && x->key_start == x->start,
                "stale LRU entry on node {}", x->id);
    MIMO_ASSERT(!fl || full_lru_.count({x->tick, x->start, x->id, nullptr}), "leaf missing from full LRU");
    MIMO_ASSERT(!sl || swa_lru_.count({x->tick, x->start, x->id, nullptr}), "node missing from SWA LRU");
    sum_full += x->c_full, sum_swa += x->c_swa, sum_lfull += x->c_lfull, sum_lswa += x->c_lswa;
    in_full += fl, in_swa += sl;
  }
  MIMO_ASSERT(sum_full == cached_full_ && sum_swa == cached_swa_ && sum_lfull == locked_full_ &&
                  sum_lswa == locked_swa_ && nodes == num_nodes_,
              "counters drifted");
  MIMO_ASSERT(in_full == int64_t(full_lru_.size()) && in_swa == int64_t(swa_lru_.size()), "LRU sets drifted");
}

}  // namespace mimo
