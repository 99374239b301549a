// Weights of a MiMo-V2-Flash model as the forward pass uses them, on the
// backend's device. Matrices keep PyTorch's [out, in] layout; gate and up
// projections are fused into one [2I, H] matrix (gate rows first); experts
// are stacked as [E, 2I, H] and [E, H, I]. Norms, router and sinks are F32.
#pragma once

#include <vector>

#include "core/tensor.h"

namespace mimo {

struct AttnWeights {
  Tensor q, k, v, o;  // [H*D, hid], [nkv*D, hid], [nkv*Dv, hid], [hid, H*Dv]
  Tensor sinks;       // [H] F32, sliding layers only
};

struct DenseMlpWeights {
  Tensor gate_up;  // [2I, hid]
  Tensor down;     // [hid, I]
};

struct MoEWeights {
  Tensor router;  // [E, hid] F32
  Tensor bias;    // [E] F32 (e_score_correction_bias)
  Tensor gate_up; // [E_local, 2I, hid]
  Tensor down;    // [E_local, hid, I]
  int expert_begin = 0;  // first expert held by this rank
};

struct LayerWeights {
  Tensor input_norm, post_norm;  // [hid]
  AttnWeights attn;
  DenseMlpWeights mlp;  // dense layers
  MoEWeights moe;       // MoE layers
};

struct MtpLayerWeights {
  Tensor enorm, hnorm;  // [hid]
  // eh_proj [hid, 2*hid] split by columns: the embedding half and the hidden half.
  Tensor eh_embed, eh_hidden;  // [hid, hid] each
  Tensor input_norm;    // [hid]
  AttnWeights attn;
  Tensor pre_mlp_norm;  // [hid]
  DenseMlpWeights mlp;
  Tensor final_norm;    // [hid]
};

struct ModelWeights {
  Tensor embed;    // [V, hid]
  Tensor norm;     // [hid]
  Tensor lm_head;  // [V, hid]
  std::vector<LayerWeights> layers;
  std::vector<MtpLayerWeights> mtp;
  DType dtype = DType::F32;  // of the matrices (and of the KV cache), but for
  int fp8_matrices = 0;      // this many kept as FP8 with block scales (CPU)
};

}  // namespace mimo
