#include "engine/engine.h"

#include <algorithm>
#include <fstream>
#include <future>

#include "core/log.h"

namespace mimo {

bool RequestHandle::next(EngineOutput* out, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lk(mu_);
  if (!cv_.wait_for(lk, timeout, [&] { return !q_.empty(); })) return false;
  *out = std::move(q_.front());
  q_.pop_front();
  return true;
}

void RequestHandle::push(EngineOutput o) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    q_.push_back(std::move(o));
  }
  cv_.notify_all();
}

namespace {

int64_t mem_available_bytes(const char* key) {
  std::ifstream in("/proc/meminfo");
  std::string k;
  int64_t v;
  std::string unit;
  while (in >> k >> v >> unit)
    if (k == key) return v * 1024;
  return int64_t(8) << 30;
}

int64_t weight_bytes(const ModelWeights& w) {
  int64_t n = int64_t(w.embed.nbytes() + w.lm_head.nbytes());
  for (auto& l : w.layers)
    n += int64_t(l.attn.q.nbytes() + l.attn.k.nbytes() + l.attn.v.nbytes() + l.attn.o.nbytes() +
                 l.mlp.gate_up.nbytes() + l.mlp.down.nbytes() + l.moe.gate_up.nbytes() + l.moe.down.nbytes());
  return n;
}

}  // namespace

Engine::Engine(const EngineConfig& cfg, Model& model, const TextCodec* codec)
    : cfg_(cfg), model_(model), codec_(codec), seed_rng_(cfg.seed) {
  const ModelSpec& spec = model.spec();
  if (cfg_.context_length <= 0) cfg_.context_length = spec.max_position_embeddings;
  if (cfg_.page_size < 1) fail("--page-size must be >= 1");
  if (cfg_.max_running_requests < 1) fail("--max-running-requests must be >= 1");
  if (cfg_.schedule_policy != "fcfs" && cfg_.schedule_policy != "lpm")
    fail("--schedule-policy must be fcfs or lpm, got '{}'", cfg_.schedule_policy);
  if (!(cfg_.swa_full_tokens_ratio > 0 && cfg_.swa_full_tokens_ratio <= 1))
    fail("--swa-full-tokens-ratio must be in (0, 1]");
  if (cfg_.stream_interval < 1) fail("--stream-interval must be at least 1, got {}", cfg_.stream_interval);
  if (cfg_.watchdog_timeout_s < 0) fail("--watchdog-timeout must be 0 (off) or more, got {}", cfg_.watchdog_timeout_s);
  if (cfg_.speculative_num_steps < 0 || cfg_.speculative_num_steps > SpecDepthController::kMaxDepth)
    fail("--speculative-num-steps must be between 0 and 3, got {}", cfg_.speculative_num_steps);
  if (cfg_.speculative_num_steps > model.num_mtp_layers())
    fail("--speculative-num-steps {} needs {} MTP layers; the checkpoint has {}", cfg_.speculative_num_steps,
         cfg_.speculative_num_steps, model.num_mtp_layers());
  eos_ids_ = spec.eos_token_ids;
  if (codec_)
    for (int32_t t : codec_->eos_ids())
      if (std::find(eos_ids_.begin(), eos_ids_.end(), t) == eos_ids_.end()) eos_ids_.push_back(t);

  bool has_swa = spec.count(AttnKind::Sliding) > 0;
  for (auto& l : spec.layers)
    if (l.attn.kind == AttnKind::Sliding) window_ = l.attn.window;
  // Size the pools: every full-pool token also costs `ratio` SWA tokens.
  KvCache probe(spec, model.backend(), cfg_.kv_dtype, {0, 0});
  KvCache mtp_probe(spec, model.backend(), cfg_.kv_dtype, {0, 0}, cfg_.speculative_num_steps);
  double mtp_bytes = 0;
  for (int k = 0; k < cfg_.speculative_num_steps; k++) mtp_bytes += double(mtp_probe.bytes_per_token(kPoolMtp0 + k));
  // Bytes of a full-pool token (its full-attention and MTP layers), of a
  // SWA-pool token, and of both at the pools' ratio.
  const double full_cell = double(probe.bytes_per_token(kPoolFull)) + mtp_bytes;
  const double swa_cell = double(probe.bytes_per_token(kPoolSwa));
  double cell = full_cell + cfg_.swa_full_tokens_ratio * swa_cell;
  int64_t full_tokens = cfg_.max_total_tokens;
  if (full_tokens <= 0) {
    double budget = cfg_.mem_fraction_static > 0
                        ? cfg_.mem_fraction_static * double(mem_available_bytes("MemTotal:")) -
                              double(weight_bytes(model.weights()))
                        : 0.25 * double(mem_available_bytes("MemAvailable:"));
    if (budget <= 0) fail("--mem-fraction-static {} leaves no memory for the KV cache", cfg_.mem_fraction_static);
    full_tokens = int64_t(budget / std::max(1.0, cell));
    full_tokens = std::min<int64_t>(full_tokens, int64_t(cfg_.context_length) * cfg_.max_running_requests);
  }
  int64_t chunk = cfg_.chunked_prefill_size > 0 ? cfg_.chunked_prefill_size : cfg_.max_prefill_tokens;
  int64_t swa_tokens = int64_t(cfg_.swa_full_tokens_ratio * double(full_tokens));
  // One step of the largest chunk must fit in the SWA pool, whatever the ratio.
  swa_tokens = std::max<int64_t>(swa_tokens, std::min<int64_t>(full_tokens, chunk + window_ + 2 * cfg_.page_size));
  if (full_tokens < 2 * cfg_.page_size) fail("the KV cache would hold only {} tokens", full_tokens);
  // Host pools are faulted in at start (Backend::alloc_streamed): one larger
  // than the memory free now would end in the OOM killer, so say so instead.
  const double kv_bytes = double(full_tokens) * full_cell + double(has_swa ? swa_tokens : 0) * swa_cell;
  if (const double avail = double(mem_available_bytes("MemAvailable:"));
      model.backend().device() == Device::CPU && kv_bytes > avail)
    fail("the KV cache ({} full-attention tokens, {:.1f} MB) does not fit in the {:.1f} MB of memory available; "
         "lower --max-total-tokens or --mem-fraction-static", full_tokens, kv_bytes / 1e6, avail / 1e6);
  full_alloc_ = std::make_unique<SlotAllocator>(full_tokens, cfg_.page_size);
  if (has_swa) swa_alloc_ = std::make_unique<SlotAllocator>(swa_tokens, cfg_.page_size);
  cache_ = std::make_unique<RadixCache>(*full_alloc_, swa_alloc_.get(), window_, cfg_.page_size,
                                        cfg_.disable_radix_cache);
  const auto kv_start = std::chrono::steady_clock::now();
  kv_ = std::make_unique<KvCache>(spec, model.backend(), cfg_.kv_dtype,
                                  std::vector<int64_t>{full_alloc_->capacity(), has_swa ? swa_alloc_->capacity() : 0},
                                  cfg_.speculative_num_steps);
  if (cfg_.cuda_graph_max_bs < 0) fail("--cuda-graph-max-bs must be >= 0, got {}", cfg_.cuda_graph_max_bs);
  const int graph_bs = cfg_.cuda_graph_max_bs > 0 ? cfg_.cuda_graph_max_bs : cfg_.max_running_requests;
  model.enable_graphs(cfg_.disable_cuda_graph ? 0 : graph_bs);
  if (model.backend().can_capture() && cfg_.disable_cuda_graph)
    spdlog::info("step graphs off (--disable-cuda-graph)");
  else if (model.backend().can_capture())
    spdlog::info("step graphs on: decode, verify and draft steps of up to {} requests", graph_bs);
  graph_replays_at_start_ = model.graph_replays();
  graph_captures_at_start_ = model.graph_captures();
  SchedulerConfig sc;
  sc.max_running_requests = cfg_.max_running_requests;
  sc.chunked_prefill_size = cfg_.chunked_prefill_size;
  sc.max_prefill_tokens = cfg_.max_prefill_tokens;
  sc.page_size = cfg_.page_size;
  sc.disable_radix_cache = cfg_.disable_radix_cache;
  sc.policy = cfg_.schedule_policy;
  sc.window = window_;
  sc.spec_steps = cfg_.speculative_num_steps;
  sched_ = std::make_unique<Scheduler>(sc, *full_alloc_, swa_alloc_.get(), *cache_);
  spdlog::info("KV cache: {} full-attention tokens, {} sliding-window tokens, {:.1f} MB (in memory after {:.2f} s)",
               full_alloc_->capacity(), has_swa ? swa_alloc_->capacity() : 0, double(kv_->total_bytes()) / 1e6,
               std::chrono::duration<double>(std::chrono::steady_clock::now() - kv_start).count());
  depth_ = cfg_.speculative_num_steps;
  if (cfg_.speculative_auto) {
    if (cfg_.speculative_num_steps <= 0) fail("--speculative-num-steps auto needs MTP layers in the checkpoint");
    depth_ctl_ = std::make_unique<SpecDepthController>(cfg_.speculative_num_steps);
  }
  if (!cfg_.profile_trace.empty()) trace_ = std::make_unique<TraceRecorder>(cfg_.profile_trace);
  update_stats();
  model_thread_ = std::thread([this] { model_loop(); });
  thread_ = std::thread([this] { loop(); });
  if (cfg_.watchdog_timeout_s > 0) watchdog_thread_ = std::thread([this] { watchdog(); });
}

Engine::~Engine() { shutdown(false); }

std::vector<std::shared_ptr<RequestHandle>> Engine::submit(EngineRequest r) {
  const ModelSpec& spec = model_.spec();
  if (r.input_ids.empty()) throw EngineError(EngineError::BadRequest, "the prompt is empty");
  for (int32_t t : r.input_ids)
    if (t < 0 || t >= spec.vocab_size)
      throw EngineError(EngineError::BadRequest,
                        fmt::format("input id {} is outside the vocabulary [0, {})", t, spec.vocab_size));
  if (int64_t(r.input_ids.size()) >= cfg_.context_length) {
    if (!cfg_.allow_auto_truncate)
      throw EngineError(EngineError::BadRequest,
                        fmt::format("the prompt has {} tokens; this model's context length is {}", r.input_ids.size(),
                                    cfg_.context_length));
    // SGLang's --allow-auto-truncate: the prompt's start is kept, with room
    // for one generated token.
    spdlog::warn("a prompt of {} tokens is longer than the context length ({}): truncated to its first {}",
                 r.input_ids.size(), cfg_.context_length, cfg_.context_length - 1);
    r.input_ids.resize(size_t(cfg_.context_length - 1));
  }
  try {
    validate(r.sampling);
  } catch (const Error& e) {
    throw EngineError(EngineError::BadRequest, e.what());
  }
  for (auto [t, b] : r.sampling.logit_bias)
    if (t >= spec.vocab_size)
      throw EngineError(EngineError::BadRequest,
                        fmt::format("logit_bias: token id {} is outside the vocabulary [0, {})", t, spec.vocab_size));
  if (r.n < 1 || r.n > 128) throw EngineError(EngineError::BadRequest, "n must be between 1 and 128");
  if (!r.sampling.stop.empty() && !codec_)
    throw EngineError(EngineError::BadRequest, "stop strings need a tokenizer, and this model has none");
  // Never generate past the context.
  r.sampling.max_new_tokens =
      int(std::min<int64_t>(r.sampling.max_new_tokens, cfg_.context_length - int64_t(r.input_ids.size())));
  if (r.id.empty()) r.id = fmt::format("req-{}", id_counter_.fetch_add(1));
  std::vector<std::shared_ptr<RequestHandle>> handles;
  std::lock_guard<std::mutex> lk(mu_);
  if (stopping_) throw EngineError(EngineError::ShuttingDown, "the server is shutting down");
  if (int64_t(inbox_.size() + stats_.waiting) + r.n > cfg_.max_queued_requests)
    throw EngineError(EngineError::QueueFull, "the request queue is full; try again later");
  Req* first = nullptr;
  for (int i = 0; i < r.n; i++) {
    auto req = std::make_unique<Req>();
    req->id = r.n == 1 ? r.id : fmt::format("{}-{}", r.id, i);
    req->tokens = r.input_ids;
    req->prompt_len = int(r.input_ids.size());
    req->params = r.sampling;
    // Siblings draw different samples unless the user fixed a seed for each.
    if (r.sampling.seed && i > 0) req->params.seed = *r.sampling.seed + uint64_t(i);
    req->arrival = std::chrono::steady_clock::now();
    if (i > 0) req->wait_for = first;
    if (i == 0) first = req.get();
    auto h = std::make_shared<RequestHandle>(req->id);
    handles.push_back(h);
    inbox_.push_back({std::move(req), h});
  }
  cv_.notify_all();
  return handles;
}

void Engine::abort(const std::string& id, EngineFailure why) {
  std::lock_guard<std::mutex> lk(mu_);
  aborts_.emplace_back(id, std::move(why));
  cv_.notify_all();
}

EngineStats Engine::stats() const {
  std::lock_guard<std::mutex> lk(mu_);
  EngineStats s = stats_;
  s.graph_steps = model_.graph_replays() - graph_replays_at_start_;
  s.graph_captures = model_.graph_captures() - graph_captures_at_start_;
  return s;
}

EngineStats Engine::settled_stats() const {
  EngineStats s = stats();
  for (int i = 0; i < 200 && (s.running > 0 || s.waiting > 0); i++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    s = stats();
  }
  return s;
}

EngineStats EngineStats::since(const EngineStats& e) const {
  EngineStats d = *this;
  d.prompt_tokens -= e.prompt_tokens;
  d.cached_prompt_tokens -= e.cached_prompt_tokens;
  d.generated_tokens -= e.generated_tokens;
  d.retractions -= e.retractions;
  d.steps -= e.steps;
  d.finished_requests -= e.finished_requests;
  d.spec_verifies -= e.spec_verifies;
  d.spec_accepted -= e.spec_accepted;
  for (size_t k = 0; k < d.decode_steps_by_depth.size(); k++) d.decode_steps_by_depth[k] -= e.decode_steps_by_depth[k];
  d.model_busy_seconds -= e.model_busy_seconds;
  d.model_idle_seconds -= e.model_idle_seconds;
  d.graph_steps -= e.graph_steps;
  return d;
}

bool Engine::flush_cache() {
  auto done = std::make_shared<std::promise<bool>>();
  auto fut = done->get_future();
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (stopping_) return false;
    tasks_.push_back([this, done] {
      bool ok = sched_->idle() && cache_->reset();
      update_stats();  // so a caller reading stats() right after sees the flush
      done->set_value(ok);
    });
    cv_.notify_all();
  }
  return fut.get();
}

void Engine::shutdown(bool drain) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (!thread_.joinable()) return;
    stopping_ = true;
    drain_ = drain;
    cv_.notify_all();
  }
  thread_.join();
  {
    std::lock_guard<std::mutex> lk(model_mu_);
    model_stop_ = true;
  }
  model_cv_.notify_all();
  model_thread_.join();
  if (watchdog_thread_.joinable()) {
    {
      std::lock_guard<std::mutex> lk(watchdog_mu_);
      watchdog_stop_ = true;
    }
    watchdog_cv_.notify_all();
    watchdog_thread_.join();
  }
  if (depth_ctl_) spdlog::debug("auto speculative depth: {}", depth_ctl_->summary());
  if (trace_) trace_->write();
}

void Engine::loop() {
  for (;;) {
    std::vector<std::function<void()>> tasks;
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, [&] { return stopping_ || !inbox_.empty() || !aborts_.empty() || !tasks_.empty() || !live_.empty(); });
      tasks.swap(tasks_);
    }
    admit_inbox();
    for (auto& t : tasks) t();
    bool stop;
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop = stopping_;
    }
    if (stop && (!drain_ || live_.empty())) {
      std::vector<Req*> all;
      for (auto& [r, _] : live_) all.push_back(r);
      process_outputs();
      for (Req* r : all) fail_request(r, EngineError::ShuttingDown, "the server is shutting down");
      update_stats();
      return;
    }
    if (!live_.empty()) step();
    if (live_.empty()) {
      process_outputs();  // nothing left to overlap with
      // Waiting for requests is not the model idling between steps.
      last_forward_end_ = {};
    }
    update_stats();
  }
}

void Engine::admit_inbox() {
  std::vector<Pending> in;
  std::vector<std::pair<std::string, EngineFailure>> ab;
  {
    std::lock_guard<std::mutex> lk(mu_);
    in.swap(inbox_);
    ab.swap(aborts_);
  }
  for (auto& p : in) {
    Req* r = p.req.get();
    r->seq = next_seq_++;
    r->sampler = std::make_unique<Sampler>(r->params, seed_rng_());
    if (codec_) text_[r] = codec_->stream(r->params.skip_special_tokens);
    sched_->add(r);
    live_.emplace(r, std::move(p));
  }
  for (auto& [id, why] : ab) {
    // An abort names a request (or, for n > 1, the prefix of its siblings' ids).
    std::vector<Req*> hit;
    for (auto& [r, _] : live_)
      if (r->id == id || (r->id.size() > id.size() && r->id.compare(0, id.size(), id) == 0 && r->id[id.size()] == '-'))
        hit.push_back(r);
    for (Req* r : hit) finish(r, "abort", "", why);
  }
}

void Engine::update_stats() {
  std::lock_guard<std::mutex> lk(mu_);
  stats_.running = int(sched_->running().size());
  stats_.waiting = int(sched_->waiting().size());
  stats_.request_tokens = 0;
  for (const Req* r : sched_->running()) stats_.request_tokens += int64_t(r->tokens.size());
  for (const Req* r : sched_->waiting()) stats_.request_tokens += int64_t(r->tokens.size());
  stats_.full_capacity = full_alloc_->capacity();
  stats_.full_used = full_alloc_->capacity() - full_alloc_->free_slots();
  stats_.swa_capacity = swa_alloc_ ? swa_alloc_->capacity() : 0;
  stats_.swa_used = swa_alloc_ ? swa_alloc_->capacity() - swa_alloc_->free_slots() : 0;
  stats_.cached_full = cache_->cached_full();
  stats_.cached_swa = cache_->cached_swa();
  stats_.prompt_tokens = sched_->counters().prompt_tokens;
  stats_.cached_prompt_tokens = sched_->counters().cached_prompt_tokens;
  stats_.retractions = sched_->counters().retractions;
  stats_.new_token_ratio = sched_->new_token_ratio();
  stats_.kv_bytes = kv_->total_bytes();
  stats_.context_length = cfg_.context_length;
  stats_.step_full_used_max = step_full_max_;
  stats_.step_swa_used_max = step_swa_max_;
  stats_.after_step_full_used = after_full_;
  stats_.after_step_swa_used = after_swa_;
  stats_.model_busy_seconds = model_busy_;
  stats_.model_idle_seconds = model_idle_;
  int64_t toks = 0;
  for (auto& [_, n] : tput_) toks += n;
  double span = tput_.size() > 1 ? std::chrono::duration<double>(tput_.back().first - tput_.front().first).count() : 0;
  stats_.gen_throughput = span > 0 ? double(toks) / span : 0;
}

}  // namespace mimo
