#include "engine/spec_depth.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

namespace mimo {

int SpecDepthController::bucket(int batch) {
  int b = 1;
  while (b < batch) b *= 2;
  return b;
}

double SpecDepthController::expected_tokens(int depth) const {
  // Drafts are accepted in order while the target agrees: 1 + a + a^2 + ...
  double e = 0, p = 1;
  for (int i = 0; i <= depth; i++, p *= accept_) e += p;
  return e;
}

int SpecDepthController::best(const std::array<Cost, 4>& c) const {
  int best = 0;
  double best_rate = -1;
  for (int d = 0; d <= max_; d++) {
    double rate = expected_tokens(d) / c[size_t(d)].seconds();
    if (rate > best_rate) {
      best_rate = rate;
      best = d;
    }
  }
  return best;
}

int SpecDepthController::choose(int batch) {
  steps_++;
  const int b = bucket(batch);
  auto& c = cost_[b];
  auto measured = [&](const std::array<Cost, 4>& t, int n) {
    for (int d = 0; d <= max_; d++)
      if (t[size_t(d)].samples < n) return false;
    return true;
  };
  if (!measured(c, 1)) {
    // A batch size not seen yet: decide with the nearest batch size whose
    // depths are all measured (the ranking of depths changes slowly with the
    // batch), and measure this one's depths now and then; with none, measure
    // every depth twice (the first step pays warm-up).
    const std::array<Cost, 4>* ref = nullptr;
    int dist = 1 << 30;
    for (auto& [ob, t] : cost_)
      if (ob != b && measured(t, 2) && std::abs(ob - b) < dist) dist = std::abs(ob - b), ref = &t;
    if (!ref || steps_ % 4 == 0) {
      for (int d = 0; d <= max_; d++)
        if (c[size_t(d)].samples < (ref ? 1 : 2)) return last_ = d;
    }
    if (ref) return last_ = best(*ref);
  }
  // Costs and acceptance drift: every 16 steps re-measure the depth whose
  // figure is oldest (any depth, so one bad early sample cannot lock a depth
  // out for good).
  if (steps_ % 16 == 0) {
    int oldest = 0;
    for (int d = 1; d <= max_; d++)
      if (c[size_t(d)].at < c[size_t(oldest)].at) oldest = d;
    return last_ = oldest;
  }
  return last_ = best(c);
}

void SpecDepthController::observe(int depth, int batch, int64_t accepted, int64_t offered, double forward_s,
                                  double draft_s) {
  if (depth < 0 || depth > max_) return;
  if (offered > 0) {
    // Accepted drafts over drafts that had a chance (a draft after a
    // rejection never had one): the geometric model's per-draft rate.
    double a = double(accepted) / double(offered);
    accept_ = 0.8 * accept_ + 0.2 * a;
  }
  Cost& e = cost_[bucket(batch)][size_t(depth)];
  e.recent[size_t(e.samples % 4)] = forward_s + draft_s;
  e.samples++;
  e.at = steps_;
}

double SpecDepthController::Cost::seconds() const {
  const int n = std::min(samples, 4);
  return n == 0 ? 0.0 : *std::min_element(recent.begin(), recent.begin() + n);
}

}  // namespace mimo
