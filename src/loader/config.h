// config.json -> ModelSpec. Accepts the hub style Xiaomi publishes
// (hybrid_layer_pattern, moe_layer_freq, swa_* keys, layernorm_epsilon, ...)
// and transformers' native style (layer_types, mlp_layer_types,
// rope_parameters, rms_norm_eps). Inconsistent or missing keys are a
// mimo::Error naming the key.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "model/spec.h"

namespace mimo {

ModelSpec parse_model_config(const nlohmann::json& cfg, const std::string& source = "config.json");
ModelSpec load_model_config(const std::string& model_dir);

// Overrides for debugging and benchmarks (bench-prefill's all-full variant,
// SGLang's W+1 window).
struct SpecOverrides {
  bool all_full_attention = false;
  int window_extra = 0;
};
void apply_overrides(ModelSpec& spec, const SpecOverrides& o);

}  // namespace mimo
