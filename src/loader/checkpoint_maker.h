// Writes random MiMo-V2-Flash checkpoints of any shape in the hub layout
// (optionally FP8 block-quantised, with MTP layers, sharded, and with the
// config in either style): for tests and benchmarks.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mimo {

struct MakerOptions {
  int vocab = 512, hidden = 64, layers = 4, heads = 4;
  int kv_heads = 2, swa_kv_heads = 4;
  int head_dim = 48, v_head_dim = 32;
  int window = 16;
  std::vector<int> full_layers = {0};   // the rest slide
  std::vector<int> dense_layers = {0};  // the rest are MoE
  int intermediate = 128;
  int experts = 8, top_k = 2, moe_intermediate = 32, n_group = 1, topk_group = 1;
  double routed_scaling_factor = 1.0;  // written as null when 1 and `null_scaling` is set
  bool null_scaling = false;
  double partial_rotary_factor = 0.334;
  double rope_theta = 5e6, swa_rope_theta = 1e4;
  double value_scale = 0.707;
  int mtp_layers = 0;
  std::string dtype = "float32";       // float32 | bfloat16 | fp8
  bool fp8_per_head_scales = false;    // full-attention k/v scales on the per-KV-head grid
  int shards = 1;
  std::string config_style = "hub";    // hub | native
  uint64_t seed = 0;
  double init_std = 0.05;
  int eos_token_id = -1;

  // Named shapes: "tiny" (the defaults) and "bench-0.5b" (the performance
  // issue's standard benchmark checkpoint).
  static MakerOptions preset(const std::string& name);
  int64_t parameter_count() const;
  // Fails naming the flag when the shape cannot be a MiMo-V2-Flash model
  // (a count below 1, heads not a multiple of the KV heads, a layer index
  // out of range, ...).
  void validate() const;
};

// Writes config.json and model.safetensors (or shards + index) into dir.
void make_checkpoint(const MakerOptions& o, const std::string& dir);

}  // namespace mimo
