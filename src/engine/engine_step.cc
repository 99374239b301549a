// One engine step: run the scheduled batch, decide each request's new
// tokens (sampling, or verifying MTP drafts), commit them with the stop
// rules, and draft the next tokens with the MTP layers.
//
// Speculative decoding (MiMo's MTP layers are not chained: each reads the
// target's hidden state). A request at length m+1 (token m is the bonus,
// its KV not yet computed) with drafts d1..dk runs [bonus, d1..dk] at
// positions m..m+k as one causal extend; the drafts are accepted while the
// target agrees (exact speculative sampling when sampling), then the
// target's own token follows. MTP layer k then computes position p from
// (H_p, token_{p+k+1}) for every p it has not computed from known tokens
// yet; its logits at p = m' - 1 give the next draft d_{k+1}.
#include <algorithm>
#include <cstring>

#include "core/log.h"
#include "engine/engine.h"

namespace mimo {

namespace {

std::string stop_reason(const Req* r, const std::vector<int32_t>& eos, int32_t tok) {
  const auto& sp = r->params;
  if (!sp.ignore_eos && std::find(eos.begin(), eos.end(), tok) != eos.end()) return "stop";
  if (std::find(sp.stop_token_ids.begin(), sp.stop_token_ids.end(), tok) != sp.stop_token_ids.end()) return "stop";
  return "";
}

}  // namespace

void Engine::model_loop() {
  for (;;) {
    std::function<void()> job;
    // Stay hot for a moment: the next step usually follows within microseconds.
    for (int spin = 0; spin < 20000 && !model_job_ready_.load(std::memory_order_acquire); spin++)
      std::this_thread::yield();
    {
      std::unique_lock<std::mutex> lk(model_mu_);
      model_cv_.wait(lk, [&] { return model_stop_ || model_job_; });
      if (model_stop_ && !model_job_) return;
      job = std::move(model_job_);
      model_job_ = nullptr;
      model_job_ready_.store(false, std::memory_order_release);
    }
    step_began_ns_.store(std::chrono::steady_clock::now().time_since_epoch().count(), std::memory_order_release);
    job();
    step_began_ns_.store(0, std::memory_order_release);
    {
      std::lock_guard<std::mutex> lk(model_mu_);
      model_busy_flag_.store(false, std::memory_order_release);
    }
    model_cv_.notify_all();
  }
}

void Engine::launch(std::function<void()> job) {
  {
    std::lock_guard<std::mutex> lk(model_mu_);
    model_job_ = std::move(job);
    model_busy_flag_.store(true, std::memory_order_relaxed);
    model_job_ready_.store(true, std::memory_order_release);
  }
  model_cv_.notify_all();
}

void Engine::wait_model() {
  // A small model's decode step takes ~0.3 ms here: waking from a sleep
  // would cost ~0.1 ms of it (measured in the trace: the gap between a
  // verify's end and the sampling after it). Yield-spin that long first; a
  // longer forward has a core's worth of workers that the spin would only
  // slow down (on 2 cores, 300 us vs 2 ms vs none: within this machine's
  // noise at batch 1 on the default model).
  auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(300);
  for (int i = 0; model_busy_flag_.load(std::memory_order_acquire); i++) {
    std::this_thread::yield();
    if (i % 64 == 63 && std::chrono::steady_clock::now() > until) break;
  }
  std::unique_lock<std::mutex> lk(model_mu_);
  model_cv_.wait(lk, [&] { return !model_busy_flag_.load(std::memory_order_acquire); });
}

void Engine::step() {
  ScheduledBatch b;
  StepBatch s;
  {
    TraceSpan sp(trace_.get(), "schedule", kTraceEngineThread);
    b = sched_->schedule();
    if (!b.empty()) sched_->build_step(b, s);
  }
  if (!b.empty()) {
    log_batch(b);
    step_full_max_ = std::max(step_full_max_, full_alloc_->capacity() - full_alloc_->free_slots());
    if (swa_alloc_) step_swa_max_ = std::max(step_swa_max_, swa_alloc_->capacity() - swa_alloc_->free_slots());
  }
  if (b.empty()) {
    process_outputs();
    // Nothing can run: a request larger than the whole KV cache. Fail it
    // rather than wait forever.
    Req* stuck = !sched_->running().empty() ? sched_->running().front()
                 : !sched_->waiting().empty() ? sched_->waiting().front() : nullptr;
    if (stuck) fail_request(stuck, EngineError::BadRequest, "the request does not fit in the KV cache (raise --max-total-tokens)");
    return;
  }
  Backend& be = model_.backend();
  std::vector<float> logits, hidden;
  std::vector<int32_t> ids;
  const bool spec = cfg_.speculative_num_steps > 0;
  bool any_verify = false, on_device = true;
  for (auto& e : b.entries) {
    any_verify |= e.verify();
    if (e.samples) on_device &= plain(e);
    const auto [plo, phi] = e.req->prompt_logit_rows(e.begin, e.len);
    on_device &= plo == phi;  // prompt logprobs read the logits on the host
  }
  // The backend's sample op decides such a step: each row's parameters,
  // draft and its request's uniforms go over (drawn in the order decide()
  // draws them), only ids come back.
  std::vector<float> row_params, row_u;
  std::vector<int32_t> row_drafts;
  if (on_device)
    for (auto& e : b.entries) {
      if (!e.samples) continue;
      const SampleParams sp = e.req->sampler->row_params();
      const bool greedy = sp.greedy();
      for (int64_t i = 0, n = e.verify() ? e.len : 1; i < n; i++) {
        row_params.insert(row_params.end(), {greedy ? 0.0f : sp.temperature, sp.top_p, float(sp.top_k), sp.min_p});
        row_drafts.push_back(size_t(i) < e.drafts.size() ? e.drafts[size_t(i)] : -1);
        const float ua = greedy || !e.verify() ? 0.0f : e.req->sampler->uniform();
        row_u.insert(row_u.end(), {ua, greedy ? 0.0f : e.req->sampler->uniform()});
      }
    }
  std::string error;
  in_flight_.clear();
  for (auto& e : b.entries) in_flight_.insert(e.req);
  launch([&] {
    auto t0 = std::chrono::steady_clock::now();
    if (last_forward_end_.time_since_epoch().count() != 0)
      model_idle_ += std::chrono::duration<double>(t0 - last_forward_end_).count();
    {
      TraceSpan sp(trace_.get(), b.prefill ? "target forward (prefill)" : any_verify ? "verify" : "target forward (decode)",
                   kTraceModelThread);
      sp.args(fmt::format("{{\"tokens\":{},\"seqs\":{}}}", s.num_tokens(), s.num_seqs()));
      try {
        const Tensor& lg = model_.forward(s, *kv_);
        if (on_device) {
          // Only ids cross to the host (a GPU's logits rows are vocab x 4 bytes each).
          const int64_t R = lg.dim(0);
          MIMO_ASSERT(int64_t(row_drafts.size()) == R);
          if (!sample_ids_.defined() || sample_ids_.numel() < R) {
            const int64_t n = std::max<int64_t>(R, 64);
            sample_ids_ = be.alloc({n}, DType::I32);
            sample_drafts_ = be.alloc({n}, DType::I32);
            sample_params_ = be.alloc({n, 4}, DType::F32);
            sample_u_ = be.alloc({n, 2}, DType::F32);
          }
          Tensor out = sample_ids_.slice_rows(0, R), drafts = sample_drafts_.slice_rows(0, R),
                 prm = sample_params_.slice_rows(0, R), u = sample_u_.slice_rows(0, R);
          be.copy_from_host(prm, row_params.data());
          be.copy_from_host(drafts, row_drafts.data());
          be.copy_from_host(u, row_u.data());
          be.sample(lg, prm, drafts, u, out);
          ids.resize(size_t(R));
          be.copy_to_host(ids.data(), out);
        } else {
          logits.resize(size_t(lg.numel()));
          be.copy_to_host(logits.data(), lg);
        }
        if (spec) {
          hidden.resize(size_t(model_.hidden().numel()));
          be.copy_to_host(hidden.data(), model_.hidden());
        }
      } catch (const std::exception& e) {
        error = e.what();
      }
    }
    last_forward_end_ = std::chrono::steady_clock::now();
    model_busy_ += std::chrono::duration<double>(last_forward_end_ - t0).count();
  });
  // Overlap: the previous step's outputs are processed while the model runs
  // (once it has picked the step up, so the two really run side by side).
  if (!cfg_.disable_overlap_schedule) {
    while (model_job_ready_.load(std::memory_order_acquire)) std::this_thread::yield();
    process_outputs();
  }
  wait_model();
  in_flight_.clear();
  if (!error.empty()) {
    spdlog::error("model step failed: {}", error);
    for (auto& en : b.entries) fail_request(en.req, EngineError::Internal, "internal error: " + error);
    return;
  }
  // Decide every request's tokens first: a verify's result says how much of
  // its KV is valid, which the scheduler needs before anything finishes.
  const int64_t V = model_.spec().vocab_size;
  std::vector<Decision> decisions(b.entries.size());
  int64_t row = 0, verifies = 0, accepted = 0;
  {
    TraceSpan sp(trace_.get(), "sampling", kTraceEngineThread);
    for (size_t i = 0; i < b.entries.size(); i++) {
      BatchEntry& e = b.entries[i];
      if (const auto [plo, phi] = e.req->prompt_logit_rows(e.begin, e.len); plo < phi) {
        // Row p's logits give the logprob of prompt token p + 1.
        // A request prefilled again (retracted) has them already.
        Req* r = e.req;
        const int64_t first = std::max(r->params.prompt_logprobs_start - 1, 0);
        for (int64_t p = plo; p < phi; p++, row++) {
          if (r->prompt_lps_sent || p - first != int64_t(r->prompt_lps.size())) continue;
          TokenLogprob lp;
          logprobs_of(logits.data() + row * V, V, r->tokens[size_t(p + 1)], std::max(0, r->params.logprobs), &lp);
          r->prompt_lps.push_back(std::move(lp));
        }
      }
      if (!e.samples) continue;
      int64_t rows = e.verify() ? e.len : 1;
      const float* lrow = on_device ? nullptr : logits.data() + row * V;
      const int32_t* irow = on_device ? ids.data() + row : nullptr;
      row += rows;
      if (e.req->aborted || e.req->stop_pending) {
        e.committed = 0;  // finishing: nothing of this step is kept
        continue;
      }
      decisions[i] = on_device ? decide_from_ids(e, irow) : decide(e, lrow);
      if (e.verify()) {
        int64_t acc = int64_t(decisions[i].tokens.size()) - 1;
        e.committed = 1 + acc;  // the bonus that was run, plus the accepted drafts
        e.req->spec_verifies++;
        e.req->spec_accepted += acc;
        verifies++;
        accepted += acc;
        if (depth_ctl_) depth_ctl_->record_verify(int(e.drafts.size()), int(acc));
      }
    }
    sched_->after_step(b);
    after_full_ = full_alloc_->capacity() - full_alloc_->free_slots();
    after_swa_ = swa_alloc_ ? swa_alloc_->capacity() - swa_alloc_->free_slots() : 0;
  }
  if (spec) {
    // Keep the target's hidden states of the positions whose KV is now valid.
    const int64_t H = model_.spec().hidden_size;
    int64_t at = 0;
    for (auto& e : b.entries) {
      Req* r = e.req;
      int64_t valid = e.committed >= 0 ? e.committed : e.len;
      if (r->hist.empty()) r->hist_begin = e.begin;
      if (r->hist_begin + int64_t(r->hist.size()) / H == e.begin)
        r->hist.insert(r->hist.end(), hidden.begin() + at * H, hidden.begin() + (at + valid) * H);
      at += e.len;
    }
  }
  int64_t generated = 0;
  for (size_t i = 0; i < b.entries.size(); i++) {
    Req* r = b.entries[i].req;
    if (live_.find(r) == live_.end()) continue;
    if (r->stop_pending) {
      finish(r, "stop", r->stop_matched);
      continue;
    }
    if (b.entries[i].samples && r->params.max_new_tokens == 0) {
      finish(r, "length");  // only the prompt was asked for (its logprobs)
      continue;
    }
    if (b.entries[i].samples && !r->aborted) commit(r, std::move(decisions[i]), &generated);
  }
  const int depth_verified = depth_;  // the depth of the drafts this step verified
  if (depth_ctl_) {
    // A depth's cost is the whole cycle from one draft to the next (draft,
    // schedule, verify, sampling, outputs): the per-step work around the
    // forward is paid once per step whatever the depth, so it favours
    // deeper drafts, and leaving it out made depth 1 look ~10% worse than it
    // ran at batch 1. Cycles that contain a prefill are not decode costs.
    auto now = std::chrono::steady_clock::now();
    if (!b.prefill && cycle_mark_.time_since_epoch().count() != 0)
      depth_ctl_->observe(verifies ? depth_verified : 0, int(b.entries.size()),
                          std::chrono::duration<double>(now - cycle_mark_).count());
    cycle_mark_ = b.prefill ? std::chrono::steady_clock::time_point{} : now;
    int decoding = 0;
    for (Req* r : sched_->running()) decoding += int64_t(r->tokens.size()) == r->computed + 1;
    depth_ = depth_ctl_->choose(std::max(1, decoding));
  }
  if (spec) {
    // Drafting is model work, but nothing overlaps it (its drafts are the
    // next step's input), so it runs right here: handing it to the model
    // thread and back cost ~0.1 ms of wake-ups per step (trace of a batch-1
    // run), about as much as the draft itself.
    auto t0 = std::chrono::steady_clock::now();
    model_idle_ += std::chrono::duration<double>(t0 - last_forward_end_).count();
    {
      TraceSpan sp(trace_.get(), "draft (MTP)", kTraceEngineThread);
      draft(b, depth_);
    }
    last_forward_end_ = std::chrono::steady_clock::now();
    model_busy_ += std::chrono::duration<double>(last_forward_end_ - t0).count();
  }
  if (cfg_.disable_overlap_schedule) process_outputs();
  std::lock_guard<std::mutex> lk(mu_);
  stats_.steps++;
  stats_.generated_tokens += generated;
  stats_.spec_verifies += verifies;
  stats_.spec_accepted += accepted;
  if (!b.prefill) stats_.decode_steps_by_depth[size_t(verifies ? depth_verified : 0)]++;
  auto now = std::chrono::steady_clock::now();
  tput_.push_back({now, generated});
  while (!tput_.empty() && now - tput_.front().first > std::chrono::seconds(5)) tput_.pop_front();
}

bool Engine::plain(const BatchEntry& e) const {
  const SamplingParams& p = e.req->params;
  return p.repetition_penalty == 1.0f && p.frequency_penalty == 0.0f && p.presence_penalty == 0.0f && p.logprobs < 0 &&
         p.logit_bias.empty() && e.req->output_len() >= p.min_new_tokens;
}

Engine::Decision Engine::decide_from_ids(const BatchEntry& e, const int32_t* ids) const {
  // What decide() gives for these requests: a row's id is what sample() or
  // verify() gives with the same uniforms (greedy: the argmax, no draws),
  // so a draft was accepted exactly when its row's id is the draft.
  Decision d;
  for (size_t i = 0; i <= e.drafts.size(); i++) {
    d.tokens.push_back(ids[i]);
    if (i == e.drafts.size() || e.drafts[i] != ids[i]) break;
  }
  return d;
}

Engine::Decision Engine::decide(const BatchEntry& e, const float* rows) {
  Req* r = e.req;
  const int64_t V = model_.spec().vocab_size;
  const auto& sp = r->params;
  std::vector<int32_t> prompt(r->tokens.begin(), r->tokens.begin() + r->prompt_len);
  std::vector<int32_t> output(r->tokens.begin() + r->prompt_len, r->tokens.end());
  auto forbid = [&](int64_t out_len) {
    std::vector<int32_t> f;
    if (out_len < sp.min_new_tokens) {
      f = eos_ids_;
      f.insert(f.end(), sp.stop_token_ids.begin(), sp.stop_token_ids.end());
    }
    return f;
  };
  Decision d;
  std::vector<float> l(static_cast<size_t>(V));
  if (!e.verify()) {
    std::memcpy(l.data(), rows, size_t(V) * 4);
    TokenLogprob lp;
    d.tokens.push_back(r->sampler->sample(l.data(), V, prompt, output, forbid(int64_t(output.size())),
                                          sp.logprobs >= 0 ? &lp : nullptr));
    if (sp.logprobs >= 0) d.logprobs.push_back(lp);
    return d;
  }
  // Two uniforms per row of the verify (to accept its draft, to draw),
  // all drawn up front, whatever is accepted: the order the sample op's
  // rows take them in, so both decide a request alike.
  const bool greedy = r->sampler->greedy();
  std::vector<float> u(size_t(2 * e.len), 0.0f);
  if (!greedy)
    for (auto& x : u) x = r->sampler->uniform();
  for (size_t i = 0; i <= e.drafts.size(); i++) {
    std::memcpy(l.data(), rows + int64_t(i) * V, size_t(V) * 4);
    const int32_t x = i < e.drafts.size() ? e.drafts[i] : -1;
    const int32_t tok = r->sampler->verify(l.data(), V, prompt, output, forbid(int64_t(output.size())), x, u[2 * i],
                                           u[2 * i + 1]);
    const bool done = x < 0 || tok != x;
    d.tokens.push_back(tok);
    if (sp.logprobs >= 0) {
      TokenLogprob lp;
      logprobs_of(l.data(), V, tok, sp.logprobs, &lp);
      d.logprobs.push_back(lp);
    }
    output.push_back(tok);
    if (done) break;
  }
  return d;
}

void Engine::commit(Req* r, Decision d, int64_t* generated) {
  const auto& sp = r->params;
  for (size_t i = 0; i < d.tokens.size(); i++) {
    int32_t tok = d.tokens[i];
    r->tokens.push_back(tok);
    if (i < d.logprobs.size()) r->lps_pending.push_back(d.logprobs[i]);
    (*generated)++;
    // Token-level stops end the request at once (stop strings are matched
    // on text, in process_outputs).
    std::string reason = stop_reason(r, eos_ids_, tok);
    if (!reason.empty()) r->text_limit = size_t(r->output_len()) - 1;  // a stop token's text never shows
    else if (r->output_len() >= sp.max_new_tokens || int64_t(r->tokens.size()) >= cfg_.context_length)
      reason = "length";
    if (!reason.empty()) {
      // Tokens after the stop are dropped; KV past the kept ones is unused.
      r->computed = std::min<int64_t>(r->computed, int64_t(r->tokens.size()));
      r->drafts.clear();
      finish(r, reason, reason == "stop" ? std::to_string(tok) : "");
      return;
    }
  }
  unprocessed_.push_back(r);
}

std::string Engine::advance_text(Req* r) {
  auto it = text_.find(r);
  size_t upto = std::min(size_t(r->output_len()), r->text_limit);
  std::string matched;
  const auto& stops = r->params.stop;
  while (r->tokens_texted < upto) {
    int32_t tok = r->tokens[size_t(r->prompt_len) + r->tokens_texted];
    r->tokens_texted++;
    if (it == text_.end()) continue;
    r->text += it->second->push(tok);
    if (stops.empty()) continue;
    size_t max_len = 0;
    for (auto& s : stops) max_len = std::max(max_len, s.size());
    size_t from = r->text_sent > max_len ? r->text_sent - max_len : 0;
    size_t best = std::string::npos;
    for (auto& s : stops) {
      size_t at = r->text.find(s, from);
      if (at != std::string::npos && at < best) {
        best = at;
        matched = s;
      }
    }
    if (best != std::string::npos) {
      // Cut text at the stop string and tokens right after the one that completed it.
      r->text.resize(best);
      r->tokens.resize(size_t(r->prompt_len) + r->tokens_texted);
      r->lps_pending.resize(std::min(r->lps_pending.size(), r->tokens_texted - r->tokens_sent));
      r->computed = std::min<int64_t>(r->computed, int64_t(r->tokens.size()));
      r->drafts.clear();
      return matched;
    }
  }
  return "";
}

void Engine::process_outputs() {
  if (unprocessed_.empty()) return;
  TraceSpan sp(trace_.get(), "output processing", kTraceEngineThread);
  std::vector<Req*> pending;
  pending.swap(unprocessed_);
  sp.args(fmt::format("{{\"requests\":{}}}", pending.size()));
  std::unordered_set<Req*> seen;
  for (Req* r : pending) {
    if (!seen.insert(r).second || live_.find(r) == live_.end() || r->stop_pending) continue;
    std::string matched = advance_text(r);
    if (!matched.empty()) {
      if (in_flight_.count(r)) {
        // The model is running this request's next step: finish it when that returns.
        r->stop_pending = true;
        r->stop_matched = matched;
      } else {
        finish(r, "stop", matched);
      }
      continue;
    }
    emit(r, false, "", "", EngineFailure());
  }
}

void Engine::emit(Req* r, bool finished, const std::string& reason, const std::string& matched,
                  const EngineFailure& failure) {
  auto it = live_.find(r);
  if (it == live_.end()) return;
  size_t out_len = size_t(r->output_len());
  // --stream-interval: hold tokens (and their logprobs) back until enough
  // have come; the first output and the last go out at once.
  if (!finished && r->tokens_sent > 0 && out_len - r->tokens_sent < size_t(cfg_.stream_interval)) return;
  EngineOutput o;
  o.token_ids.assign(r->tokens.begin() + r->prompt_len + int64_t(r->tokens_sent), r->tokens.end());
  o.logprobs = std::move(r->lps_pending);
  r->lps_pending.clear();
  if (!r->prompt_lps_sent && r->params.prompt_logprobs_start >= 0) {
    o.prompt_logprobs = std::move(r->prompt_lps);
    r->prompt_lps.clear();
    r->prompt_lps_sent = true;
  }
  r->tokens_sent = out_len;
  // Hold back text that could still become a stop string.
  size_t hold = 0;
  if (!finished)
    for (auto& s : r->params.stop) hold = std::max(hold, s.size() - 1);
  size_t upto = r->text.size() > hold ? r->text.size() - hold : 0;
  if (upto > r->text_sent) {
    o.text = r->text.substr(r->text_sent, upto - r->text_sent);
    r->text_sent = upto;
  }
  o.finished = finished;
  o.finish_reason = reason;
  o.matched_stop = matched;
  o.error = failure.message;
  o.error_kind = failure.kind;
  o.prompt_tokens = r->prompt_len;
  o.completion_tokens = int(out_len);
  o.cached_tokens = r->cached_tokens;
  if (r->spec_verifies) o.spec_accept_length = double(r->spec_accepted + r->spec_verifies) / double(r->spec_verifies);
  if (o.token_ids.empty() && o.text.empty() && o.prompt_logprobs.empty() && !finished) return;
  it->second.handle->push(std::move(o));
}

void Engine::finish(Req* r, const std::string& reason, const std::string& matched, const EngineFailure& failure) {
  auto it = live_.find(r);
  if (it == live_.end()) return;
  r->aborted = reason == "abort";
  std::string why = reason, what = matched;
  if (!r->stop_pending) {
    // Decode what has not been yet; it may itself complete a stop string.
    std::string m = advance_text(r);
    if (!m.empty() && !r->aborted) {
      why = "stop";
      what = m;
    } else if (auto t = text_.find(r); t != text_.end()) {
      r->text += t->second->flush();
    }
  }
  sched_->finish(r);
  emit(r, true, why, what, failure);
  log_finish(r, why, failure.message);
  {
    std::lock_guard<std::mutex> lk(mu_);
    stats_.finished_requests++;
  }
  text_.erase(r);
  live_.erase(it);
}

void Engine::draft(const ScheduledBatch& b, int depth) {
  const int steps = depth;  // layers run this time (auto may pick fewer, or none)
  const int64_t H = model_.spec().hidden_size;
  struct Item {
    Req* r;
    bool drafting;
    std::vector<int32_t> next;  // new drafts
  };
  std::vector<Item> items;
  for (auto& e : b.entries) {
    Req* r = e.req;
    if (live_.find(r) == live_.end() || r->status != ReqStatus::Running || r->aborted) continue;
    bool drafting = e.samples && int64_t(r->tokens.size()) == r->computed + 1;
    items.push_back({r, drafting, {}});
  }
  Backend& be = model_.backend();
  for (int k = 0; k < steps; k++) {
    StepBatch mb;
    mb.q_start.push_back(0);
    std::vector<float> hin;
    std::vector<Item*> drafters;
    std::vector<int64_t> new_done;
    for (auto& it : items) {
      Req* r = it.r;
      int64_t m = r->computed, n_tok = int64_t(r->tokens.size());
      // Positions whose hidden state is gone (the layer sat idle under auto
      // depth) are skipped: their MTP KV stays approximate, which can only
      // cost acceptance, never correctness.
      int64_t lo = std::max(r->mtp_done[k], r->hist_begin);
      int64_t hi = it.drafting ? m : std::min(m, n_tok - k - 1);
      if (hi <= lo) {
        new_done.push_back(std::max(lo, hi));
        continue;
      }
      for (int64_t p = lo; p < hi; p++) {
        int64_t idx = p + k + 1;
        mb.tokens.push_back(idx < n_tok ? r->tokens[size_t(idx)] : it.next[size_t(idx - n_tok)]);
        mb.positions.push_back(int32_t(p));
        const float* h = r->hist.data() + (p - r->hist_begin) * H;
        hin.insert(hin.end(), h, h + H);
      }
      mb.q_start.push_back(int32_t(mb.tokens.size()));
      mb.kv_len.push_back(int32_t(hi));
      PoolSlots& ps = mb.pools[0];
      ps.table_start.push_back(int32_t(ps.table.size()));
      ps.table.insert(ps.table.end(), r->full_slots.begin(), r->full_slots.begin() + hi);
      ps.out_slots.insert(ps.out_slots.end(), r->full_slots.begin() + lo, r->full_slots.begin() + hi);
      if (it.drafting) {
        mb.logit_rows.push_back(int32_t(mb.tokens.size()) - 1);
        drafters.push_back(&it);
      }
      new_done.push_back(it.drafting ? m - k : hi);
    }
    if (!mb.tokens.empty()) {
      // One buffer for every draft step: on a GPU an allocation per step
      // would also free one per step, and freeing waits for the device.
      const int64_t T = int64_t(mb.tokens.size());
      if (!draft_hidden_.defined() || draft_hidden_.dim(0) < T)
        draft_hidden_ = be.alloc({std::max<int64_t>(T, 64), H}, DType::F32);
      Tensor h = draft_hidden_.slice_rows(0, T);
      be.copy_from_host(h, hin.data());
      const Tensor& lg = model_.mtp_forward(k, mb, h, *kv_);
      // Drafts are greedy: only their ids cross to the host.
      const int64_t R = lg.dim(0);
      if (!draft_ids_.defined() || draft_ids_.numel() < R) draft_ids_ = be.alloc({std::max<int64_t>(R, 64)}, DType::I32);
      Tensor out = draft_ids_.slice_rows(0, R);
      be.argmax(lg, out);
      std::vector<int32_t> ids(static_cast<size_t>(R));
      be.copy_to_host(ids.data(), out);
      for (size_t i = 0; i < drafters.size(); i++) drafters[i]->next.push_back(ids[i]);
    }
    for (size_t i = 0; i < items.size(); i++) items[i].r->mtp_done[k] = new_done[i];
  }
  for (auto& it : items) {
    Req* r = it.r;
    if (it.drafting || steps == 0) {
      // No use verifying drafts past the request's last token.
      int64_t room = std::max<int64_t>(0, r->params.max_new_tokens - r->output_len() - 1);
      if (int64_t(it.next.size()) > room) it.next.resize(size_t(room));
      r->drafts = std::move(it.next);
    }
    // Forget hidden states no MTP layer will read again.
    int64_t keep_from = r->computed;
    for (int k = 0; k < steps; k++) keep_from = std::min(keep_from, r->mtp_done[k]);
    keep_from = std::max(keep_from, r->computed - cfg_.speculative_num_steps);  // idle layers catch up approximately
    int64_t drop = std::max<int64_t>(0, keep_from - r->hist_begin);
    drop = std::min<int64_t>(drop, int64_t(r->hist.size()) / H);
    r->hist.erase(r->hist.begin(), r->hist.begin() + drop * H);
    r->hist_begin += drop;
  }
}

}  // namespace mimo
