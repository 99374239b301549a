#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"

namespace mimo {

void validate(const SamplingParams& p) {
  if (!(p.temperature >= 0) || !std::isfinite(p.temperature)) fail("temperature must be >= 0, got {}", p.temperature);
  if (!(p.top_p > 0 && p.top_p <= 1)) fail("top_p must be in (0, 1], got {}", p.top_p);
  if (p.top_k < -1 || p.top_k == 0) fail("top_k must be -1 (all) or positive, got {}", p.top_k);
  if (!(p.min_p >= 0 && p.min_p <= 1)) fail("min_p must be in [0, 1], got {}", p.min_p);
  if (!(p.repetition_penalty > 0 && p.repetition_penalty <= 2))
    fail("repetition_penalty must be in (0, 2], got {}", p.repetition_penalty);
  if (!(p.frequency_penalty >= -2 && p.frequency_penalty <= 2))
    fail("frequency_penalty must be in [-2, 2], got {}", p.frequency_penalty);
  if (!(p.presence_penalty >= -2 && p.presence_penalty <= 2))
    fail("presence_penalty must be in [-2, 2], got {}", p.presence_penalty);
  if (p.max_new_tokens < 0) fail("max_new_tokens must be >= 0, got {}", p.max_new_tokens);
  if (p.min_new_tokens < 0) fail("min_new_tokens must be >= 0, got {}", p.min_new_tokens);
  if (p.min_new_tokens > p.max_new_tokens && p.max_new_tokens > 0)
    fail("min_new_tokens ({}) exceeds max_new_tokens ({})", p.min_new_tokens, p.max_new_tokens);
  if (p.logprobs > 20) fail("top_logprobs must be <= 20, got {}", p.logprobs);
  for (auto& s : p.stop)
    if (s.empty()) fail("stop strings must not be empty");
}

Sampler::Sampler(const SamplingParams& p, uint64_t default_seed) : p_(p), rng_(p.seed.value_or(default_seed)) {}

int32_t argmax(const float* x, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; i++)
    if (x[i] > x[best]) best = i;
  return int32_t(best);
}

void logprobs_of(const float* logits, int64_t V, int32_t token, int top_n, TokenLogprob* out) {
  double mx = logits[argmax(logits, V)], sum = 0;
  for (int64_t i = 0; i < V; i++) sum += std::exp(double(logits[i]) - mx);
  double lse = mx + std::log(sum);
  out->token = token;
  out->logprob = float(double(logits[token]) - lse);
  out->top.clear();
  if (top_n > 0) {
    std::vector<int32_t> idx(static_cast<size_t>(V));
    std::iota(idx.begin(), idx.end(), 0);
    int64_t k = std::min<int64_t>(top_n, V);
    std::partial_sort(idx.begin(), idx.begin() + k, idx.end(),
                      [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); });
    for (int64_t i = 0; i < k; i++) out->top.push_back({idx[size_t(i)], float(double(logits[idx[size_t(i)]]) - lse)});
  }
}

void Sampler::apply_penalties(float* logits, int64_t V, const std::vector<int32_t>& prompt,
                              const std::vector<int32_t>& output, const std::vector<int32_t>& forbid) const {
  if (p_.repetition_penalty != 1.0f) {
    std::vector<bool> seen(static_cast<size_t>(V), false);
    for (auto* list : {&prompt, &output})
      for (int32_t t : *list)
        if (t >= 0 && t < V && !seen[size_t(t)]) {
          seen[size_t(t)] = true;
          float& l = logits[t];
          l = l > 0 ? l / p_.repetition_penalty : l * p_.repetition_penalty;
        }
  }
  if (p_.frequency_penalty != 0.0f || p_.presence_penalty != 0.0f) {
    std::unordered_map<int32_t, int> counts;
    for (int32_t t : output) counts[t]++;
    for (auto& [t, c] : counts)
      if (t >= 0 && t < V) logits[t] -= p_.frequency_penalty * float(c) + p_.presence_penalty;
  }
  for (int32_t t : forbid)
    if (t >= 0 && t < V) logits[t] = -INFINITY;
}

bool Sampler::greedy() const { return p_.temperature <= 1e-6f || p_.top_k == 1; }

Sampler::Candidates Sampler::candidates(const float* logits, int64_t V) const {
  Candidates c;
  int64_t k = (p_.top_k > 0 && p_.top_k < V) ? p_.top_k : V;
  c.idx.resize(static_cast<size_t>(V));
  std::iota(c.idx.begin(), c.idx.end(), 0);
  auto by_logit = [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  if (k < V) {
    std::partial_sort(c.idx.begin(), c.idx.begin() + k, c.idx.end(), by_logit);
    c.idx.resize(size_t(k));
  } else {
    std::sort(c.idx.begin(), c.idx.end(), by_logit);
  }
  c.prob.resize(c.idx.size());
  double mx = logits[c.idx[0]], sum = 0;
  for (size_t i = 0; i < c.idx.size(); i++) sum += c.prob[i] = std::exp((double(logits[c.idx[i]]) - mx) / p_.temperature);
  for (auto& q : c.prob) q /= sum;
  size_t keep = c.prob.size();
  if (p_.top_p < 1.0f) {  // smallest prefix with mass >= top_p
    double acc = 0;
    for (size_t i = 0; i < c.prob.size(); i++) {
      acc += c.prob[i];
      if (acc >= p_.top_p) {
        keep = i + 1;
        break;
      }
    }
  }
  if (p_.min_p > 0)
    while (keep > 1 && c.prob[keep - 1] < p_.min_p * c.prob[0]) keep--;
  c.idx.resize(keep);
  c.prob.resize(keep);
  for (double q : c.prob) c.total += q;
  return c;
}

int32_t Sampler::sample(float* logits, int64_t V, const std::vector<int32_t>& prompt, const std::vector<int32_t>& output,
                        const std::vector<int32_t>& forbid, TokenLogprob* lp) {
  // Penalties first: they shape the distribution that logprobs report.
  apply_penalties(logits, V, prompt, output, forbid);
  int32_t tok;
  if (greedy()) {
    tok = argmax(logits, V);
  } else {
    // One uniform draw over the kept mass, walked in logit order.
    Candidates c = candidates(logits, V);
    double u = std::uniform_real_distribution<double>(0.0, c.total)(rng_);
    tok = c.idx.back();
    for (size_t i = 0; i < c.idx.size(); i++) {
      u -= c.prob[i];
      if (u < 0) {
        tok = c.idx[i];
        break;
      }
    }
  }
  if (lp) logprobs_of(logits, V, tok, std::max(0, p_.logprobs), lp);
  return tok;
}

Sampler::Dist Sampler::distribution(float* logits, int64_t V, const std::vector<int32_t>& prompt,
                                    const std::vector<int32_t>& output, const std::vector<int32_t>& forbid) {
  apply_penalties(logits, V, prompt, output, forbid);
  Dist d;
  if (greedy()) {
    d.push_back({argmax(logits, V), 1.0});
    return d;
  }
  Candidates c = candidates(logits, V);
  for (size_t i = 0; i < c.idx.size(); i++)
    if (c.prob[i] > 0) d.push_back({c.idx[i], c.prob[i] / c.total});
  std::sort(d.begin(), d.end());
  return d;
}

int32_t Sampler::draw(const Dist& d) {
  if (d.size() == 1) return d[0].first;
  double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
  for (auto& [t, p] : d) {
    u -= p;
    if (u < 0) return t;
  }
  return d.back().first;
}

bool Sampler::accept(const Dist& d, int32_t x) {
  auto it = std::lower_bound(d.begin(), d.end(), std::make_pair(x, -1.0));
  double px = (it != d.end() && it->first == x) ? it->second : 0.0;
  if (px >= 1.0) return true;
  if (px <= 0.0) return false;
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng_) < px;
}

int32_t Sampler::draw_residual(const Dist& d, int32_t x) {
  Dist r;
  for (auto& [t, p] : d)
    if (t != x) r.push_back({t, p});
  double total = 0;
  for (auto& [_, p] : r) total += p;
  if (r.empty() || total <= 0) return x;
  for (auto& [_, p] : r) p /= total;
  return draw(r);
}

}  // namespace mimo
