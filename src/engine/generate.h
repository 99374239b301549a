// Single-sequence generation over the simple cache (slot = position): what
// `mimoserve generate` runs, and the reference the batched runtime is
// tested against.
#pragma once

#include <vector>

#include "core/tensor.h"
#include "engine/sampler.h"
#include "model/model.h"

namespace mimo {

struct GenerateOptions {
  int max_new_tokens = 16;
  SamplingParams sampling;
  bool ignore_eos = false;
  std::vector<int32_t> stop_token_ids;  // besides the model's eos ids
  bool dump_prompt_logits = false;      // keep fp32 logits of every prompt position
  int prefill_chunk = 0;                // 0 = the whole prompt in one step
  DType kv_dtype = DType::F32;
};

struct GenerateResult {
  std::vector<int32_t> output_ids;
  Tensor prompt_logits;  // host F32 [prompt_len, V] when asked for
  double prefill_seconds = 0, decode_seconds = 0;
  int decode_steps = 0;
  std::string finish_reason;  // "length" or "stop"
};

GenerateResult generate(Model& model, const std::vector<int32_t>& prompt, const GenerateOptions& opt);

}  // namespace mimo
