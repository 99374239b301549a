// Speculative sampling is exact: accepting a deterministic draft x with
// probability p(x), else drawing from p without x, yields samples
// distributed as p. Checked with a chi-square test that must also catch a
// deliberately biased acceptance.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/sampler.h"

namespace mimo {
namespace {

double chi_square(const std::vector<int>& counts, const std::vector<double>& p, int n) {
  double x = 0;
  for (size_t i = 0; i < p.size(); i++) {
    double e = p[i] * n;
    x += (counts[i] - e) * (counts[i] - e) / e;
  }
  return x;
}

TEST(SpeculativeSampling, MatchesTargetDistribution) {
  SamplingParams sp;
  sp.temperature = 0.8f;
  sp.seed = 42;
  Sampler s(sp);
  const int V = 6, N = 20000;
  std::vector<float> logits = {1.0f, 0.2f, -0.5f, 2.0f, 0.0f, -1.0f};
  std::vector<float> l = logits;
  Sampler::Dist d = s.distribution(l.data(), V, {}, {}, {});
  std::vector<double> p(V, 0.0);
  for (auto& [t, q] : d) p[size_t(t)] = q;
  // chi-square critical value for 5 degrees of freedom at p = 0.001: 20.5
  for (int32_t draft : {0, 3, 5}) {
    std::vector<int> exact(V, 0), biased(V, 0);
    std::mt19937_64 g(7);
    for (int i = 0; i < N; i++) {
      int32_t t = s.accept(d, draft) ? draft : s.draw_residual(d, draft);
      exact[size_t(t)]++;
      // Biased: accept the draft half again as often as p(draft) says.
      double u = std::uniform_real_distribution<double>(0, 1)(g);
      int32_t b = u < std::min(1.0, 1.5 * p[size_t(draft)]) ? draft : s.draw_residual(d, draft);
      biased[size_t(b)]++;
    }
    EXPECT_LT(chi_square(exact, p, N), 20.5) << "draft " << draft;
    EXPECT_GT(chi_square(biased, p, N), 20.5) << "draft " << draft << ": the test must catch biased acceptance";
  }
}

TEST(SpeculativeSampling, GreedyAcceptsOnlyTheArgmax) {
  SamplingParams sp;
  Sampler s(sp);
  std::vector<float> l = {0.1f, 3.0f, 0.2f};
  Sampler::Dist d = s.distribution(l.data(), 3, {}, {}, {});
  EXPECT_TRUE(s.accept(d, 1));
  EXPECT_FALSE(s.accept(d, 0));
  EXPECT_EQ(s.draw_residual(d, 0), 1);
}

}  // namespace
}  // namespace mimo
