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
  for (auto [t, b] : p.logit_bias) {
    if (t < 0) fail("logit_bias: token id {} is negative", t);
    if (!(b >= -100 && b <= 100)) fail("logit_bias: the bias of token {} must be in [-100, 100], got {}", t, b);
  }
  if (p.max_new_tokens < 0) fail("max_new_tokens must be >= 0, got {}", p.max_new_tokens);
  if (p.prompt_logprobs_start < -1) fail("logprob_start_len must be >= 0, got {}", p.prompt_logprobs_start);
  if (p.min_new_tokens < 0) fail("min_new_tokens must be >= 0, got {}", p.min_new_tokens);
  if (p.min_new_tokens > p.max_new_tokens && p.max_new_tokens > 0)
    fail("min_new_tokens ({}) exceeds max_new_tokens ({})", p.min_new_tokens, p.max_new_tokens);
  if (p.logprobs > 20) fail("top_logprobs must be <= 20, got {}", p.logprobs);
  for (auto& s : p.stop)
    if (s.empty()) fail("stop strings must not be empty");
}

Sampler::Sampler(const SamplingParams& p, uint64_t default_seed) : p_(p), rng_(p.seed.value_or(default_seed)) {}

void logprobs_of(const float* logits, int64_t V, int32_t token, int top_n, TokenLogprob* out) {
  double mx = logits[argmax_row(logits, V)], sum = 0;
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
  for (auto [t, b] : p_.logit_bias)
    if (t >= 0 && t < V) logits[t] += b;
  for (int32_t t : forbid)
    if (t >= 0 && t < V) logits[t] = -INFINITY;
}

SampleParams Sampler::row_params() const {
  SampleParams sp;
  sp.temperature = p_.temperature;
  sp.top_p = p_.top_p;
  sp.top_k = p_.top_k;
  sp.min_p = p_.min_p;
  return sp;
}

float Sampler::uniform() { return std::uniform_real_distribution<float>(0.0f, 1.0f)(rng_); }

int32_t Sampler::sample(float* logits, int64_t V, const std::vector<int32_t>& prompt, const std::vector<int32_t>& output,
                        const std::vector<int32_t>& forbid, TokenLogprob* lp) {
  // Penalties first: they shape the distribution that logprobs report.
  apply_penalties(logits, V, prompt, output, forbid);
  const SampleParams sp = row_params();
  // One uniform per sampled token, as the engine draws for a backend's sample op.
  const int32_t tok = sp.greedy() ? argmax_row(logits, V) : sample_row(logits, V, sp, uniform());
  if (lp) logprobs_of(logits, V, tok, std::max(0, p_.logprobs), lp);
  return tok;
}

Sampler::Dist Sampler::distribution(float* logits, int64_t V, const std::vector<int32_t>& prompt,
                                    const std::vector<int32_t>& output, const std::vector<int32_t>& forbid) {
  apply_penalties(logits, V, prompt, output, forbid);
  Dist d;
  const SampleParams sp = row_params();
  if (sp.greedy()) {
    d.push_back({argmax_row(logits, V), 1.0});
    return d;
  }
  thread_local KeptTokens k;
  kept_tokens(logits, V, sp, &k);
  for (size_t i = 0; i < k.idx.size(); i++)
    if (k.w[i] > 0) d.push_back({k.idx[i], k.w[i] / k.mass});
  return d;
}

int32_t Sampler::verify(float* logits, int64_t V, const std::vector<int32_t>& prompt,
                        const std::vector<int32_t>& output, const std::vector<int32_t>& forbid, int32_t x,
                        float u_accept, float u_draw) {
  apply_penalties(logits, V, prompt, output, forbid);
  return verify_row(logits, V, row_params(), x, u_accept, u_draw);
}

}  // namespace mimo
