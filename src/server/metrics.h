// Server-side counters (requests by finish reason, end-to-end latency) and
// the Prometheus text exposition of them plus the engine's stats. Metric
// names follow SGLang's (sglang:...), so dashboards built for it work.
#pragma once

#include <map>
#include <optional>
#include <mutex>
#include <string>
#include <vector>

#include "engine/engine.h"

namespace mimo::server {

// A Prometheus histogram: counts per bucket (upper bounds), sum and count.
struct Histogram {
  std::vector<double> bounds;
  std::vector<int64_t> buckets;  // one per bound, and one past the last; cumulated on output
  double sum = 0;
  int64_t count = 0;
  explicit Histogram(std::vector<double> b) : bounds(std::move(b)), buckets(bounds.size() + 1, 0) {}
  void observe(double v, int64_t times = 1);
};

class Metrics {
 public:
  Metrics();
  // One finished request (per choice): its finish reason ("stop", "length",
  // "abort", "error", "tool_calls") and seconds from arrival to the end.
  void request_finished(const std::string& reason, double e2e_seconds);
  // Seconds from arrival to a request's first token, and between tokens
  // after it (an output of n tokens counts its gap / n, n times), as
  // SGLang's time_to_first_token and inter_token_latency histograms.
  void first_token(double seconds);
  void inter_token(double seconds_per_token, int64_t tokens);
  // Requests refused before reaching the engine, by HTTP status.
  void request_rejected(int status);
  std::string prometheus(const EngineStats& s, const std::string& model_name) const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, int64_t> by_reason_;
  std::map<int, int64_t> rejected_;
  Histogram e2e_, ttft_, itl_;
};

// Fraction of prompt tokens served from the prefix cache.
double cache_hit_rate(const EngineStats& s);

}  // namespace mimo::server

namespace mimo::server {

// The engine's average speculative accept length (SGLang's definition:
// (accepted drafts + 1) per verify step); none before the first verify.
template <typename Stats>
std::optional<double> spec_accept_length(const Stats& s) {
  if (s.spec_verifies > 0) return s.avg_spec_accept_length();
  return std::nullopt;
}

}  // namespace mimo::server
