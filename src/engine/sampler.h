// What a request asks of generation (SGLang's sampling_params), and token
// sampling on the host from one row of logits. Every request has its own
// generator, seeded from its seed, so the same seed gives the same tokens
// whatever else runs in the batch.
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "ops/sampling.h"

namespace mimo {

struct SamplingParams {
  float temperature = 0.0f;  // 0 = greedy (the OpenAI layer applies its own default of 1)
  float top_p = 1.0f;
  int top_k = -1;            // -1 = all
  float min_p = 0.0f;
  float repetition_penalty = 1.0f;  // HF style, over prompt and output tokens
  float frequency_penalty = 0.0f;   // OpenAI style, over output tokens
  float presence_penalty = 0.0f;
  std::optional<uint64_t> seed;
  int max_new_tokens = 128;
  int min_new_tokens = 0;
  bool ignore_eos = false;
  std::vector<int32_t> stop_token_ids;
  std::vector<std::string> stop;  // stop strings, matched on decoded text
  bool skip_special_tokens = true;
  int logprobs = -1;  // -1: none; >= 0: return the chosen token's logprob and this many top alternatives
  // OpenAI's logit_bias: added to these tokens' logits after the penalties,
  // before sampling (-100 all but bans a token, +100 all but forces it).
  std::vector<std::pair<int32_t, float>> logit_bias;
  // >= 0: also the logprobs of the prompt's tokens from this position on
  // (SGLang's logprob_start_len; position 0 has none), with `logprobs` top
  // alternatives each.
  int prompt_logprobs_start = -1;
};

// Validates ranges; mimo::Error names the bad field.
void validate(const SamplingParams& p);

struct TokenLogprob {
  int32_t token = 0;
  float logprob = 0;
  std::vector<std::pair<int32_t, float>> top;  // most likely first
};

class Sampler {
 public:
  explicit Sampler(const SamplingParams& p, uint64_t default_seed = 0);
  // Samples from logits (modified in place by penalties). `prompt` and
  // `output` are the request's tokens so far (for penalties); `forbid`
  // lists tokens that may not be chosen now (eos before min_new_tokens).
  int32_t sample(float* logits, int64_t vocab, const std::vector<int32_t>& prompt, const std::vector<int32_t>& output,
                 const std::vector<int32_t>& forbid, TokenLogprob* lp = nullptr);
  std::mt19937_64& rng() { return rng_; }
  // The request's temperature and top-k/top-p/min-p (ops/sampling.h).
  SampleParams row_params() const;
  // The one uniform draw a sampled token takes, in [0, 1): sample() and the
  // engine (for a backend's sample op) both take it from here.
  float uniform();
  // Whether tokens are the argmax (no draws).
  bool greedy() const { return row_params().greedy(); }

  // The distribution sample() draws from, after penalties, temperature,
  // top-k/top-p/min-p (greedy: all mass on the argmax). Sorted by token id.
  using Dist = std::vector<std::pair<int32_t, double>>;
  Dist distribution(float* logits, int64_t vocab, const std::vector<int32_t>& prompt,
                    const std::vector<int32_t>& output, const std::vector<int32_t>& forbid);
  // Speculative sampling of one verify row with a deterministic draft x
  // (after penalties, like sample()): accept x with probability p(x), else
  // draw from p with x removed (ops/sampling.h, verify_row), at the given
  // uniforms. The token is distributed exactly as a plain draw from p, and
  // equals x exactly when x was accepted.
  int32_t verify(float* logits, int64_t vocab, const std::vector<int32_t>& prompt, const std::vector<int32_t>& output,
                 const std::vector<int32_t>& forbid, int32_t x, float u_accept, float u_draw);

 private:
  // Repetition/frequency/presence penalties and forbidden tokens, in place.
  void apply_penalties(float* logits, int64_t vocab, const std::vector<int32_t>& prompt,
                       const std::vector<int32_t>& output, const std::vector<int32_t>& forbid) const;

  SamplingParams p_;
  std::mt19937_64 rng_;
};

// log_softmax(x)[i] for one i and the top-n entries, computed in double.
void logprobs_of(const float* logits, int64_t vocab, int32_t token, int top_n, TokenLogprob* out);

}  // namespace mimo
