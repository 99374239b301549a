// The auto depth controller against simulated steps: it must settle on the
// depth with the most tokens per second, and one slow early sample (warm-up,
// another process) must not keep it away from a depth for good.
#include "engine/spec_depth.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>
#include <string>

namespace mimo {
namespace {

// Runs `steps` decode steps in which a step at depth d costs cost(d, step)
// seconds and draft k is accepted with probability a[k] once the drafts
// before it were (seeded draws, up to 8 requests a step); returns how often
// each depth was chosen in the last `tail` steps.
// a[d][k]: draft k's acceptance in a step at depth d.
using ByDepth = std::array<std::array<double, 3>, 4>;
std::array<int, 4> simulate_by_depth(SpecDepthController& c, int steps, int tail, const ByDepth& a,
                            const std::function<double(int, int)>& cost, int batch = 1) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> u(0, 1);
  std::array<int, 4> chosen{};
  for (int i = 0; i < steps; i++) {
    int d = c.choose(batch);
    for (int r = 0; d > 0 && r < std::min(batch, 8); r++) {
      int acc = 0;
      while (acc < d && u(rng) < a[size_t(d)][size_t(acc)]) acc++;
      c.record_verify(d, acc);
    }
    c.observe(d, batch, cost(d, i));
    if (i >= steps - tail) chosen[size_t(d)]++;
  }
  return chosen;
}
std::array<int, 4> simulate(SpecDepthController& c, int steps, int tail, std::array<double, 3> a,
                            const std::function<double(int, int)>& cost, int batch = 1) {
  return simulate_by_depth(c, steps, tail, ByDepth{a, a, a, a}, cost, batch);
}
std::array<int, 4> simulate(SpecDepthController& c, int steps, int tail, double a,
                            const std::function<double(int, int)>& cost, int batch = 1) {
  return simulate(c, steps, tail, {a, a, a}, cost, batch);
}

// A step at depth d costs (1 + per_draft * d) ms.
std::function<double(int, int)> linear_cost(double per_draft) {
  return [per_draft](int d, int) { return 1e-3 * (1 + per_draft * d); };
}

// "n0 n1 n2 n3" for failure messages.
std::string mix(const std::array<int, 4>& got) {
  return std::to_string(got[0]) + " " + std::to_string(got[1]) + " " + std::to_string(got[2]) + " " +
         std::to_string(got[3]);
}

TEST(SpecDepth, ComputeBoundPicksNoDrafts) {
  SpecDepthController c(3);
  // Each drafted token costs more than it is likely to earn.
  auto got = simulate(c, 200, 100, 0.7, linear_cost(1.2));
  EXPECT_GE(got[0], 85) << mix(got);
}

TEST(SpecDepth, MemoryBoundPicksFullDepth) {
  SpecDepthController c(3);
  // A verify of 4 tokens costs about one: deep drafting pays.
  auto got = simulate(c, 200, 100, 0.8, linear_cost(0.1));
  EXPECT_GE(got[3], 85) << mix(got);
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
  EXPECT_GE(got[0], 85) << mix(got);
}

TEST(SpecDepth, FollowsACostThatChanges) {
  SpecDepthController c(3);
  // Memory-bound for 200 steps, then compute-bound (the batch's context grew).
  auto got = simulate(c, 400, 100, 0.8, [](int d, int step) {
    return step < 200 ? 1e-3 * (1 + 0.1 * d) : 1e-3 * (1 + 1.5 * d);
  });
  EXPECT_GE(got[0], 85) << mix(got);
}

TEST(SpecDepth, ANewBatchSizeStartsFromTheNearestOneInsteadOfExploring) {
  SpecDepthController c(3);
  auto compute_bound = linear_cost(1.2);
  simulate(c, 100, 0, 0.7, compute_bound, 32);
  // The batch shrinks (requests finish): the first steps at batch 16 must
  // not be spent trying every depth twice.
  auto got = simulate(c, 20, 20, 0.7, compute_bound, 16);
  EXPECT_GE(got[0], 15) << mix(got);
}

TEST(SpecDepth, ReMeasuringClearlyWorseDepthsCostsLittle) {
  SpecDepthController c(3);
  // Compute-bound: depths 1-3 lose 0.5, 1.2 and 2.1 ms a step against
  // depth 0's 1 ms; depth 1 (the only neighbour) is re-measured, three
  // steps at a time, every ~150 steps (a fixed 16-step schedule over all
  // depths was 6% of all steps, 12% with pairs).
  auto got = simulate(c, 1000, 800, 0.7, linear_cost(1.2));
  EXPECT_GE(got[0], 760) << mix(got);
}

TEST(SpecDepth, ColdStepsAfterASwitchDoNotHideABetterDepth) {
  SpecDepthController c(3);
  // Depth 1 is the best (1.9 tokens for 1.3 ms against 1 for 1 ms), but the
  // first step at a depth after a switch costs 2x (catch-up) and the second
  // 1.6x (cold caches). Sampling the second step made depth 1 look worse
  // than depth 0 (2.08 ms) whenever it was re-measured from depth 0.
  int prev = -1, streak = 0;
  auto got = simulate(c, 600, 300, {0.9, 0.3, 0.3}, [&](int d, int) {
    streak = d == prev ? streak + 1 : 1;
    prev = d;
    const double t = d == 0 ? 1e-3 : d == 1 ? 1.3e-3 : 1e-3 * (1 + 0.7 * d);
    return t * (streak == 1 ? 2.0 : streak == 2 ? 1.6 : 1.0);
  });
  EXPECT_GE(got[1], 270) << mix(got);
}

TEST(SpecDepth, OnlyTheBestDepthsNeighboursAreMeasured) {
  SpecDepthController c(3);
  // Compute-bound: depth 1 already loses to depth 0, so depths 2 and 3
  // (which would cost 4x and 5.5x a plain step) are never run.
  auto got = simulate(c, 300, 300, 0.7, linear_cost(1.5));
  EXPECT_EQ(got[2] + got[3], 0) << mix(got);
  EXPECT_GT(got[1], 0) << "depth 1 is measured";
}

TEST(SpecDepth, AcceptanceIsCountedPerPosition) {
  SpecDepthController c(3);
  // Draft 1 always right, draft 2 always wrong: a verify of 3 drafts
  // accepts 1 and says nothing about draft 3. (Depth 3's correction still
  // carries a trace of the first verifies, predicted from the prior.)
  for (int i = 0; i < 400; i++) c.record_verify(3, 1);
  EXPECT_NEAR(c.expected_tokens(0), 1.0, 1e-9);
  EXPECT_NEAR(c.expected_tokens(1), 2.0, 1e-3);
  EXPECT_NEAR(c.expected_tokens(2), 2.0, 1e-3);
  EXPECT_NEAR(c.expected_tokens(3), 2.0, 5e-3);
  // A depth-1 verify that accepts its one draft is one more success for
  // position 1 and no news for position 2.
  SpecDepthController d(3);
  for (int i = 0; i < 400; i++) d.record_verify(1, 1);
  EXPECT_NEAR(d.expected_tokens(1), 2.0, 1e-3);
  EXPECT_NEAR(d.expected_tokens(2) - d.expected_tokens(1), 0.7, 1e-3);  // still the prior
}

TEST(SpecDepth, AcceptanceThatDependsOnTheDepthIsMeasuredPerDepth) {
  // Batch 1 on the default model: MTP layer 1's drafts are accepted 92% of
  // the time in depth-1 steps but 78% in depth-2 and 81% in depth-3 steps
  // (hard tokens come in runs, and the depth decides where the next step
  // starts; per-position counts of `bench-spec` at each fixed depth). Steps
  // cost 0.32, 0.49, 0.65 and 0.82 ms. Depth 1 makes 3.92 tokens/ms, depth 2
  // 3.65, depth 3 3.62, depth 0 3.12. Pooled over depths, the 92% of the
  // depth-1 steps made depth 2 look like 4.05 (2.63 tokens), and once at
  // depth 2 its 78% made depth 1 look like 3.63: it stayed at depth 2.
  const ByDepth a = {{{0, 0, 0}, {0.92, 0, 0}, {0.78, 0.76, 0}, {0.81, 0.80, 0.79}}};
  const double ms[4] = {0.32, 0.49, 0.65, 0.82};
  SpecDepthController c(3);
  auto got = simulate_by_depth(c, 1500, 1000, a, [&](int d, int) { return 1e-3 * ms[d]; });
  EXPECT_GE(got[1], 850) << mix(got);
}

TEST(SpecDepth, AGoodFirstLayerAndPoorDeeperOnesPickDepthOne) {
  SpecDepthController c(3);
  // MTP layer 1 is right 90% of the time, layers 2 and 3 20%; drafting
  // costs 30% of a step per layer. Depth 1: 1.9 tokens / 1.3; depth 2:
  // 2.08 / 1.6; depth 3: 2.12 / 1.9; depth 0: 1 / 1.
  auto got = simulate(c, 300, 100, {0.9, 0.2, 0.2}, linear_cost(0.3));
  EXPECT_GE(got[1], 80) << mix(got);
}

TEST(SpecDepth, ASharedMachinesChangingSpeedDoesNotMisleadIt) {
  // Depth 1 earns 12% more than depth 0 (1.9 tokens for 1.7x the time),
  // but the machine's speed changes under it: other load makes every step
  // 1.6x slower for a while, then goes away, and again. A depth measured in
  // a slow spell must not look worse for long than one measured in a fast
  // spell: the medians follow each depth's recent samples and the
  // neighbours are measured again.
  for (int period : {60, 90, 130}) {
    SpecDepthController c(3);
    auto got = simulate(c, 1200, 1000, {0.9, 0.2, 0.2}, [&](int d, int step) {
      const double slow = (step / period) % 2 ? 1.6 : 1.0;
      return slow * 1e-3 * (d == 0 ? 1.0 : 1.0 + 0.7 * d);
    });
    EXPECT_GE(got[1], 850) << "period " << period << ": " << mix(got);
  }
}

// Batch 1 on the default model as measured on the 2-vCPU VM (per-step trace
// of `bench-spec --batch-sizes 1`): steps at depths 0-3 take 0.30, 0.47,
// 0.66 and 0.84 ms, each with lognormal noise (sigma 0.1) and 2% of steps
// twice as slow (other load); the first steps after a switch cost 8, 8, 6
// and 3% more (catch-up, cold caches); MTP layers draft 95%, 62%, 62%
// right, and a layer that sat idle for more than 3 steps drafts 25%, 15%
// and 10% worse in its first three steps (its KV caught up approximately).
// Returns auto's tokens per second over the best fixed depth's (which
// pays the same noise), one 700-step run (five 256-token requests) per seed.
double noisy_batch_one(uint32_t seed) {
  const double base[4] = {0.30e-3, 0.47e-3, 0.66e-3, 0.84e-3}, p[3] = {0.95, 0.62, 0.62};
  const double stale[3] = {0.75, 0.85, 0.9}, warm[4] = {1.08, 1.08, 1.06, 1.03};
  constexpr double kSigma = 0.1, kSpikes = 0.02;
  double best = 0;
  for (int d = 0; d <= 3; d++) {
    double e = 1, q = 1;
    for (int k = 0; k < d; k++) e += q *= p[k];
    best = std::max(best, e / base[d]);
  }
  best /= (1 + kSpikes) * std::exp(kSigma * kSigma / 2);  // the mean noise every depth pays
  std::mt19937 rng(seed);
  std::normal_distribution<double> noise(0, kSigma);
  std::uniform_real_distribution<double> u(0, 1);
  SpecDepthController c(3);
  int run[3] = {}, gap[3] = {}, idle[3] = {}, prev = -1, streak = 0;
  double seconds = 0, tokens = 0;
  for (int i = 0; i < 700; i++) {
    const int d = c.choose(1);
    for (int k = 0; k < 3; k++) {
      if (k >= d) {
        run[k] = 0, gap[k]++;
        continue;
      }
      if (run[k]++ == 0) idle[k] = gap[k];
      gap[k] = 0;
    }
    int acc = 0;
    while (acc < d && u(rng) < p[acc] * (idle[acc] > 3 && run[acc] <= 3 ? stale[run[acc] - 1] : 1.0)) acc++;
    if (d > 0) c.record_verify(d, acc);
    streak = d == prev ? streak + 1 : 1;
    prev = d;
    double t = base[d] * std::exp(noise(rng)) * (streak <= 4 ? warm[streak - 1] : 1.0);
    if (u(rng) < kSpikes) t *= 2;
    c.observe(d, 1, t);
    seconds += t;
    tokens += 1 + acc;
  }
  return tokens / seconds / best;
}

TEST(SpecDepth, NoisyBatchOneStaysNearTheBestDepth) {
  // Depth 1 is the best (4.15 tokens/ms), depth 2 7% and depth 0 20% behind:
  // close enough for step noise to mislead a controller that trusts a few
  // samples or re-measures often. (With the median of 5 samples and re-
  // measures at 1% of the time: mean 96.1%, worst of 100 runs 86.5%; with
  // 9 and 0.5%: 97.4% and 94.2%.)
  double sum = 0, worst = 1;
  for (uint32_t seed = 1; seed <= 100; seed++) {
    const double e = noisy_batch_one(seed);
    sum += e, worst = std::min(worst, e);
  }
  EXPECT_GE(sum / 100, 0.97);
  EXPECT_GE(worst, 0.90);
}

}  // namespace
}  // namespace mimo
