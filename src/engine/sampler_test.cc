// Speculative sampling is exact: accepting a deterministic draft x with
// probability p(x), else drawing from p without x, yields samples
// distributed as p. Checked with a chi-square test that must also catch a
// deliberately biased acceptance.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "core/error.h"
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
      l = logits;
      int32_t t = s.verify(l.data(), V, {}, {}, {}, draft, s.uniform(), s.uniform());
      exact[size_t(t)]++;
      // Biased: accept the draft half again as often as p(draft) says (a
      // rejection is forced by u_accept = 1).
      double u = std::uniform_real_distribution<double>(0, 1)(g);
      l = logits;
      int32_t b = u < std::min(1.0, 1.5 * p[size_t(draft)]) ? draft : s.verify(l.data(), V, {}, {}, {}, draft, 1.0f, s.uniform());
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
  EXPECT_EQ(s.verify(l.data(), 3, {}, {}, {}, 1, 0.99f, 0.5f), 1);  // accepted: the draft itself
  EXPECT_EQ(s.verify(l.data(), 3, {}, {}, {}, 0, 0.0f, 0.5f), 1);   // rejected: the argmax
}

TEST(SpeculativeSampling, TheTokenIsTheDraftExactlyWhenAccepted) {
  // The engine reads acceptance off the token: a rejected draft must never
  // come back from the residual draw, whatever the uniforms.
  SamplingParams sp;
  sp.temperature = 1.0f;
  Sampler s(sp);
  const std::vector<float> logits = {0.0f, 5.0f, 0.5f, 0.2f};
  for (float ud : {0.0f, 0.3f, 0.9999f})
    for (int32_t x = 0; x < 4; x++) {
      std::vector<float> l = logits;
      EXPECT_NE(s.verify(l.data(), 4, {}, {}, {}, x, 1.0f, ud), x) << "draft " << x << " u_draw " << ud;
    }
}

// The kept set, by the definition: sort most likely first (ties: lower id
// first), take top-k, then the shortest prefix with mass >= top_p, then
// drop what is below min_p x the top probability.
Sampler::Dist reference_distribution(const std::vector<float>& l, const SamplingParams& sp) {
  const int64_t V = int64_t(l.size());
  std::vector<int32_t> idx(static_cast<size_t>(V));
  std::iota(idx.begin(), idx.end(), 0);
  std::sort(idx.begin(), idx.end(), [&](int32_t a, int32_t b) { return l[a] > l[b] || (l[a] == l[b] && a < b); });
  if (sp.top_k > 0 && sp.top_k < V) idx.resize(size_t(sp.top_k));
  std::vector<double> q;
  double sum = 0;
  for (int32_t t : idx) sum += q.emplace_back(std::exp((double(l[t]) - l[idx[0]]) / sp.temperature));
  size_t keep = idx.size();
  double acc = 0;
  for (size_t i = 0; i < idx.size() && sp.top_p < 1; i++)
    if ((acc += q[i]) >= sp.top_p * sum) {
      keep = i + 1;
      break;
    }
  Sampler::Dist d;
  double total = 0;
  for (size_t i = 0; i < keep; i++)
    if (q[i] >= sp.min_p) total += q[i], d.push_back({idx[i], q[i]});
  for (auto& [t, p] : d) p /= total;
  std::sort(d.begin(), d.end());
  return d;
}

TEST(Sampling, KeptTokensFollowTheDefinition) {
  // Vocabularies big enough for the quickselect to partition many times,
  // logits on a coarse grid so that ties straddle every cut.
  std::mt19937_64 g(11);
  for (int trial = 0; trial < 300; trial++) {
    const int64_t V = std::uniform_int_distribution<int64_t>(1, 3000)(g);
    std::vector<float> l(static_cast<size_t>(V));
    const float grid = trial % 2 ? 0.25f : 1e-3f;
    for (auto& x : l) x = grid * float(std::uniform_int_distribution<int>(-40, 40)(g)) / (trial % 3 ? 1.0f : 0.05f);
    SamplingParams sp;
    sp.temperature = std::uniform_real_distribution<float>(0.2f, 2.0f)(g);
    if (trial % 4 != 0) sp.top_p = std::uniform_real_distribution<float>(0.05f, 1.0f)(g);
    if (trial % 3 == 1) sp.top_k = std::uniform_int_distribution<int>(1, 200)(g);
    if (trial % 5 == 2) sp.min_p = std::uniform_real_distribution<float>(0.0f, 0.5f)(g);
    Sampler s(sp);
    std::vector<float> work = l;
    Sampler::Dist got = s.distribution(work.data(), V, {}, {}, {}), want = reference_distribution(l, sp);
    if (sp.top_k == 1) want = {{want[0].first, 1.0}};
    ASSERT_EQ(got.size(), want.size()) << "trial " << trial << " V " << V;
    for (size_t i = 0; i < got.size(); i++) {
      ASSERT_EQ(got[i].first, want[i].first) << "trial " << trial;
      ASSERT_NEAR(got[i].second, want[i].second, 1e-6) << "trial " << trial;
    }
  }
}

TEST(Sampling, SampleDrawsFromTheDistribution) {
  // sample() (one uniform walked over the kept mass) against distribution().
  SamplingParams sp;
  sp.temperature = 0.9f;
  sp.top_p = 0.9f;
  sp.seed = 5;
  const std::vector<float> logits = {0.5f, 1.5f, -2.0f, 1.0f, 0.0f, 1.5f, -0.3f, 0.8f};
  const int V = int(logits.size()), N = 20000;
  Sampler s(sp);
  std::vector<float> work = logits;
  Sampler::Dist d = s.distribution(work.data(), V, {}, {}, {});
  std::vector<double> p;
  std::vector<int> slot(static_cast<size_t>(V), -1), counts(d.size(), 0);
  for (auto& [t, q] : d) slot[size_t(t)] = int(p.size()), p.push_back(q);
  for (int i = 0; i < N; i++) {
    work = logits;
    int32_t t = s.sample(work.data(), V, {}, {}, {});
    ASSERT_GE(slot[size_t(t)], 0) << "token " << t << " is outside the kept set";
    counts[size_t(slot[size_t(t)])]++;
  }
  // chi-square critical value at p = 0.001 for up to 7 degrees of freedom: 24.3
  EXPECT_LT(chi_square(counts, p, N), 24.3);
}

TEST(Sampling, LogitBiasShiftsTheDistribution) {
  const std::vector<float> logits = {2.0f, 1.0f, 0.5f, 0.0f};
  const int V = int(logits.size());
  // Greedy: +100 forces a token, -100 all but bans the argmax.
  SamplingParams g;
  g.logit_bias = {{3, 100.0f}};
  std::vector<float> w = logits;
  EXPECT_EQ(Sampler(g).sample(w.data(), V, {}, {}, {}), 3);
  g.logit_bias = {{0, -100.0f}};
  w = logits;
  EXPECT_EQ(Sampler(g).sample(w.data(), V, {}, {}, {}), 1);
  // Sampled: the distribution is softmax(logits + bias), after the penalties.
  SamplingParams sp;
  sp.temperature = 1.0f;
  sp.frequency_penalty = 0.5f;
  sp.logit_bias = {{2, 1.5f}, {0, -1.0f}};
  w = logits;
  Sampler::Dist d = Sampler(sp).distribution(w.data(), V, {}, {2}, {});
  std::vector<double> want = {2.0 - 1.0, 1.0, 0.5 - 0.5 + 1.5, 0.0}, got(size_t(V), 0.0);
  double z = 0;
  for (double& x : want) z += x = std::exp(x);
  for (auto& [t, q] : d) got[size_t(t)] = q;
  for (int t = 0; t < V; t++) EXPECT_NEAR(got[size_t(t)], want[size_t(t)] / z, 1e-5) << t;
  // Out of range: refused by name.
  SamplingParams bad;
  bad.logit_bias = {{1, 101.0f}};
  EXPECT_THROW(validate(bad), Error);
  bad.logit_bias = {{-1, 1.0f}};
  EXPECT_THROW(validate(bad), Error);
}

}  // namespace
}  // namespace mimo
