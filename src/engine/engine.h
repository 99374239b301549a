// The serving engine: requests in, streams of incremental outputs out. One
// engine thread owns the model, the KV pools, the prefix cache and the
// scheduler; submit/abort/stats may be called from any thread.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/error.h"
#include "engine/sampler.h"
#include "engine/text.h"
#include "engine/spec_depth.h"
#include "engine/trace.h"
#include "model/model.h"
#include "scheduler/scheduler.h"

namespace mimo {

struct EngineConfig {
  int max_running_requests = 64;
  int chunked_prefill_size = 2048;
  int max_prefill_tokens = 16384;
  int page_size = 1;
  bool disable_radix_cache = false;
  std::string schedule_policy = "fcfs";
  int64_t max_total_tokens = 0;        // full-pool tokens; 0 = from the memory budget
  double mem_fraction_static = 0.0;    // of physical memory for weights + KV; 0 = auto (a quarter of what is free)
  double swa_full_tokens_ratio = 0.8;
  int context_length = 0;              // 0 = the model's max_position_embeddings
  bool allow_auto_truncate = false;    // a prompt past the context keeps its first context_length - 1 tokens
  int max_queued_requests = 4096;
  int speculative_num_steps = 0;       // MTP draft tokens per step (0: off); the maximum with auto
  bool speculative_auto = false;       // pick the depth (0..speculative_num_steps) each step
  DType kv_dtype = DType::BF16;
  uint64_t seed = 0;                   // for requests without a seed
  // A request's outputs carry at least this many new tokens each, except its
  // first (time to first token) and its last (SGLang's --stream-interval):
  // fewer, larger stream chunks for less per-output work.
  int stream_interval = 1;
  // Operator logs (engine_log.cc): a line per prefill batch and one every
  // this many decode steps (0: none); a line per finished request at this
  // level (-1: none; 0 counts and latency, 1 + sampling parameters, 2 + the
  // texts clipped to 2 KB, 3 + whole texts).
  int decode_log_interval = 0;
  int log_requests_level = -1;
  // A model step running longer than this many seconds ends the process
  // (exit code 3) so a supervisor can restart it; 0: no watchdog.
  double watchdog_timeout_s = 0;
  // Overlap: output processing of step N (detokenizing, stop strings,
  // streaming) runs while the model computes step N+1.
  bool disable_overlap_schedule = false;
  std::string profile_trace;           // write a Chrome trace here at shutdown
  // Decode, verify and draft steps of up to this many requests run as
  // captured graphs on backends that can capture (CUDA); 0 =
  // max_running_requests.
  int cuda_graph_max_bs = 0;
  bool disable_cuda_graph = false;
};

// A failed submit: the server maps kind to an HTTP status.
class EngineError : public Error {
 public:
  enum Kind { BadRequest, QueueFull, ShuttingDown, Internal };
  EngineError(Kind k, const std::string& msg) : Error(msg), kind(k) {}
  Kind kind;
};

// Why a request ended in an error (empty message: it did not).
struct EngineFailure {
  EngineError::Kind kind = EngineError::Internal;
  std::string message;
};

struct EngineRequest {
  std::string id;  // empty: the engine assigns one
  std::vector<int32_t> input_ids;
  SamplingParams sampling;
  int n = 1;       // n > 1: n samples sharing the prompt's KV
};

// One increment of a request's output.
struct EngineOutput {
  std::vector<int32_t> token_ids;
  std::string text;
  std::vector<TokenLogprob> logprobs;  // one per token, when asked for
  // With sampling.prompt_logprobs_start: the prompt tokens' logprobs from that
  // position on (position 0 has none), in the request's first output.
  std::vector<TokenLogprob> prompt_logprobs;
  bool finished = false;
  std::string finish_reason;  // "stop" | "length" | "abort" (with finished)
  std::string matched_stop;   // the stop string, or the stop token id as text
  int prompt_tokens = 0, completion_tokens = 0, cached_tokens = 0;
  std::string error;          // set when the request failed
  EngineError::Kind error_kind = EngineError::Internal;  // why, when `error` is set
  double spec_accept_length = 0;  // with speculation: (accepted drafts + 1) per verify step
};

class RequestHandle {
 public:
  explicit RequestHandle(std::string id) : id_(std::move(id)) {}
  const std::string& id() const { return id_; }
  // Waits for the next output; false on timeout. After a finished output
  // there are no more.
  bool next(EngineOutput* out, std::chrono::milliseconds timeout);
  void push(EngineOutput o);

 private:
  std::string id_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<EngineOutput> q_;
};

struct EngineStats {
  int running = 0, waiting = 0;
  int64_t request_tokens = 0;  // prompt + output tokens of the running and waiting requests
  int64_t full_capacity = 0, full_used = 0, swa_capacity = 0, swa_used = 0;
  int64_t cached_full = 0, cached_swa = 0;
  int64_t prompt_tokens = 0, cached_prompt_tokens = 0, generated_tokens = 0;
  int64_t retractions = 0, steps = 0, finished_requests = 0;
  double gen_throughput = 0;  // tokens/s over the last few seconds
  double new_token_ratio = 0;
  int64_t spec_verifies = 0, spec_accepted = 0;  // accept length = (accepted + verifies) / verifies
  SpecDepthController::PerDepth decode_steps_by_depth{};  // decode steps by the draft depth they verified (0: none)
  double model_busy_seconds = 0, model_idle_seconds = 0;  // between forwards, while requests are in flight
  double model_idle_fraction() const {
    double t = model_busy_seconds + model_idle_seconds;
    return t > 0 ? model_idle_seconds / t : 0.0;
  }
  // The counters of this snapshot less an earlier one's (what happened in
  // between; gauges and high-water marks stay this snapshot's), so one engine
  // can be measured over several runs.
  EngineStats since(const EngineStats& earlier) const;
  double avg_spec_accept_length() const {
    return spec_verifies ? double(spec_accepted + spec_verifies) / double(spec_verifies) : 0.0;
  }
  int64_t kv_bytes = 0;
  int context_length = 0;
  int64_t graph_steps = 0;  // forwards (target and draft) replayed as captured graphs (CUDA graphs)
  int graph_captures = 0;
  // KV slots in use, measured from the pools' allocators (bench-prefill's SWA
  // memory check). step_*_max: the most held while a step ran (a prefill
  // chunk holds SWA slots for all its tokens until the step ends).
  // after_step_*: held right after the last step's KV bookkeeping (slid-out
  // SWA slots freed), before any request it finished released its KV.
  int64_t step_full_used_max = 0, step_swa_used_max = 0;
  int64_t after_step_full_used = 0, after_step_swa_used = 0;
};

class Engine {
 public:
  Engine(const EngineConfig& cfg, Model& model, const TextCodec* codec = nullptr);
  ~Engine();

  // Throws EngineError (bad request, queue full, shutting down).
  std::vector<std::shared_ptr<RequestHandle>> submit(EngineRequest r);
  // Ends the request (and its n > 1 siblings) as "abort", with what it has
  // generated; with a reason, its clients get that error instead (the
  // server's shutdown).
  void abort(const std::string& id, EngineFailure why = {});
  EngineStats stats() const;
  // stats() once no request runs or waits (waiting up to a second): a
  // request's last output goes out before the step's counters are recorded.
  EngineStats settled_stats() const;
  // Frees the prefix cache; false (and nothing done) while requests run.
  bool flush_cache();
  // Stops taking requests; with drain, finishes what is in flight first,
  // otherwise aborts it. Returns when the engine thread has ended.
  void shutdown(bool drain);
  const EngineConfig& config() const { return cfg_; }
  int context_length() const { return cfg_.context_length; }

 private:
  struct Pending {
    std::unique_ptr<Req> req;
    std::shared_ptr<RequestHandle> handle;
  };
  void loop();
  void step();
  void admit_inbox();
  // engine_step.cc: one model step and what follows it.
  struct Decision {
    std::vector<int32_t> tokens;  // to append: accepted drafts, then the bonus token
    std::vector<TokenLogprob> logprobs;
  };
  Decision decide(const BatchEntry& e, const float* rows);
  // Requests with nothing that reads or bends the distribution (penalties,
  // logit biases, logprobs, a pending min_new_tokens): greedy ones take the argmax of
  // each row, sampled ones a draw (or a verify of their draft) with their
  // request's uniforms. A step of only such requests runs the backend's
  // sample op and copies ids instead of logits (decide_from_ids).
  bool plain(const BatchEntry& e) const;
  Decision decide_from_ids(const BatchEntry& e, const int32_t* ids) const;
  Tensor sample_ids_, sample_drafts_, sample_params_, sample_u_;  // the sample op's rows (grown as needed)
  Tensor draft_ids_;   // device ids of the last draft pass (the engine thread's own)
  Tensor draft_hidden_;  // device hidden states a draft step reads (grown, never shrunk)
  void commit(Req* r, Decision d, int64_t* generated);
  void draft(const ScheduledBatch& b, int depth);
  void process_outputs();
  std::string advance_text(Req* r);  // returns the matched stop string, if any
  // Ends a request: reason "stop" | "length" | "abort"; a failed one carries
  // an error message and its kind.
  void finish(Req* r, const std::string& reason, const std::string& matched = "",
              const EngineFailure& failure = EngineFailure());
  void fail_request(Req* r, EngineError::Kind kind, const std::string& message) {
    finish(r, "abort", "", EngineFailure{kind, message});
  }
  void emit(Req* r, bool finished, const std::string& reason, const std::string& matched,
            const EngineFailure& failure);
  // The model thread: runs one job at a time, so the engine thread can
  // process outputs meanwhile.
  void model_loop();
  void launch(std::function<void()> job);
  void wait_model();
  void update_stats();
  // engine_log.cc
  void log_batch(const ScheduledBatch& b);
  void log_finish(const Req* r, const std::string& reason, const std::string& error);
  void watchdog();

  EngineConfig cfg_;
  Model& model_;
  int64_t graph_replays_at_start_ = 0;  // the model's graph counters when this engine took it
  int graph_captures_at_start_ = 0;
  const TextCodec* codec_;
  std::vector<int32_t> eos_ids_;
  std::unique_ptr<SlotAllocator> full_alloc_, swa_alloc_;
  std::unique_ptr<RadixCache> cache_;
  std::unique_ptr<KvCache> kv_;
  std::unique_ptr<Scheduler> sched_;
  int window_ = 0;

  // Owned by the engine thread.
  std::unordered_map<Req*, Pending> live_;
  std::unordered_map<Req*, std::unique_ptr<TextStream>> text_;
  std::vector<Req*> unprocessed_;          // outputs of the last step not yet processed
  std::unordered_set<Req*> in_flight_;     // requests in the step the model is running
  std::unique_ptr<TraceRecorder> trace_;
  std::unique_ptr<SpecDepthController> depth_ctl_;
  int depth_ = 0;                 // drafts made for the coming step
  std::chrono::steady_clock::time_point last_forward_end_{};
  std::chrono::steady_clock::time_point cycle_mark_{};  // auto depth: when the last decode step's draft began
  double model_busy_ = 0, model_idle_ = 0;
  int64_t step_full_max_ = 0, step_swa_max_ = 0, after_full_ = 0, after_swa_ = 0;  // see EngineStats

  std::mutex model_mu_;
  std::condition_variable model_cv_;
  std::function<void()> model_job_;
  bool model_stop_ = false;
  std::atomic<bool> model_busy_flag_{false};  // set under model_mu_; read without it while spinning
  std::atomic<bool> model_job_ready_{false};
  std::thread model_thread_;
  uint64_t next_seq_ = 0;
  std::mt19937_64 seed_rng_;

  // Shared with other threads.
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Pending> inbox_;
  std::vector<std::pair<std::string, EngineFailure>> aborts_;
  std::vector<std::function<void()>> tasks_;  // run on the engine thread between steps
  bool stopping_ = false, drain_ = false;
  EngineStats stats_;
  std::deque<std::pair<std::chrono::steady_clock::time_point, int64_t>> tput_;
  std::atomic<uint64_t> id_counter_{0};
  std::thread thread_;

  // Logging (engine thread) and the watchdog's view of the model thread.
  int decode_log_steps_ = 0;
  std::chrono::steady_clock::time_point last_decode_log_{};
  EngineStats decode_log_stats_;
  std::atomic<int64_t> step_began_ns_{0};  // steady-clock ns when the running model job began; 0: none
  std::mutex watchdog_mu_;
  std::condition_variable watchdog_cv_;
  bool watchdog_stop_ = false;
  std::thread watchdog_thread_;
};

}  // namespace mimo
