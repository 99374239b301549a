#include "tokenizer/bpe.h"

#include <algorithm>
#include <climits>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/piece_cache.h"
#include "tokenizer/utf8.h"

namespace mimo {
namespace {

// Ids index dense tables; anything past this is a broken file, not a vocab.
constexpr int64_t kMaxId = int64_t(1) << 24;

std::string mapped_char(uint8_t b) {
  std::string s;
  utf8::append(&s, byte_level::kByteToChar[b]);
  return s;
}

}  // namespace

// ---------------------------------------------------------------- PairMap

void BpeModel::PairMap::reserve(size_t n) {
  size_t cap = 16;
  while (cap < n * 2) cap <<= 1;  // load factor <= 0.5 keeps probe runs short
  slots_.assign(cap, Slot{kEmpty, {0, 0}});
  mask_ = cap - 1;
}

static inline uint64_t pair_key(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }

static inline uint64_t mix(uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdull;
  k ^= k >> 33;
  return k;
}

void BpeModel::PairMap::insert(int32_t a, int32_t b, Merge m) {
  const uint64_t key = pair_key(a, b);
  for (uint64_t i = mix(key) & mask_;; i = (i + 1) & mask_) {
    if (slots_[i].key == kEmpty || slots_[i].key == key) {
      // A repeated pair keeps its last rank, as Hugging Face's HashMap collect does.
      slots_[i] = Slot{key, m};
      return;
    }
  }
}

const BpeModel::Merge* BpeModel::PairMap::find(int32_t a, int32_t b) const {
  const uint64_t key = pair_key(a, b);
  for (uint64_t i = mix(key) & mask_;; i = (i + 1) & mask_) {
    if (slots_[i].key == key) return &slots_[i].merge;
    if (slots_[i].key == kEmpty) return nullptr;
  }
}

// ---------------------------------------------------------------- model

BpeModel::BpeModel() : cache_(std::make_unique<PieceCache>()) {}
BpeModel::~BpeModel() = default;

std::unique_ptr<BpeModel> BpeModel::from_json(const nlohmann::json& j) {
  MIMO_CHECK(j.is_object(), "tokenizer.json: \"model\" must be an object");
  const std::string type = j.value("type", std::string("BPE"));
  MIMO_CHECK(type == "BPE", "tokenizer.json: unsupported model type \"{}\" (only BPE is supported)", type);
  MIMO_CHECK(j.contains("vocab") && j["vocab"].is_object(), "tokenizer.json: BPE model without a \"vocab\" object");
  const auto& dropout = j.value("dropout", nlohmann::json());
  MIMO_CHECK(dropout.is_null() || (dropout.is_number() && dropout.get<double>() == 0.0),
             "tokenizer.json: BPE dropout is not supported (encode must be deterministic)");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    const auto& v = j.value(key, nlohmann::json());
    MIMO_CHECK(v.is_null() || (v.is_string() && v.get<std::string>().empty()),
               "tokenizer.json: BPE {} is not supported", key);
  }

  auto m = std::unique_ptr<BpeModel>(new BpeModel());

  // Vocab: ids may have holes, so lay the strings out by id.
  std::vector<std::pair<int32_t, const std::string*>> entries;
  entries.reserve(j["vocab"].size());
  for (const auto& [tok, idv] : j["vocab"].items()) {
    MIMO_CHECK(idv.is_number_integer(), "tokenizer.json: vocab entry \"{}\" has a non-integer id", tok);
    const int64_t id = idv.get<int64_t>();
    MIMO_CHECK(id >= 0 && id < kMaxId, "tokenizer.json: vocab entry \"{}\" has id {} out of range", tok, id);
    entries.emplace_back(int32_t(id), &tok);
  }
  std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  const int32_t limit = entries.empty() ? 0 : entries.back().first + 1;
  m->tok_off_.assign(size_t(limit) + 1, 0);
  m->has_id_.assign(size_t(limit), false);
  size_t e = 0;
  for (int32_t id = 0; id < limit; ++id) {
    m->tok_off_[id] = uint32_t(m->tok_blob_.size());
    if (e < entries.size() && entries[e].first == id) {
      MIMO_CHECK(e + 1 == entries.size() || entries[e + 1].first != id,
                 "tokenizer.json: vocab id {} is used by both \"{}\" and \"{}\"", id, *entries[e].second,
                 *entries[e + 1].second);
      m->tok_blob_ += *entries[e].second;
      m->has_id_[id] = true;
      ++e;
    }
  }
  m->tok_off_[limit] = uint32_t(m->tok_blob_.size());
  m->vocab_.reserve(entries.size());
  for (int32_t id = 0; id < limit; ++id) {
    if (m->has_id_[id]) m->vocab_.emplace(*m->id_to_token(id), id);
  }

  bool all_bytes = true;
  for (int b = 0; b < 256; ++b) {
    m->byte_id_[b] = m->token_to_id(mapped_char(uint8_t(b))).value_or(-1);
    all_bytes &= m->byte_id_[b] >= 0;
  }
  // byte_fallback only matters for characters missing from the vocab; with a
  // complete byte alphabet it never fires, otherwise it is not implemented.
  MIMO_CHECK(all_bytes || !j.value("byte_fallback", false),
             "tokenizer.json: BPE byte_fallback with an incomplete byte alphabet is not supported");

  const auto& unk = j.value("unk_token", nlohmann::json());
  if (unk.is_string()) {
    auto id = m->token_to_id(unk.get<std::string>());
    MIMO_CHECK(id.has_value(), "tokenizer.json: unk_token \"{}\" is not in the vocab", unk.get<std::string>());
    m->unk_id_ = *id;
  }
  m->fuse_unk_ = j.value("fuse_unk", false);
  m->ignore_merges_ = j.value("ignore_merges", false);

  // Merges: "a b" strings (older files) or ["a", "b"] pairs (tokenizers >= 0.20).
  static const nlohmann::json kNoMerges = nlohmann::json::array();
  const nlohmann::json& merges = j.contains("merges") ? j["merges"] : kNoMerges;
  MIMO_CHECK(merges.is_array(), "tokenizer.json: BPE \"merges\" must be an array");
  m->merges_.reserve(merges.size());
  std::string a, b;
  for (size_t i = 0; i < merges.size(); ++i) {
    const auto& mj = merges[i];
    if (mj.is_string()) {
      const std::string& s = mj.get_ref<const std::string&>();
      const size_t sp = s.find(' ');
      MIMO_CHECK(sp != std::string::npos, "tokenizer.json: merge #{} \"{}\" is not \"a b\"", i, s);
      a = s.substr(0, sp);
      b = s.substr(sp + 1);
    } else if (mj.is_array() && mj.size() == 2 && mj[0].is_string() && mj[1].is_string()) {
      a = mj[0].get<std::string>();
      b = mj[1].get<std::string>();
    } else {
      fail("tokenizer.json: merge #{} must be \"a b\" or [\"a\", \"b\"]", i);
    }
    const auto ia = m->token_to_id(a), ib = m->token_to_id(b), ic = m->token_to_id(a + b);
    MIMO_CHECK(ia && ib && ic, "tokenizer.json: merge #{} (\"{}\" \"{}\") uses a token missing from the vocab: \"{}\"",
               i, a, b, !ia ? a : !ib ? b : a + b);
    m->merges_.insert(*ia, *ib, Merge{int32_t(i), *ic});
  }
  return m;
}

std::optional<int32_t> BpeModel::token_to_id(std::string_view token) const {
  auto it = vocab_.find(token);
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

std::optional<std::string_view> BpeModel::id_to_token(int32_t id) const {
  if (id < 0 || id >= id_limit() || !has_id_[id]) return std::nullopt;
  return std::string_view(tok_blob_).substr(tok_off_[id], tok_off_[id + 1] - tok_off_[id]);
}

void BpeModel::clear_cache() const { cache_->clear(); }

void BpeModel::encode(std::string_view piece, std::vector<int32_t>* out) const {
  if (piece.size() == 1 && byte_id_[uint8_t(piece[0])] >= 0) {
    out->push_back(byte_id_[uint8_t(piece[0])]);
    return;
  }
  if (piece.empty() || piece.size() > PieceCache::kMaxKeyLen) {
    encode_uncached(piece, out);
    return;
  }
  if (cache_->find(piece, out)) return;
  // Two threads may merge the same piece at once; both get the same ids.
  const size_t first = out->size();
  encode_uncached(piece, out);
  cache_->insert(piece, out->data() + first, out->size() - first);
}

void BpeModel::encode_uncached(std::string_view piece, std::vector<int32_t>* out, MergeLoop loop) const {
  if (piece.empty()) return;
  if (ignore_merges_) {
    thread_local std::string mapped;
    mapped.clear();
    for (char c : piece) utf8::append(&mapped, byte_level::kByteToChar[uint8_t(c)]);
    if (auto id = token_to_id(mapped)) {
      out->push_back(*id);
      return;
    }
  }

  // Initial symbols: one per byte. A byte missing from the vocab becomes the
  // unk token (fused with its unknown neighbours if fuse_unk) or is dropped.
  thread_local std::vector<Symbol> sym;
  sym.clear();
  int32_t pending_unk_len = 0;
  auto add = [&](int32_t id, uint32_t len) {
    const auto n = int32_t(sym.size());
    if (n > 0) sym.back().next = n;
    sym.push_back(Symbol{id, n - 1, -1, len});
  };
  for (char c : piece) {
    const int32_t id = byte_id_[uint8_t(c)];
    if (id >= 0) {
      if (pending_unk_len) {
        add(unk_id_, uint32_t(pending_unk_len));
        pending_unk_len = 0;
      }
      add(id, 1);
    } else if (unk_id_ >= 0) {
      if (pending_unk_len && !fuse_unk_) {
        add(unk_id_, uint32_t(pending_unk_len));
        pending_unk_len = 0;
      }
      ++pending_unk_len;
    }
  }
  if (pending_unk_len) add(unk_id_, uint32_t(pending_unk_len));

  if (loop == MergeLoop::kScan || (loop == MergeLoop::kAuto && sym.size() <= 32)) merge_scan(sym, out);
  else merge_heap(sym, out);
}

void BpeModel::merge_scan(std::vector<Symbol>& sym, std::vector<int32_t>* out) const {
  // Current symbols and, for each adjacent pair, its merge (rank INT32_MAX if none).
  thread_local std::vector<int32_t> ids, ranks, new_ids;
  const size_t n = sym.size();
  ids.resize(n);
  for (size_t i = 0; i < n; ++i) ids[i] = sym[i].id;
  ranks.resize(n);
  new_ids.resize(n);
  auto look = [&](size_t i) {
    const Merge* mg = merges_.find(ids[i], ids[i + 1]);
    ranks[i] = mg ? mg->rank : INT32_MAX;
    new_ids[i] = mg ? mg->new_id : -1;
  };
  size_t m = n;
  for (size_t i = 0; i + 1 < m; ++i) look(i);
  while (m > 1) {
    // The lowest rank, leftmost on ties: the pair Hugging Face's heap pops.
    size_t best = 0;
    for (size_t i = 1; i + 1 < m; ++i) {
      if (ranks[i] < ranks[best]) best = i;
    }
    if (ranks[best] == INT32_MAX) break;
    ids[best] = new_ids[best];
    // Drop symbol best+1 and the pair that started at it.
    for (size_t i = best + 1; i + 1 < m; ++i) {
      ids[i] = ids[i + 1];
      ranks[i] = ranks[i + 1];
      new_ids[i] = new_ids[i + 1];
    }
    --m;
    if (best > 0) look(best - 1);
    if (best + 1 < m) look(best);
  }
  out->insert(out->end(), ids.begin(), ids.begin() + m);
}

void BpeModel::merge_heap(std::vector<Symbol>& sym, std::vector<int32_t>* out) const {
  struct Candidate {
    int32_t rank, pos, new_id;
    uint32_t span;  // bytes covered by the pair when it was queued
  };
  // Min-heap on (rank, pos): the lowest-ranked merge first, leftmost on ties.
  auto later = [](const Candidate& x, const Candidate& y) { return x.rank != y.rank ? x.rank > y.rank : x.pos > y.pos; };
  thread_local std::vector<Candidate> heap;
  heap.clear();
  auto queue = [&](int32_t left) {
    const Symbol& l = sym[left];
    const Symbol& r = sym[l.next];
    if (const Merge* mg = merges_.find(l.id, r.id)) heap.push_back({mg->rank, left, mg->new_id, l.len + r.len});
  };
  for (int32_t i = 0; i + 1 < int32_t(sym.size()); ++i) queue(i);
  std::make_heap(heap.begin(), heap.end(), later);

  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), later);
    const Candidate top = heap.back();
    heap.pop_back();
    Symbol& left = sym[top.pos];
    // Stale entry: the left symbol was merged away, or either side grew since
    // the pair was queued. A symbol only grows, so an unchanged span means an
    // unchanged pair; this is Hugging Face's "same new id" check without a lookup.
    if (left.len == 0 || left.next < 0 || left.len + sym[left.next].len != top.span) continue;
    const Symbol right = sym[left.next];
    sym[left.next].len = 0;
    left.id = top.new_id;
    left.len = top.span;
    left.next = right.next;
    if (right.next >= 0) sym[right.next].prev = top.pos;

    for (const int32_t pos : {left.prev, left.next >= 0 ? top.pos : -1}) {
      if (pos < 0) continue;
      const size_t before = heap.size();
      queue(pos);
      if (heap.size() > before) std::push_heap(heap.begin(), heap.end(), later);
    }
  }
  // Symbol 0 is never merged away (merges keep the left symbol), so the live
  // list starts there.
  for (int32_t i = sym.empty() ? -1 : 0; i >= 0; i = sym[i].next) out->push_back(sym[i].id);
}

}  // namespace mimo
