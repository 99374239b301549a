// What the engine tells an operator, as SGLang's scheduler does: a line per
// prefill batch and one every --decode-log-interval decode steps (batch
// sizes, KV use, throughput, queue), a line per finished request with
// --log-requests, and the watchdog that ends a process whose model step
// hangs (--watchdog-timeout).
#include <algorithm>
#include <cstdlib>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "engine/engine.h"

namespace mimo {

namespace {

// At most `limit` characters of s (whole UTF-8 sequences), marked when cut.
std::string clip(const std::string& s, size_t limit) {
  if (s.size() <= limit) return s;
  size_t n = limit;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) n--;
  return s.substr(0, n) + fmt::format("... ({} bytes)", s.size());
}

}  // namespace

void Engine::log_batch(const ScheduledBatch& b) {
  if (cfg_.decode_log_interval <= 0) return;
  // Every decode_log_interval decode steps, and not more than once a second
  // (a small model's steps take well under a millisecond).
  if (!b.prefill) {
    if (++decode_log_steps_ < cfg_.decode_log_interval) return;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_decode_log_ < std::chrono::seconds(1)) return;
    decode_log_steps_ = 0;
    last_decode_log_ = now;
  }
  const int64_t used = full_alloc_->capacity() - full_alloc_->free_slots();
  const double usage = full_alloc_->capacity() ? double(used) / double(full_alloc_->capacity()) : 0.0;
  const size_t running = sched_->running().size(), queued = sched_->waiting().size();
  if (b.prefill) {
    int64_t seqs = 0, tokens = 0, cached = 0;
    for (const BatchEntry& e : b.entries) {
      if (e.begin >= e.req->prompt_len) continue;  // a decode row riding along
      tokens += e.len;
      if (e.begin == e.req->cached_tokens) seqs++, cached += e.req->cached_tokens;  // its first chunk
    }
    spdlog::info("Prefill batch. #new-seq: {}, #new-token: {}, #cached-token: {}, token usage: {:.2f}, #running-req: {}, "
                 "#queue-req: {}",
                 seqs, tokens, cached, usage, running, queued);
    return;
  }
  EngineStats s;
  {
    std::lock_guard<std::mutex> lk(mu_);
    s = stats_;
  }
  const EngineStats d = s.since(decode_log_stats_);
  decode_log_stats_ = s;
  std::string spec = d.spec_verifies ? fmt::format(", accept len: {:.2f}", d.avg_spec_accept_length()) : "";
  spdlog::info("Decode batch. #running-req: {}, #token: {}, token usage: {:.2f}{}, gen throughput (token/s): {:.2f}, "
               "#queue-req: {}",
               running, used, usage, spec, s.gen_throughput, queued);
}

void Engine::log_finish(const Req* r, const std::string& reason, const std::string& error) {
  if (cfg_.log_requests_level < 0) return;
  const double e2e = std::chrono::duration<double>(std::chrono::steady_clock::now() - r->arrival).count();
  std::string line = fmt::format("Finish: rid={}, prompt_tokens={}, completion_tokens={}, cached_tokens={}, "
                                 "finish_reason={}, e2e_latency={:.3f}s",
                                 r->id, r->prompt_len, r->output_len(), r->cached_tokens, reason, e2e);
  if (r->spec_verifies)
    line += fmt::format(", spec_accept_length={:.2f}", double(r->spec_accepted + r->spec_verifies) / double(r->spec_verifies));
  if (!error.empty()) line += ", error=" + error;
  const SamplingParams& p = r->params;
  if (cfg_.log_requests_level >= 1)
    line += fmt::format(", sampling=(temperature={}, top_p={}, top_k={}, min_p={}, max_new_tokens={}, seed={})",
                        p.temperature, p.top_p, p.top_k, p.min_p, p.max_new_tokens,
                        p.seed ? std::to_string(*p.seed) : "none");
  if (cfg_.log_requests_level >= 2) {
    // Level 2 clips the texts to 2048 bytes, level 3 logs them whole.
    const size_t limit = cfg_.log_requests_level >= 3 ? std::string::npos : 2048;
    std::string in, out;
    if (codec_) {
      auto st = codec_->stream(false);
      for (int64_t i = 0; i < r->prompt_len; i++) in += st->push(r->tokens[size_t(i)]);
      in += st->flush();
      out = r->text;
    } else {
      in = fmt::format("{}", fmt::join(r->tokens.begin(), r->tokens.begin() + r->prompt_len, ","));
      out = fmt::format("{}", fmt::join(r->tokens.begin() + r->prompt_len, r->tokens.end(), ","));
    }
    line += fmt::format(", in={:?}, out={:?}", clip(in, limit), clip(out, limit));
  }
  spdlog::info("{}", line);
}

void Engine::watchdog() {
  const auto limit = std::chrono::duration<double>(cfg_.watchdog_timeout_s);
  std::unique_lock<std::mutex> lk(watchdog_mu_);
  while (!watchdog_stop_) {
    watchdog_cv_.wait_for(lk, std::chrono::milliseconds(std::clamp<int64_t>(int64_t(cfg_.watchdog_timeout_s * 250), 1, 1000)));
    const int64_t began = step_began_ns_.load(std::memory_order_acquire);
    if (began == 0 || watchdog_stop_) continue;
    const auto ran = std::chrono::steady_clock::now().time_since_epoch() - std::chrono::nanoseconds(began);
    if (ran < limit) continue;
    // A model step that does not return is a hang (a wedged device, a
    // deadlock): end the process so a supervisor restarts it, as SGLang's
    // --watchdog-timeout does, instead of holding every request forever.
    spdlog::critical("watchdog: a model step has run for {:.1f} s (--watchdog-timeout {} s); exiting",
                     std::chrono::duration<double>(ran).count(), cfg_.watchdog_timeout_s);
    spdlog::default_logger()->flush();
    std::_Exit(3);
  }
}

}  // namespace mimo
