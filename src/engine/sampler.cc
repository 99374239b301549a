#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "core/error.h"

namespace mimo {

void validate(const SamplingParams& p) {
  if (!(p.temperature >= 0) || !std::isfinite(p.temperature)) fail("temperature must be >= 0, got {}", p.temperature);
  if (!(p.top_p > 0 && p.top_p <= 1)) fail("top_p must be in (0, 1], got {}", p.top_p);
  if (p.top_k < -1) fail("top_k must be -1 (all) or positive, got {}", p.top_k);
  if (!(p.min_p >= 0 && p.min_p <= 1)) fail("min_p must be in [0, 1], got {}", p.min_p);
}

int32_t argmax(const float* x, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; i++)
    if (x[i] > x[best]) best = i;
  return int32_t(best);
}

int32_t Sampler::sample(const float* logits, int64_t V) {
  if (p_.temperature <= 1e-6f || p_.top_k == 1) return argmax(logits, V);
  // Candidates sorted by logit; keep top-k, then softmax with temperature.
  int64_t k = (p_.top_k > 0 && p_.top_k < V) ? p_.top_k : V;
  std::vector<int32_t> idx(static_cast<size_t>(V));
  std::iota(idx.begin(), idx.end(), 0);
  auto by_logit = [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  if (k < V) {
    std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), by_logit);
    idx.resize(size_t(k));
  } else {
    std::sort(idx.begin(), idx.end(), by_logit);
  }
  std::vector<double> prob(idx.size());
  double mx = logits[idx[0]], sum = 0;
  for (size_t i = 0; i < idx.size(); i++) sum += prob[i] = std::exp((double(logits[idx[i]]) - mx) / p_.temperature);
  for (auto& q : prob) q /= sum;
  // top-p: smallest prefix with mass >= top_p; min-p: drop tokens below min_p * max.
  size_t keep = prob.size();
  if (p_.top_p < 1.0f) {
    double c = 0;
    for (size_t i = 0; i < prob.size(); i++) {
      c += prob[i];
      if (c >= p_.top_p) {
        keep = i + 1;
        break;
      }
    }
  }
  if (p_.min_p > 0)
    while (keep > 1 && prob[keep - 1] < p_.min_p * prob[0]) keep--;
  double total = 0;
  for (size_t i = 0; i < keep; i++) total += prob[i];
  double u = std::uniform_real_distribution<double>(0.0, total)(rng_);
  for (size_t i = 0; i < keep; i++) {
    u -= prob[i];
    if (u < 0) return idx[i];
  }
  return idx[keep - 1];
}

}  // namespace mimo
