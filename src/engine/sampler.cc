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

namespace {

// Orders tokens most likely first: higher logit, then lower id. A strict
// total order, so every selection below has one answer.
struct ByLogit {
  const float* l;
  bool operator()(int32_t a, int32_t b) const { return l[a] > l[b] || (l[a] == l[b] && a < b); }
};

// Moves the shortest ByLogit-prefix of idx[0, n) whose mass (prob[i] is
// token i's weight) reaches `target` to the front; returns its length.
// Expected O(n): a quickselect that partitions around a pivot and descends
// into the side holding the cut, never sorting the whole list.
size_t mass_prefix(int32_t* idx, size_t n, const double* prob, double target, ByLogit before) {
  size_t lo = 0, hi = n;  // the cut lies in [lo, hi); everything before lo is in
  double acc = 0;         // mass of idx[0, lo)
  while (hi - lo > 32) {
    // Median of three as the pivot, moved to the end of the range.
    int32_t* a = idx + lo;
    int32_t* m = idx + lo + (hi - lo) / 2;
    int32_t* z = idx + hi - 1;
    if (before(*m, *a)) std::swap(*m, *a);
    if (before(*z, *a)) std::swap(*z, *a);
    if (before(*z, *m)) std::swap(*z, *m);
    std::swap(*m, *z);
    const int32_t pivot = *z;
    size_t mid = lo;
    double mass = 0;
    for (size_t i = lo; i + 1 < hi; i++)
      if (before(idx[i], pivot)) {
        mass += prob[idx[i]];
        std::swap(idx[i], idx[mid++]);
      }
    std::swap(idx[mid], idx[hi - 1]);  // the pivot between the two sides
    if (acc + mass >= target) {
      hi = mid;
    } else if (acc + mass + prob[pivot] >= target) {
      return mid + 1;
    } else {
      acc += mass + prob[pivot];
      lo = mid + 1;
    }
  }
  std::sort(idx + lo, idx + hi, before);
  for (size_t i = lo; i < hi; i++) {
    acc += prob[idx[i]];
    if (acc >= target) return i + 1;
  }
  return hi;  // rounding left the target just out of reach: keep the range
}

}  // namespace

Sampler::Candidates Sampler::candidates(const float* logits, int64_t V) const {
  // Linear time in V (a sampled token must not cost a sort of the
  // vocabulary): select top-k, weigh, cut top-p by quickselect on mass,
  // drop below min-p, then list the survivors in token-id order.
  thread_local std::vector<int32_t> idx;
  thread_local std::vector<double> prob;  // by token id; set for idx[0, keep) only
  thread_local std::vector<uint8_t> kept;
  idx.resize(static_cast<size_t>(V));
  prob.resize(static_cast<size_t>(V));
  std::iota(idx.begin(), idx.end(), 0);
  const ByLogit before{logits};
  size_t keep = size_t(V);
  if (p_.top_k > 0 && p_.top_k < V) {
    keep = size_t(p_.top_k);
    if (keep * 16 < size_t(V))  // a heap of k: most tokens cost one comparison
      std::partial_sort(idx.begin(), idx.begin() + int64_t(keep), idx.end(), before);
    else
      std::nth_element(idx.begin(), idx.begin() + int64_t(keep - 1), idx.end(), before);
  }
  float mx = logits[0];  // the most likely token is in every kept set
  for (int64_t t = 1; t < V; t++) mx = logits[t] > mx ? logits[t] : mx;
  // Weights in float (expf is several times cheaper than exp, and 1e-7 of
  // relative error is far below what sampling can tell), summed in double.
  const float inv_t = 1.0f / p_.temperature;
  double sum = 0;
  for (size_t i = 0; i < keep; i++) {
    const int32_t t = idx[i];
    sum += prob[size_t(t)] = double(std::exp((logits[t] - mx) * inv_t));
  }
  if (p_.top_p < 1.0f) keep = mass_prefix(idx.data(), keep, prob.data(), double(p_.top_p) * sum, before);
  // min-p: the tail below min_p x the most likely token's weight (1 here).
  // Survivors in id order: sorted when few, by a mask walk when many.
  Candidates c;
  auto add = [&](int32_t t) {
    const double q = prob[size_t(t)];
    if (q < p_.min_p) return;
    c.idx.push_back(t);
    c.total += c.prob.emplace_back(q / sum);
  };
  c.idx.reserve(keep);
  c.prob.reserve(keep);
  if (keep == size_t(V)) {  // nothing cut: idx is still 0..V-1
    for (int32_t t = 0; t < V; t++) add(t);
  } else if (keep * 8 < size_t(V)) {
    std::sort(idx.begin(), idx.begin() + int64_t(keep));
    for (size_t i = 0; i < keep; i++) add(idx[i]);
  } else {
    kept.assign(static_cast<size_t>(V), 0);
    for (size_t i = 0; i < keep; i++) kept[size_t(idx[i])] = 1;
    for (int32_t t = 0; t < V; t++)
      if (kept[size_t(t)]) add(t);
  }
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
    // One uniform draw over the kept mass, walked in token-id order.
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
