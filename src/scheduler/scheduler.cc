#include "scheduler/scheduler.h"

#include <algorithm>

#include "core/error.h"

namespace mimo {

Scheduler::Scheduler(const SchedulerConfig& cfg, SlotAllocator& full, SlotAllocator* swa, RadixCache& cache)
    : cfg_(cfg), full_(full), swa_(swa), cache_(cache), new_token_ratio_(cfg.init_new_token_ratio) {}

void Scheduler::add(Req* r) {
  r->status = ReqStatus::Waiting;
  waiting_.push_back(r);
}

bool Scheduler::waits_for_sibling(const Req* r) const {
  return r->wait_for != nullptr && r->wait_for->status != ReqStatus::Finished &&
         r->wait_for->computed < r->wait_for->prompt_len;
}

int64_t Scheduler::reserved_tokens() const {
  double t = 0;
  for (const Req* r : running_) {
    if (r == chunked_) continue;
    int64_t left = std::max<int64_t>(0, r->params.max_new_tokens - r->output_len());
    t += double(std::min<int64_t>(left, cfg_.clip_max_new_tokens)) * new_token_ratio_;
  }
  return int64_t(t);
}

void Scheduler::match(Req* r) {
  // Prompt logprobs need the logits of every position from the one before
  // the first asked for: those positions are computed, not taken from the cache.
  const size_t limit = r->params.prompt_logprobs_start >= 0
                           ? size_t(std::max(0, r->params.prompt_logprobs_start - 1))
                           : r->tokens.size();
  PrefixMatch m = cache_.match_prefix(std::span<const int32_t>(r->tokens.data(), std::min(limit, r->tokens.size())));
  if (cfg_.spec_steps > 0 && m.length > 0) {
    // Recompute the last few cached positions: the MTP layers need the
    // target's hidden states there, and a cached position's MTP KV is only
    // right where the tokens after it match too.
    int64_t back = std::max<int64_t>(0, m.length - cfg_.spec_steps);
    m = cache_.match_prefix(std::span<const int32_t>(r->tokens.data(), size_t(back) + 1));
  }
  cache_.lock(m.node);
  r->prefix_node = m.node;
  r->prefix_len = r->computed = r->swa_freed_upto = m.length;
  r->full_slots = std::move(m.full_slots);
  r->swa_slots = std::move(m.swa_slots);
  r->swa_slots.resize(r->full_slots.size(), -1);
  r->matched = true;
  for (auto& d : r->mtp_done) d = r->prefix_len;
  r->hist.clear();
  r->hist_begin = r->prefix_len;
  r->drafts.clear();
}

bool Scheduler::make_room(int64_t full_need, int64_t swa_need) {
  if (full_.free_slots() < full_need) cache_.evict_full(full_need - full_.free_slots());
  if (swa_ && swa_->free_slots() < swa_need) cache_.evict_swa(swa_need - swa_->free_slots());
  return full_.free_slots() >= full_need && (!swa_ || swa_->free_slots() >= swa_need);
}

bool Scheduler::alloc(Req* r, int64_t n) {
  int64_t pos = allocated(r);
  if (n <= 0) return true;
  int64_t full_need = full_.pages_needed(pos, n) * full_.page_size();
  int64_t swa_need = swa_ ? swa_->pages_needed(pos, n) * swa_->page_size() : 0;
  if (!make_room(full_need, swa_need)) return false;
  bool ok = full_.alloc_extend(pos, pos ? r->full_slots.back() : -1, n, r->full_slots);
  MIMO_ASSERT(ok);
  if (swa_) {
    ok = swa_->alloc_extend(pos, pos ? r->swa_slots.back() : -1, n, r->swa_slots);
    MIMO_ASSERT(ok);
  } else {
    r->swa_slots.resize(r->full_slots.size(), -1);
  }
  return true;
}

ScheduledBatch Scheduler::schedule() {
  ScheduledBatch b = schedule_prefill();
  if (!b.empty()) return b;
  return schedule_decode();
}

ScheduledBatch Scheduler::schedule_prefill() {
  ScheduledBatch b;
  b.prefill = true;
  int64_t budget = cfg_.chunked_prefill_size > 0 ? std::min(cfg_.chunked_prefill_size, cfg_.max_prefill_tokens)
                                                 : cfg_.max_prefill_tokens;
  int64_t used = 0;
  if (chunked_) {
    Req* r = chunked_;
    int64_t n = std::min<int64_t>(int64_t(r->tokens.size()) - r->computed, budget);
    if (!alloc(r, n)) return b;  // no room for the next chunk: decode the others first
    b.entries.push_back({r, r->computed, n, r->computed + n == int64_t(r->tokens.size()), {}, -1});
    used += n;
    if (b.entries.back().samples) chunked_ = nullptr;
  }
  if (waiting_.empty() || chunked_) return b;

  std::vector<Req*> order(waiting_.begin(), waiting_.end());
  if (cfg_.policy == "lpm" && order.size() <= 128) {
    // Longest cached prefix first (probing only; the real match locks at admission).
    std::vector<std::pair<int64_t, Req*>> scored;
    for (Req* r : order) scored.push_back({cache_.match_prefix(r->tokens).length, r});
    std::stable_sort(scored.begin(), scored.end(), [](auto& a, auto& c) { return a.first > c.first; });
    for (size_t i = 0; i < order.size(); i++) order[i] = scored[i].second;
  }
  int64_t reserved = reserved_tokens();
  for (Req* r : order) {
    if (int(running_.size()) >= cfg_.max_running_requests || used >= budget || chunked_) break;
    if (waits_for_sibling(r)) continue;
    match(r);
    int64_t remaining = int64_t(r->tokens.size()) - r->computed;
    int64_t n = std::min(remaining, budget - used);
    int64_t left_new = std::max<int64_t>(0, r->params.max_new_tokens - r->output_len());
    int64_t need = remaining + int64_t(double(std::min<int64_t>(left_new, cfg_.clip_max_new_tokens)) * new_token_ratio_);
    int64_t avail = full_.free_slots() + cache_.evictable_full() - reserved;
    bool alone = running_.empty() && b.entries.empty();  // a lone request may take the whole pool
    if ((need + full_.page_size() > avail && !alone) || !alloc(r, n)) {
      cache_.unlock(r->prefix_node);
      r->full_slots.clear();
      r->swa_slots.clear();
      r->computed = r->prefix_len = r->swa_freed_upto = 0;
      r->prefix_node = nullptr;
      r->matched = false;
      if (cfg_.policy == "fcfs") break;
      continue;
    }
    if (r->retractions == 0 && r->output_len() == 0) {
      r->cached_tokens = int(r->prefix_len);
      counters_.prompt_tokens += r->prompt_len;
      counters_.cached_prompt_tokens += r->prefix_len;
    }
    bool samples = r->computed + n == int64_t(r->tokens.size());
    b.entries.push_back({r, r->computed, n, samples, {}, -1});
    waiting_.erase(std::find(waiting_.begin(), waiting_.end(), r));
    running_.push_back(r);
    r->status = ReqStatus::Running;
    if (!samples) chunked_ = r;
    used += n;
    reserved += int64_t(double(std::min<int64_t>(left_new, cfg_.clip_max_new_tokens)) * new_token_ratio_);
  }
  return b;
}

ScheduledBatch Scheduler::schedule_decode() {
  ScheduledBatch b;
  new_token_ratio_ = std::max(cfg_.min_new_token_ratio, new_token_ratio_ - cfg_.new_token_ratio_decay);
  for (;;) {
    int64_t full_need = 0, swa_need = 0;
    for (Req* r : running_) {
      if (r == chunked_) continue;
      int64_t extra = decode_extra(r);
      full_need += full_.pages_needed(allocated(r), extra) * full_.page_size();
      if (swa_) swa_need += swa_->pages_needed(allocated(r), extra) * swa_->page_size();
    }
    if (make_room(full_need, swa_need)) break;
    // Out of KV: retract the request that has produced least (longest prompt
    // on ties) and try again; it resumes later from its tokens.
    std::vector<Req*> cands;
    for (Req* r : running_)
      if (r != chunked_) cands.push_back(r);
    if (cands.size() <= 1 && !chunked_) break;  // nothing left to retract; alloc below fails loudly
    Req* victim = nullptr;
    for (Req* r : cands)
      if (!victim || r->output_len() < victim->output_len() ||
          (r->output_len() == victim->output_len() && r->prompt_len > victim->prompt_len))
        victim = r;
    if (!victim || (cands.size() <= 1 && chunked_)) {
      victim = chunked_;  // let the decode requests proceed
      chunked_ = nullptr;
    }
    retract(victim);
    new_token_ratio_ = std::min(1.0, new_token_ratio_ + 0.1);
  }
  for (Req* r : running_) {
    if (r == chunked_) continue;
    if (!alloc(r, decode_extra(r))) break;  // only a lone request too long for the pool gets here
    BatchEntry e{r, r->computed, 1 + int64_t(r->drafts.size()), true, r->drafts, -1};
    b.entries.push_back(std::move(e));
  }
  return b;
}

int64_t Scheduler::decode_extra(const Req* r) const {
  // Room for the next token and the drafts to verify with it (the slots of
  // rejected drafts are reused by the next verify: over-allocation).
  return std::max<int64_t>(0, r->computed + 1 + int64_t(r->drafts.size()) - allocated(r));
}

void Scheduler::build_step(const ScheduledBatch& b, StepBatch& s) const {
  s = StepBatch();
  s.q_start.push_back(0);
  for (const BatchEntry& e : b.entries) {
    const Req* r = e.req;
    int64_t end = e.begin + e.len;
    const auto [plo, phi] = r->prompt_logit_rows(e.begin, e.len);
    for (int64_t p = e.begin; p < end; p++) {
      size_t i = size_t(p);
      s.tokens.push_back(i < r->tokens.size() ? r->tokens[i] : e.drafts[i - r->tokens.size()]);
      s.positions.push_back(int32_t(p));
      // A verify checks every row; prompt logprobs score the rows they ask for.
      if (e.verify() || (p >= plo && p < phi)) s.logit_rows.push_back(int32_t(s.tokens.size()) - 1);
    }
    if (e.samples && !e.verify()) s.logit_rows.push_back(int32_t(s.tokens.size()) - 1);
    s.q_start.push_back(int32_t(s.tokens.size()));
    s.kv_len.push_back(int32_t(end));
    const std::vector<int32_t>* slots[2] = {&r->full_slots, &r->swa_slots};
    for (int p = 0; p < 2; p++) {
      PoolSlots& ps = s.pools[p];
      ps.table_start.push_back(int32_t(ps.table.size()));
      ps.table.insert(ps.table.end(), slots[p]->begin(), slots[p]->begin() + end);
      ps.out_slots.insert(ps.out_slots.end(), slots[p]->begin() + e.begin, slots[p]->begin() + end);
    }
  }
}

void Scheduler::after_step(const ScheduledBatch& b) {
  for (const BatchEntry& e : b.entries) {
    Req* r = e.req;
    r->computed = e.begin + (e.committed >= 0 ? e.committed : e.len);
    // Lend freshly prefilled KV to the cache at once (as SGLang does), so
    // requests sharing the prompt (n > 1, chats) reuse it while this one runs.
    if (b.prefill) cache_prefix(r);
    if (r->computed >= r->prompt_len)
      for (Req* w : waiting_)
        if (w->wait_for == r) w->wait_for = nullptr;
    free_slid_out_swa(r);
  }
}

void Scheduler::cache_prefix(Req* r) {
  int64_t page = full_.page_size();
  int64_t n = r->computed / page * page;
  if (cfg_.disable_radix_cache || n <= r->prefix_len) return;
  std::span<const int32_t> toks(r->tokens.data(), size_t(n));
  cache_.insert(toks, std::span<const int32_t>(r->full_slots.data(), size_t(n)),
                std::span<const int32_t>(r->swa_slots.data(), size_t(n)));
  // The tree now owns [0, n): use its slots (ours may have been duplicates it freed).
  PrefixMatch m = cache_.match_cached(std::span<const int32_t>(r->tokens.data(), size_t(n)));
  cache_.lock(m.node);
  cache_.unlock(r->prefix_node);
  MIMO_ASSERT(m.length <= n);
  std::copy(m.full_slots.begin(), m.full_slots.end(), r->full_slots.begin());
  std::copy(m.swa_slots.begin(), m.swa_slots.end(), r->swa_slots.begin());
  r->prefix_node = m.node;
  r->prefix_len = m.length;
  if (m.length < n) {
    // The cache would not lend all of it back (an SWA window it cannot vouch
    // for): it already took [m.length, n) from us, so that part is computed
    // again; our slots past n go back to the pools.
    std::vector<int32_t> f, sw;
    for (size_t p = size_t(n); p < r->full_slots.size(); p++) {
      f.push_back(r->full_slots[p]);
      if (r->swa_slots[p] >= 0) sw.push_back(r->swa_slots[p]);
    }
    full_.free(f);
    if (swa_) swa_->free(sw);
    r->full_slots.resize(size_t(m.length));
    r->swa_slots.resize(size_t(m.length));
    r->computed = m.length;
    r->swa_freed_upto = std::min(r->swa_freed_upto, m.length);
  }
  r->swa_freed_upto = std::max(r->swa_freed_upto, r->prefix_len);
}

void Scheduler::free_slid_out_swa(Req* r) {
  if (!swa_ || cfg_.window <= 0) return;
  int64_t page = swa_->page_size();
  // The next query (at `computed`) reads keys from computed - window + 1 on;
  // keep one more so the prefix cache can vouch for a full window behind
  // the request's end when it finishes.
  int64_t bound = r->computed - cfg_.window;
  bound = bound / page * page;
  int64_t from = std::max(r->swa_freed_upto, r->prefix_len);
  if (bound <= from) return;
  std::vector<int32_t> drop;
  for (int64_t p = from; p < bound; p++) {
    int32_t& s = r->swa_slots[size_t(p)];
    if (s >= 0) drop.push_back(s);
    s = -1;
  }
  swa_->free(drop);
  r->swa_freed_upto = bound;
}

void Scheduler::release(Req* r, bool keep_in_cache) {
  int64_t page = full_.page_size();
  int64_t own_from = r->prefix_len;
  if (keep_in_cache) {
    int64_t n = r->computed / page * page;
    if (n > 0) {
      cache_.insert(std::span<const int32_t>(r->tokens.data(), size_t(n)),
                    std::span<const int32_t>(r->full_slots.data(), size_t(n)),
                    std::span<const int32_t>(r->swa_slots.data(), size_t(n)));
      own_from = std::max(own_from, n);
    }
  }
  if (r->prefix_node) cache_.unlock(r->prefix_node);
  std::vector<int32_t> f, s;
  for (size_t p = size_t(own_from); p < r->full_slots.size(); p++) {
    f.push_back(r->full_slots[p]);
    if (r->swa_slots[p] >= 0) s.push_back(r->swa_slots[p]);
  }
  full_.free(f);
  if (swa_) swa_->free(s);
  r->full_slots.clear();
  r->swa_slots.clear();
  r->computed = r->prefix_len = r->swa_freed_upto = 0;
  r->prefix_node = nullptr;
  r->matched = false;
}

void Scheduler::retract(Req* r) {
  release(r, false);
  running_.erase(std::find(running_.begin(), running_.end(), r));
  if (chunked_ == r) chunked_ = nullptr;
  r->retractions++;
  counters_.retractions++;
  r->status = ReqStatus::Waiting;
  waiting_.push_front(r);
}

void Scheduler::finish(Req* r) {
  if (r->status == ReqStatus::Running) {
    release(r, true);
    running_.erase(std::find(running_.begin(), running_.end(), r));
    if (chunked_ == r) chunked_ = nullptr;
  } else if (r->status == ReqStatus::Waiting) {
    remove_waiting(r);
  }
  r->status = ReqStatus::Finished;
  for (Req* w : waiting_)
    if (w->wait_for == r) w->wait_for = nullptr;
}

void Scheduler::remove_waiting(Req* r) {
  auto it = std::find(waiting_.begin(), waiting_.end(), r);
  if (it != waiting_.end()) waiting_.erase(it);
}

}  // namespace mimo
