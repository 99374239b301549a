#include "ops/sampling.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace mimo {

namespace {

// Most likely first: higher logit, then lower id. A strict total order, so
// every selection below has one answer.
struct ByLogit {
  const float* l;
  bool operator()(int32_t a, int32_t b) const { return l[a] > l[b] || (l[a] == l[b] && a < b); }
};

// Moves the shortest ByLogit-prefix of idx[0, n) whose mass (w[t] is token
// t's weight) reaches `target` to the front; returns its length. Expected
// O(n): a quickselect that partitions around a pivot and descends into the
// side holding the cut, never sorting the whole list.
size_t mass_prefix(int32_t* idx, size_t n, const double* w, double target, ByLogit before) {
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
        mass += w[idx[i]];
        std::swap(idx[i], idx[mid++]);
      }
    std::swap(idx[mid], idx[hi - 1]);  // the pivot between the two sides
    if (acc + mass >= target) {
      hi = mid;
    } else if (acc + mass + w[pivot] >= target) {
      return mid + 1;
    } else {
      acc += mass + w[pivot];
      lo = mid + 1;
    }
  }
  std::sort(idx + lo, idx + hi, before);
  for (size_t i = lo; i < hi; i++) {
    acc += w[idx[i]];
    if (acc >= target) return i + 1;
  }
  return hi;  // rounding left the target just out of reach: keep the range
}

}  // namespace

int32_t argmax_row(const float* x, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; i++)
    if (x[i] > x[best]) best = i;
  return int32_t(best);
}

void kept_tokens(const float* logits, int64_t V, const SampleParams& p, KeptTokens* out) {
  thread_local std::vector<int32_t> idx;
  thread_local std::vector<double> w;  // by token id; set for idx[0, keep) only
  thread_local std::vector<uint8_t> kept;
  idx.resize(static_cast<size_t>(V));
  w.resize(static_cast<size_t>(V));
  std::iota(idx.begin(), idx.end(), 0);
  const ByLogit before{logits};
  size_t keep = size_t(V);
  if (p.top_k > 0 && p.top_k < V) {
    keep = size_t(p.top_k);
    if (keep * 16 < size_t(V))  // a heap of k: most tokens cost one comparison
      std::partial_sort(idx.begin(), idx.begin() + int64_t(keep), idx.end(), before);
    else
      std::nth_element(idx.begin(), idx.begin() + int64_t(keep - 1), idx.end(), before);
  }
  float mx = logits[0];  // the most likely token is in every kept set
  for (int64_t t = 1; t < V; t++) mx = logits[t] > mx ? logits[t] : mx;
  // Weights in float (expf is several times cheaper than exp, and 1e-7 of
  // relative error is far below what sampling can tell), summed in double.
  const float inv_t = 1.0f / p.temperature;
  double sum = 0;
  for (size_t i = 0; i < keep; i++) {
    const int32_t t = idx[i];
    sum += w[size_t(t)] = double(std::exp((logits[t] - mx) * inv_t));
  }
  if (p.top_p < 1.0f) {
    // Tokens lighter than (1 - top_p) x mass / V weigh less than the tail
    // may, all together, and come after every heavier token: the cut lies
    // among the heavier ones, so only those go to the quickselect.
    const double light = (1.0 - double(p.top_p)) * sum / double(keep);
    size_t heavy = 0;
    for (size_t i = 0; i < keep; i++)
      if (w[size_t(idx[i])] >= light) std::swap(idx[i], idx[heavy++]);
    keep = mass_prefix(idx.data(), heavy, w.data(), double(p.top_p) * sum, before);
  }
  // min-p, then the survivors in id order: sorted when few, by a mask walk
  // when many, as they are when nothing was cut.
  out->idx.clear();
  out->w.clear();
  out->idx.reserve(keep);
  out->w.reserve(keep);
  out->topk_mass = sum;
  out->mass = 0;
  auto add = [&](int32_t t) {
    const double q = w[size_t(t)];
    if (q < p.min_p) return;
    out->idx.push_back(t);
    out->mass += out->w.emplace_back(q);
  };
  if (keep == size_t(V)) {
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
}

namespace {

// The kept token (`skip` left out) at which `left` of their weight, walked
// in id order, is used up; the last one when rounding leaves some over.
int32_t walk_kept(const KeptTokens& k, double left, int32_t skip) {
  int32_t last = skip;
  for (size_t i = 0; i < k.idx.size(); i++) {
    if (k.idx[i] == skip) continue;
    last = k.idx[i];
    left -= k.w[i];
    if (left < 0) return k.idx[i];
  }
  return last;
}

}  // namespace

int32_t sample_row(const float* logits, int64_t V, const SampleParams& p, float u) {
  return verify_row(logits, V, p, -1, 0.0f, u);
}

int32_t verify_row(const float* logits, int64_t V, const SampleParams& p, int32_t draft, float u_accept,
                   float u_draw) {
  if (p.greedy()) return argmax_row(logits, V);
  thread_local KeptTokens k;
  kept_tokens(logits, V, p, &k);
  if (draft < 0) return walk_kept(k, double(u_draw) * k.mass, -1);
  auto at = std::lower_bound(k.idx.begin(), k.idx.end(), draft);
  const double wx = at != k.idx.end() && *at == draft ? k.w[size_t(at - k.idx.begin())] : 0.0;
  if (double(u_accept) * k.mass < wx) return draft;
  // The residual: the kept set without x, walked in id order.
  const double rest = k.mass - wx;
  if (!(rest > 0)) return draft;  // x held all the mass (and was accepted above)
  return walk_kept(k, double(u_draw) * rest, draft);
}

}  // namespace mimo
