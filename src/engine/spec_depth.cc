#include "engine/spec_depth.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include <fmt/format.h>

namespace mimo {

namespace {
// Each verify's counts weigh this much more than the one before: the
// estimate follows the last ~50 verifies (the text gets easier or harder).
constexpr double kDecay = 0.98;
constexpr double kPriorTrials = 2, kPriorAccept = 0.7;
}  // namespace

SpecDepthController::SpecDepthController(int max_depth) : max_(std::clamp(max_depth, 0, kMaxDepth)) {
  trials_.fill(kPriorTrials);
  hits_.fill(kPriorTrials * kPriorAccept);
}

void SpecDepthController::record_verify(int drafts, int accepted) {
  drafts = std::min(drafts, kMaxDepth);
  for (int k = 0; k < kMaxDepth; k++) {
    trials_[size_t(k)] *= kDecay;
    hits_[size_t(k)] *= kDecay;
  }
  // Position k had its chance when the k drafts before it were accepted.
  for (int k = 0; k < drafts && k <= accepted; k++) {
    trials_[size_t(k)] += 1;
    hits_[size_t(k)] += k < accepted ? 1 : 0;
  }
}

int SpecDepthController::bucket(int batch) {
  int b = 1;
  while (b < batch) b *= 2;
  return b;
}

double SpecDepthController::expected_tokens(int depth) const {
  // Drafts are accepted in order while the target agrees.
  double e = 1, p = 1;
  for (int k = 0; k < std::min(depth, kMaxDepth); k++) {
    p *= hits_[size_t(k)] / trials_[size_t(k)];
    e += p;
  }
  return e;
}

int SpecDepthController::best(const std::array<Cost, kMaxDepth + 1>& c) const {
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
  auto measured = [&](const std::array<Cost, kMaxDepth + 1>& t, int n) {
    for (int d = 0; d <= max_; d++)
      if (t[size_t(d)].samples < n) return false;
    return true;
  };
  if (!measured(c, 1)) {
    // A batch size not seen yet: decide with the nearest batch size whose
    // depths are all measured (the ranking of depths changes slowly with the
    // batch), and measure this one's depths now and then; with none, measure
    // every depth twice (the first step pays warm-up).
    const std::array<Cost, kMaxDepth + 1>* ref = nullptr;
    int dist = 1 << 30;
    for (auto& [ob, t] : cost_)
      if (ob != b && measured(t, 2) && std::abs(ob - b) < dist) dist = std::abs(ob - b), ref = &t;
    if (!ref || steps_ % 4 == 0) {
      for (int d = 0; d <= max_; d++)
        if (c[size_t(d)].samples < (ref ? 1 : 2)) return last_ = d;
    }
    if (ref) return last_ = best(*ref);
  }
  // Costs and acceptance drift, so depths that look worse are measured
  // again now and then, at a price: a step at depth d loses
  // L = t_d (1 - rate_d / rate_best) seconds against the best. Each depth
  // may spend ~1% of the time on that: it is due again after
  // L / (1% of the best step) steps, at least 16 and at most 256 (16 while
  // it has under 3 samples: slow first ones must not lock it out). At most
  // one re-measure per 16 steps, the most overdue first.
  const int top = best(c);
  if (steps_ % 16 == 0) {
    const double t_best = c[size_t(top)].seconds(), rate_best = expected_tokens(top) / t_best;
    int due = -1;
    double most = 1.0;
    for (int d = 0; d <= max_; d++) {
      if (d == top) continue;
      const Cost& k = c[size_t(d)];
      double t = k.seconds(), loss = t * (1 - expected_tokens(d) / t / rate_best);
      double every = k.samples < 3 ? 16.0 : std::clamp(loss / (0.01 * t_best), 16.0, 256.0);
      double overdue = double(steps_ - k.at) / every;
      if (overdue >= most) most = overdue, due = d;
    }
    if (due >= 0) return last_ = due;
  }
  return last_ = top;
}

void SpecDepthController::observe(int depth, int batch, double step_s) {
  if (depth < 0 || depth > max_) return;
  Cost& e = cost_[bucket(batch)][size_t(depth)];
  e.recent[size_t(e.samples % 4)] = step_s;
  e.samples++;
  e.at = steps_;
}

double SpecDepthController::Cost::seconds() const {
  const int n = std::min(samples, 4);
  return n == 0 ? 0.0 : *std::min_element(recent.begin(), recent.begin() + n);
}

std::string SpecDepthController::summary() const {
  std::string s = "acceptance by position";
  for (int k = 0; k < max_; k++) s += fmt::format(" {:.2f}", hits_[size_t(k)] / trials_[size_t(k)]);
  for (auto& [b, c] : cost_) {
    s += fmt::format("; batch <={}: ms/step (samples)", b);
    for (int d = 0; d <= max_; d++) s += fmt::format(" {:.3f} ({})", 1e3 * c[size_t(d)].seconds(), c[size_t(d)].samples);
  }
  return s;
}

}  // namespace mimo
