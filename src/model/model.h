// The MiMo-V2-Flash decoder on a Backend: embedding, hybrid full/sliding
// attention with sinks, dense or MoE FFN, final norm, lm_head. One call runs
// one StepBatch (any mix of prefill chunks and decode tokens).
#pragma once

#include <memory>

#include "dist/comm.h"
#include "kv/kv_cache.h"
#include "model/batch.h"
#include "model/spec.h"
#include "model/weights.h"
#include "ops/backend.h"

namespace mimo {

class Model {
 public:
  Model(ModelSpec spec, ModelWeights weights, Backend& backend, Communicator* comm = nullptr);

  // Runs the step. Returns logits [logit_rows, V] on the device; they and
  // hidden() stay valid until the next forward.
  const Tensor& forward(const StepBatch& batch, KvCache& kv);
  // Post-final-norm hidden states [T, hidden] of the last step (what lm_head
  // reads, and what MTP layers take as input).
  const Tensor& hidden() const { return hidden_; }

  // MTP layer k (multi-token prediction) over a step. Row t of the batch is
  // position p = positions[t] with input token tokens[t] = token_{p+k+1}
  // and hidden_in[t] = the target's post-norm hidden state H_p; its KV goes
  // to the layer's own buffers, addressed with the full pool's slot tables
  // (pools[0]). Returns logits [logit_rows, V] predicting token_{p+k+2};
  // valid until the next forward or mtp_forward (which also ends hidden()).
  const Tensor& mtp_forward(int k, const StepBatch& batch, const Tensor& hidden_in, KvCache& kv);
  int num_mtp_layers() const { return int(w_.mtp.size()); }

  const ModelSpec& spec() const { return spec_; }
  const ModelWeights& weights() const { return w_; }
  Backend& backend() { return be_; }

 private:
  void attention(const LayerSpec& ls, const AttnWeights& aw, const AttnMeta& meta, Tensor& kc, Tensor& vc,
                 const Tensor& x, Tensor& out);
  void ffn(const LayerSpec& ls, const LayerWeights& lw, const Tensor& x, Tensor& out);
  AttnMeta upload_meta(const StepBatch& b, int pool, const Tensor& positions, const Tensor& q_start,
                       const Tensor& kv_len);
  Tensor to_device(const std::vector<int32_t>& v);
  bool used_pool(AttnKind k) const { return spec_.count(k) > 0; }

  ModelSpec spec_;
  ModelWeights w_;
  Backend& be_;
  SingleRank single_;
  Communicator& comm_;
  Workspace ws_;
  Tensor hidden_, logits_;
};

}  // namespace mimo
