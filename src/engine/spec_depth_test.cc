// The auto depth controller against simulated steps: it must settle on the
// depth with the most tokens per second, and one slow early sample (warm-up,
// another process) must not keep it away from a depth for good.
#include "engine/spec_depth.h"

#include <gtest/gtest.h>

#include <functional>

namespace mimo {
namespace {

// Runs `steps` decode steps at batch 1 in which a step at depth d costs
// cost(d, step) seconds and each draft is accepted with probability `a`
// (reported as counts); returns how often each depth was chosen in the
// last `tail` steps.
std::array<int, 4> simulate(SpecDepthController& c, int steps, int tail, double a,
                            const std::function<double(int, int)>& cost, int batch = 1) {
  std::array<int, 4> chosen{};
  for (int i = 0; i < steps; i++) {
    int d = c.choose(batch);
    c.observe(d, batch, int64_t(a * 100 * d + 0.5), 100 * d, cost(d, i), 0.0);
    if (i >= steps - tail) chosen[size_t(d)]++;
  }
  return chosen;
}

TEST(SpecDepth, ComputeBoundPicksNoDrafts) {
  SpecDepthController c(3);
  // Each drafted token costs more than it is likely to earn.
  auto got = simulate(c, 200, 100, 0.7, [](int d, int) { return 1e-3 * (1 + 1.2 * d); });
  EXPECT_GE(got[0], 85) << got[0] << " " << got[1] << " " << got[2] << " " << got[3];
}

TEST(SpecDepth, MemoryBoundPicksFullDepth) {
  SpecDepthController c(3);
  // A verify of 4 tokens costs about one: deep drafting pays.
  auto got = simulate(c, 200, 100, 0.8, [](int d, int) { return 1e-3 * (1 + 0.1 * d); });
  EXPECT_GE(got[3], 85) << got[0] << " " << got[1] << " " << got[2] << " " << got[3];
}

TEST(SpecDepth, SlowFirstSamplesDoNotLockADepthOut) {
  SpecDepthController c(3);
  // The first two depth-0 steps are 5x slower (warm-up); after that depth 0
  // is the best by far.
  int seen0 = 0;
  auto got = simulate(c, 300, 100, 0.7, [&](int d, int) {
    double t = 1e-3 * (1 + 1.2 * d);
    if (d == 0 && seen0++ < 2) t *= 5;
    return t;
  });
  EXPECT_GE(got[0], 85) << got[0] << " " << got[1] << " " << got[2] << " " << got[3];
}

TEST(SpecDepth, FollowsACostThatChanges) {
  SpecDepthController c(3);
  // Memory-bound for 200 steps, then compute-bound (the batch's context grew).
  auto got = simulate(c, 400, 100, 0.8, [](int d, int step) {
    return step < 200 ? 1e-3 * (1 + 0.1 * d) : 1e-3 * (1 + 1.5 * d);
  });
  EXPECT_GE(got[0], 85) << got[0] << " " << got[1] << " " << got[2] << " " << got[3];
}

TEST(SpecDepth, ANewBatchSizeStartsFromTheNearestOneInsteadOfExploring) {
  SpecDepthController c(3);
  auto compute_bound = [](int d, int) { return 1e-3 * (1 + 1.2 * d); };
  simulate(c, 100, 0, 0.7, compute_bound, 32);
  // The batch shrinks (requests finish): the first steps at batch 16 must
  // not be spent trying every depth twice.
  auto got = simulate(c, 20, 20, 0.7, compute_bound, 16);
  EXPECT_GE(got[0], 15) << got[0] << " " << got[1] << " " << got[2] << " " << got[3];
}

}  // namespace
}  // namespace mimo
