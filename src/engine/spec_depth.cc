#include "engine/spec_depth.h"

#include <algorithm>
#include <cmath>

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

int SpecDepthController::choose(int batch) {
  steps_++;
  auto& c = cost_[bucket(batch)];
  // Measure every depth once for this batch size before trusting the model,
  // and re-measure a neighbour now and then: costs and acceptance drift.
  for (int d = 0; d <= max_; d++)
    if (c[size_t(d)] <= 0) return last_ = d;
  if (steps_ % 32 == 0) {
    int d = last_ + ((steps_ / 32) % 2 ? 1 : -1);
    if (d >= 0 && d <= max_) return last_ = d;
  }
  int best = 0;
  double best_rate = -1;
  for (int d = 0; d <= max_; d++) {
    double rate = expected_tokens(d) / c[size_t(d)];
    if (rate > best_rate) {
      best_rate = rate;
      best = d;
    }
  }
  return last_ = best;
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
  auto& c = cost_[bucket(batch)];
  double t = forward_s + draft_s;
  double& e = c[size_t(depth)];
  e = e <= 0 ? t : 0.8 * e + 0.2 * t;
}

}  // namespace mimo
