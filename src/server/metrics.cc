#include "server/metrics.h"

#include <fmt/format.h>

#include <algorithm>

namespace mimo::server {

namespace {

std::string escape_label(const std::string& v) {
  std::string o;
  for (char c : v) {
    if (c == '\\' || c == '"') o += '\\';
    if (c == '\n') {
      o += "\\n";
      continue;
    }
    o += c;
  }
  return o;
}

struct Writer {
  std::string out;
  std::string labels;  // model_name="..."
  void header(const char* name, const char* type, const char* help) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  }
  void sample(const std::string& name, double v, const std::string& extra = "") {
    std::string l = extra.empty() ? labels : labels + "," + extra;
    out += fmt::format("{}{{{}}} {}\n", name, l, v);
  }
  void gauge(const char* name, const char* help, double v) {
    header(name, "gauge", help);
    sample(name, v);
  }
  void counter(const char* name, const char* help, double v) {
    header(name, "counter", help);
    sample(name, v);
  }
  void histogram(const std::string& name, const char* help, const Histogram& h) {
    header(name.c_str(), "histogram", help);
    int64_t cum = 0;
    for (size_t i = 0; i < h.bounds.size(); i++) {
      cum += h.buckets[i];
      sample(name + "_bucket", double(cum), fmt::format("le=\"{}\"", h.bounds[i]));
    }
    cum += h.buckets.back();
    sample(name + "_bucket", double(cum), "le=\"+Inf\"");
    sample(name + "_sum", h.sum);
    sample(name + "_count", double(h.count));
  }
};

}  // namespace

double cache_hit_rate(const EngineStats& s) {
  return s.prompt_tokens > 0 ? double(s.cached_prompt_tokens) / double(s.prompt_tokens) : 0.0;
}

void Histogram::observe(double v, int64_t times) {
  buckets[size_t(std::lower_bound(bounds.begin(), bounds.end(), v) - bounds.begin())] += times;
  sum += v * double(times);
  count += times;
}

// SGLang's buckets for these three histograms.
Metrics::Metrics()
    : e2e_({0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600}),
      ttft_({0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 15, 20, 25, 30}),
      itl_({0.002, 0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1,
            2.5}) {}

void Metrics::request_finished(const std::string& reason, double e2e) {
  std::lock_guard<std::mutex> lk(mu_);
  by_reason_[reason]++;
  e2e_.observe(e2e);
}

void Metrics::first_token(double seconds) {
  std::lock_guard<std::mutex> lk(mu_);
  ttft_.observe(seconds);
}

void Metrics::inter_token(double seconds_per_token, int64_t tokens) {
  std::lock_guard<std::mutex> lk(mu_);
  itl_.observe(seconds_per_token, tokens);
}

void Metrics::request_rejected(int status) {
  std::lock_guard<std::mutex> lk(mu_);
  rejected_[status]++;
}

std::string Metrics::prometheus(const EngineStats& s, const std::string& model_name) const {
  Writer w;
  w.labels = fmt::format("model_name=\"{}\"", escape_label(model_name));
  w.gauge("sglang:num_running_reqs", "Requests running (decoding or in prefill).", s.running);
  w.gauge("sglang:num_queue_reqs", "Requests waiting to be scheduled.", s.waiting);
  w.header("sglang:kv_tokens_used", "gauge", "KV cache slots in use per pool (including the prefix cache).");
  w.sample("sglang:kv_tokens_used", double(s.full_used), "pool=\"full\"");
  w.sample("sglang:kv_tokens_used", double(s.swa_used), "pool=\"swa\"");
  w.header("sglang:kv_tokens_cached", "gauge", "KV cache slots held only by the prefix cache, per pool.");
  w.sample("sglang:kv_tokens_cached", double(s.cached_full), "pool=\"full\"");
  w.sample("sglang:kv_tokens_cached", double(s.cached_swa), "pool=\"swa\"");
  w.header("sglang:kv_tokens_capacity", "gauge", "KV cache slots per pool.");
  w.sample("sglang:kv_tokens_capacity", double(s.full_capacity), "pool=\"full\"");
  w.sample("sglang:kv_tokens_capacity", double(s.swa_capacity), "pool=\"swa\"");
  w.gauge("sglang:token_usage", "Fraction of the full-attention KV pool in use.",
          s.full_capacity > 0 ? double(s.full_used) / double(s.full_capacity) : 0.0);
  w.gauge("sglang:swa_token_usage", "Fraction of the sliding-window KV pool in use.",
          s.swa_capacity > 0 ? double(s.swa_used) / double(s.swa_capacity) : 0.0);
  w.gauge("sglang:cache_hit_rate", "Fraction of prompt tokens served from the prefix cache.", cache_hit_rate(s));
  w.gauge("sglang:gen_throughput", "Generated tokens per second over the last few seconds.", s.gen_throughput);
  w.counter("sglang:prompt_tokens_total", "Prompt tokens processed.", double(s.prompt_tokens));
  w.counter("sglang:cached_prompt_tokens_total", "Prompt tokens served from the prefix cache.",
            double(s.cached_prompt_tokens));
  w.counter("sglang:generation_tokens_total", "Tokens generated.", double(s.generated_tokens));
  w.counter("sglang:num_retracted_reqs_total", "Requests retracted (KV freed and requeued) when memory ran out.",
            double(s.retractions));
  w.counter("sglang:forward_steps_total", "Model steps run.", double(s.steps));
  w.counter("mimoserve:graph_steps_total", "Model forwards (target and draft) replayed as captured CUDA graphs.",
            double(s.graph_steps));
  if (auto a = spec_accept_length(s)) {
    w.gauge("sglang:spec_accept_length", "Average speculative accept length.", *a);
    // Which draft depth the steps used (fixed, or chosen by --speculative-num-steps auto).
    w.header("mimoserve:spec_decode_steps_total", "counter", "Decode steps by the draft depth they verified.");
    for (size_t d = 0; d < s.decode_steps_by_depth.size(); d++)
      w.sample("mimoserve:spec_decode_steps_total", double(s.decode_steps_by_depth[d]), fmt::format("depth=\"{}\"", d));
  }
  std::lock_guard<std::mutex> lk(mu_);
  w.header("sglang:num_requests_total", "counter", "Finished requests (per choice) by finish reason.");
  for (const char* r : {"stop", "length", "abort", "error"}) {
    auto it = by_reason_.find(r);
    w.sample("sglang:num_requests_total", double(it == by_reason_.end() ? 0 : it->second),
             fmt::format("finish_reason=\"{}\"", r));
  }
  w.header("sglang:num_rejected_requests_total", "counter", "Requests refused before generation, by HTTP status.");
  for (int code : {400, 401, 404, 413, 503}) {
    auto it = rejected_.find(code);
    w.sample("sglang:num_rejected_requests_total", double(it == rejected_.end() ? 0 : it->second),
             fmt::format("status=\"{}\"", code));
  }
  w.histogram("sglang:e2e_request_latency_seconds", "Seconds from arrival to the last token.", e2e_);
  w.histogram("sglang:time_to_first_token_seconds", "Seconds from arrival to the first token.", ttft_);
  w.histogram("sglang:inter_token_latency_seconds", "Seconds between tokens after the first.", itl_);
  return w.out;
}

}  // namespace mimo::server
