// The model description every part of the engine reads: one entry per layer
// (attention kind and shape, FFN kind) plus global sizes. Built from
// config.json by loader/config.cc, whichever style the file is written in.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mimo {

enum class AttnKind : uint8_t { Full = 0, Sliding = 1 };
enum class FfnKind : uint8_t { Dense, MoE };

struct AttnSpec {
  AttnKind kind = AttnKind::Full;
  int num_heads = 0;
  int num_kv_heads = 0;
  int head_dim = 0;    // q and k
  int v_head_dim = 0;  // v and the attention output per head
  int rotary_dim = 0;  // leading dims of q/k that get NeoX RoPE
  double rope_theta = 10000.0;
  int window = 0;      // keys a query sees on sliding layers (query included); 0 = unbounded
  bool has_sink = false;
  float value_scale = 1.0f;
};

struct MoESpec {
  int num_experts = 0;
  int top_k = 0;
  int intermediate = 0;
  int n_group = 1;
  int topk_group = 1;
  bool norm_topk_prob = true;
  float routed_scaling_factor = 1.0f;
};

struct LayerSpec {
  AttnSpec attn;
  FfnKind ffn = FfnKind::Dense;
};

// FP8 block quantisation of the checkpoint (dequantised on load).
struct QuantSpec {
  bool fp8 = false;
  int block_rows = 128, block_cols = 128;
};

struct ModelSpec {
  std::string architecture = "MiMoV2FlashForCausalLM";
  int vocab_size = 0;
  int hidden_size = 0;
  int intermediate_size = 0;  // dense layers and MTP layers
  float rms_eps = 1e-5f;
  int max_position_embeddings = 0;
  bool tie_word_embeddings = false;
  std::vector<LayerSpec> layers;
  MoESpec moe;
  QuantSpec quant;
  AttnSpec mtp_attn;    // MTP layers use the sliding variant
  int num_mtp_layers = 0;  // inferred from tensor names by the loader
  std::vector<int> eos_token_ids;
  int bos_token_id = -1;

  int num_layers() const { return int(layers.size()); }
  int count(AttnKind k) const {
    int n = 0;
    for (auto& l : layers) n += l.attn.kind == k;
    return n;
  }
};

}  // namespace mimo
