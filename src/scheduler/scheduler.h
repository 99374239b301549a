// Continuous batching: which requests run in the next model step, and the
// KV bookkeeping around it. Device-free: it hands out slots from the pools'
// allocators, lends and takes back prefix-cache entries, frees sliding-window
// KV that no query can see any more, and retracts requests when decode runs
// out of KV. The engine runs the step it builds and samples.
//
// Step policy (as SGLang): when waiting requests can be admitted, run a
// prefill step (the continuing chunked request first, then new ones in
// policy order, within the token budget); otherwise a decode step over all
// running requests.
#pragma once

#include <deque>
#include <string>
#include <vector>

#include "kv/radix_cache.h"
#include "kv/slot_allocator.h"
#include "model/batch.h"
#include "scheduler/req.h"

namespace mimo {

struct SchedulerConfig {
  int max_running_requests = 64;
  int chunked_prefill_size = 2048;   // <= 0: no chunking
  int max_prefill_tokens = 16384;
  int page_size = 1;
  bool disable_radix_cache = false;
  std::string policy = "fcfs";       // fcfs | lpm
  int window = 0;                    // sliding window of the SWA layers (0: model has none)
  double init_new_token_ratio = 0.7, min_new_token_ratio = 0.1, new_token_ratio_decay = 0.001;
  int clip_max_new_tokens = 4096;
  int spec_steps = 0;  // MTP draft tokens per verify (0: no speculation)
};

// One request's share of a step: tokens [begin, begin + len) run; `samples`
// when the run reaches the last token (its logits pick the next token).
struct BatchEntry {
  Req* req = nullptr;
  int64_t begin = 0, len = 0;
  bool samples = false;
  std::vector<int32_t> drafts;  // verify: tokens past req->tokens (the last len - 1 of the run)
  int64_t committed = -1;       // set by the engine after a verify: tokens whose KV is now valid
  bool verify() const { return !drafts.empty(); }
};

struct ScheduledBatch {
  std::vector<BatchEntry> entries;
  bool prefill = false;
  bool empty() const { return entries.empty(); }
};

struct SchedulerCounters {
  int64_t retractions = 0;
  int64_t prompt_tokens = 0, cached_prompt_tokens = 0;
};

class Scheduler {
 public:
  Scheduler(const SchedulerConfig& cfg, SlotAllocator& full, SlotAllocator* swa, RadixCache& cache);

  void add(Req* r);                      // joins the waiting queue
  ScheduledBatch schedule();             // picks and allocates the next step
  void build_step(const ScheduledBatch& b, StepBatch& out) const;
  void after_step(const ScheduledBatch& b);  // KV of the step is now computed
  void finish(Req* r);                   // running or waiting -> gone; KV to the cache or freed
  void remove_waiting(Req* r);

  const std::deque<Req*>& waiting() const { return waiting_; }
  const std::vector<Req*>& running() const { return running_; }
  const SchedulerCounters& counters() const { return counters_; }
  double new_token_ratio() const { return new_token_ratio_; }
  bool idle() const { return waiting_.empty() && running_.empty(); }

 private:
  ScheduledBatch schedule_prefill();
  ScheduledBatch schedule_decode();
  void match(Req* r);
  bool alloc(Req* r, int64_t n);          // KV for positions [allocated, allocated + n)
  int64_t allocated(const Req* r) const { return int64_t(r->full_slots.size()); }
  int64_t decode_extra(const Req* r) const;
  bool make_room(int64_t full_slots, int64_t swa_slots);
  void cache_prefix(Req* r);              // lend computed KV to the cache (chunked prefill)
  void release(Req* r, bool keep_in_cache);
  void retract(Req* r);
  void free_slid_out_swa(Req* r);
  int64_t reserved_tokens() const;
  bool waits_for_sibling(const Req* r) const;

  SchedulerConfig cfg_;
  SlotAllocator& full_;
  SlotAllocator* swa_;
  RadixCache& cache_;
  std::deque<Req*> waiting_;
  std::vector<Req*> running_;  // admitted, KV held (includes the chunked one)
  Req* chunked_ = nullptr;     // the request whose prefill continues next prefill step
  double new_token_ratio_;
  SchedulerCounters counters_;
};

}  // namespace mimo
