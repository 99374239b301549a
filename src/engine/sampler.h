// Token sampling on the host from a row of logits: temperature, top-k,
// top-p, min-p, with a per-request generator so the same seed gives the same
// tokens whatever else runs in the batch.
#pragma once

#include <cstdint>
#include <random>

namespace mimo {

struct SamplingParams {
  float temperature = 0.0f;  // 0 = greedy
  float top_p = 1.0f;
  int top_k = -1;            // -1 or 0 = all
  float min_p = 0.0f;
  uint64_t seed = 0;
};

// Validates ranges; mimo::Error names the bad field.
void validate(const SamplingParams& p);

class Sampler {
 public:
  explicit Sampler(const SamplingParams& p) : p_(p), rng_(p.seed) {}
  int32_t sample(const float* logits, int64_t vocab);

 private:
  SamplingParams p_;
  std::mt19937_64 rng_;
};

int32_t argmax(const float* x, int64_t n);

}  // namespace mimo
