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
// A depth's correction follows its last ~100 verifies (only that depth's
// count), starting from 1 with the weight of 24 tokens (~10 verifies): a
// depth re-measured now and then has few, and with a weight of 8 their
// noise alone pulled a depth-3-best simulation (MemoryBoundPicksFullDepth)
// to depth 2 a fifth of the time.
constexpr double kCorrectionDecay = 0.99, kCorrectionPrior = 24;
// A step is a cost sample only as the third in a row at its depth: the first
// after a switch catches the MTP layers up on the positions they skipped,
// the second still finds the layers' weights and KV cold in the CPU's caches
// (measured on the default model at batch 1: a depth-1 step right after
// depth-0 steps took ~0.48 ms against ~0.38 ms in a run of depth-1 steps, so
// re-measured neighbours looked worse than the depth in use and the choice
// stuck at depth 0). A re-measure therefore runs this many steps.
constexpr int kRemeasureSteps = 3;
}  // namespace

SpecDepthController::SpecDepthController(int max_depth) : max_(std::clamp(max_depth, 0, kMaxDepth)) {
  trials_.fill(kPriorTrials);
  hits_.fill(kPriorTrials * kPriorAccept);
}

void SpecDepthController::record_verify(int drafts, int accepted) {
  drafts = std::min(drafts, kMaxDepth);
  if (drafts > 0) {
    const size_t d = size_t(drafts);
    got_[d] = got_[d] * kCorrectionDecay + 1 + std::min(accepted, drafts);
    predicted_[d] = predicted_[d] * kCorrectionDecay + pooled_tokens(drafts);
  }
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

double SpecDepthController::pooled_tokens(int depth) const {
  // Drafts are accepted in order while the target agrees.
  double e = 1, p = 1;
  for (int k = 0; k < std::min(depth, kMaxDepth); k++) {
    p *= hits_[size_t(k)] / trials_[size_t(k)];
    e += p;
  }
  return e;
}

double SpecDepthController::correction(int depth) const {
  const size_t d = size_t(std::clamp(depth, 0, kMaxDepth));
  return (got_[d] + kCorrectionPrior) / (predicted_[d] + kCorrectionPrior);
}

double SpecDepthController::expected_tokens(int depth) const {
  // At least the step's own token, at most one per draft more.
  const int d = std::clamp(depth, 0, kMaxDepth);
  return d == 0 ? 1.0 : std::clamp(pooled_tokens(d) * correction(d), 1.0, 1.0 + d);
}

int SpecDepthController::best(const std::array<Cost, kMaxDepth + 1>& c) const {
  int best = -1;
  double best_rate = -1;
  for (int d = 0; d <= max_; d++) {
    if (c[size_t(d)].samples == 0) continue;
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
  if (hold_ > 0) {
    hold_--;
    return last_;
  }
  const int b = bucket(batch);
  auto& c = cost_[b];
  int top = best(c);
  if (top < 0) {
    // A batch size not seen yet: start from the best depth of the nearest
    // batch size seen (the ranking of depths changes slowly with the batch),
    // else from no drafts; using a depth measures it.
    int dist = 1 << 30;
    top = 0;
    for (auto& [ob, t] : cost_)
      if (int r = best(t); r >= 0 && std::abs(ob - b) < dist) dist = std::abs(ob - b), top = r;
    return last_ = top;
  }
  // Tokens per second are unimodal in the depth (each draft adds a verify
  // token and an MTP pass and earns less than the one before), so only the
  // best depth's neighbours are measured: a compute-bound batch never pays
  // for a depth-3 step to learn that depth 1 already loses.
  //
  // Costs and acceptance drift, so a neighbour that looks worse is measured
  // again now and then, at a price: a re-measure of depth d loses
  // L = kRemeasureSteps t_d (1 - rate_d / rate_best) seconds against the best. Each may
  // spend ~0.5% of the time on that: it is due again after L / (0.5% of the
  // best step) steps, at least 16 and at most 512 (16 while it has under 3
  // samples: slow first ones must not lock it out; at once if it has none).
  // (With 1%, at most 256 and medians of 5 samples, a batch-1 simulation
  // with this machine's step noise (spec_depth_test.cc, NoisyBatchOne) ran
  // at 96.1% of the best fixed depth on average and 86.5% in its worst run;
  // now 97.4% and 94.2%.)
  // At most one re-measure per 16 steps (per 4 while this batch size is new),
  // the most overdue first.
  const int tick = c[size_t(top)].samples < 8 ? 4 : 16;
  if (steps_ % tick == 0) {
    const double t_best = c[size_t(top)].seconds(), rate_best = expected_tokens(top) / t_best;
    int due = -1;
    double most = 1.0;
    for (int d : {top - 1, top + 1}) {
      if (d < 0 || d > max_) continue;
      const Cost& k = c[size_t(d)];
      double overdue = 2.0;
      if (k.samples > 0) {
        double t = k.seconds(), loss = kRemeasureSteps * t * (1 - expected_tokens(d) / t / rate_best);
        double every = k.samples < 3 ? 16.0 : std::clamp(loss / (0.005 * t_best), 16.0, 512.0);
        overdue = double(steps_ - k.at) / every;
      }
      if (overdue >= most) most = overdue, due = d;
    }
    if (due >= 0) {
      hold_ = kRemeasureSteps - 1;  // only the last of them is a sample (see observe)
      return last_ = due;
    }
  }
  return last_ = top;
}

void SpecDepthController::observe(int depth, int batch, double step_s) {
  if (depth < 0 || depth > max_) return;
  // The first steps after a switch are not what the depth costs (see
  // kRemeasureSteps): only the third step in a row at a depth is a sample.
  streak_ = depth == prev_depth_ ? streak_ + 1 : 1;
  prev_depth_ = depth;
  if (streak_ < kRemeasureSteps) return;
  Cost& e = cost_[bucket(batch)][size_t(depth)];
  e.recent[size_t(e.samples % Cost::kWindow)] = step_s;
  e.samples++;
  e.at = steps_;
}

double SpecDepthController::Cost::seconds() const {
  const int n = std::min(samples, kWindow);
  if (n == 0) return 0.0;
  std::array<double, kWindow> v = recent;
  std::nth_element(v.begin(), v.begin() + (n - 1) / 2, v.begin() + n);
  return v[size_t((n - 1) / 2)];
}

std::string SpecDepthController::summary() const {
  std::string s = "acceptance by position";
  for (int k = 0; k < max_; k++) s += fmt::format(" {:.2f}", hits_[size_t(k)] / trials_[size_t(k)]);
  s += "; tokens per step by depth (correction)";
  for (int d = 1; d <= max_; d++) s += fmt::format(" {:.2f} ({:.2f})", expected_tokens(d), correction(d));
  for (auto& [b, c] : cost_) {
    s += fmt::format("; batch <={}: ms/step (samples)", b);
    for (int d = 0; d <= max_; d++) s += fmt::format(" {:.3f} ({})", 1e3 * c[size_t(d)].seconds(), c[size_t(d)].samples);
  }
  return s;
}

}  // namespace mimo
