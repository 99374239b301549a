// Which tokens a sampled request may draw, and the draw itself: the one
// definition behind the host sampler (engine/sampler.h) and every backend's
// sample op, so a request gets the same token whichever of them decides it.
//
// Kept set: order tokens most likely first (higher logit, then lower id);
// top-k keeps the first k, top-p the shortest prefix of those whose
// temperature-scaled mass reaches top_p of the top-k mass, min-p drops
// tokens whose weight is below min_p x the top weight. The draw walks the
// kept tokens in id order and returns the first whose cumulative weight
// exceeds u x (kept mass), u uniform in [0, 1). Temperature 0 (or top-k 1)
// is greedy: the first maximum.
//
// Speculative verify of a row with a deterministic draft x: accept x when
// u_accept < p(x) (its share of the kept mass), else draw at u_draw from the
// kept set without x. The token that comes out is distributed exactly as a
// plain draw; it equals x exactly when x was accepted. Greedy: the argmax
// (accepted when it is x).
#pragma once

#include <cstdint>
#include <vector>

namespace mimo {

struct SampleParams {
  float temperature = 1.0f;  // <= 1e-6: greedy
  float top_p = 1.0f;
  int top_k = -1;            // <= 0: all
  float min_p = 0.0f;
  bool greedy() const { return temperature <= 1e-6f || top_k == 1; }
};

struct KeptTokens {
  std::vector<int32_t> idx;  // token ids, increasing
  std::vector<double> w;     // their weights exp((l - max) / T) (the top token's is 1)
  double topk_mass = 0;      // sum of the weights top-k kept (top-p's reference)
  double mass = 0;           // sum of w
};

// Linear time in V (no sort of the vocabulary). Not for greedy params.
void kept_tokens(const float* logits, int64_t V, const SampleParams& p, KeptTokens* out);
// First maximum of x[0, n).
int32_t argmax_row(const float* x, int64_t n);
// One row end to end: argmax when greedy, else kept_tokens and the draw.
int32_t sample_row(const float* logits, int64_t V, const SampleParams& p, float u);
// One row with an optional draft (draft < 0: none, a plain draw at u_draw).
int32_t verify_row(const float* logits, int64_t V, const SampleParams& p, int32_t draft, float u_accept,
                   float u_draw);

}  // namespace mimo
