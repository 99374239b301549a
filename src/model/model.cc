#include "model/model.h"

#include <cmath>

#include "core/error.h"

namespace mimo {

Model::Model(ModelSpec spec, ModelWeights weights, Backend& backend, Communicator* comm)
    : spec_(std::move(spec)),
      w_(std::move(weights)),
      be_(backend),
      comm_(comm ? *comm : single_),
      ws_(backend),
      gws_(backend) {}

Tensor Model::to_device(const std::vector<int32_t>& v) {
  if (be_.device() == Device::CPU)  // the batch outlives the step: no copy
    return Tensor::wrap({int64_t(v.size())}, DType::I32, const_cast<int32_t*>(v.data()));
  Tensor t = cur_->take({int64_t(v.size())}, DType::I32);
  be_.copy_from_host(t, v.data());
  return t;
}

AttnMeta Model::upload_meta(const StepBatch& b, int pool, const Tensor& positions, const Tensor& q_start,
                            const Tensor& kv_len) {
  AttnMeta m;
  m.positions = positions;
  m.q_start = q_start;
  m.kv_len = kv_len;
  m.table_start = to_device(b.pools[pool].table_start);
  m.table = to_device(b.pools[pool].table);
  m.out_slots = to_device(b.pools[pool].out_slots);
  m.num_seqs = b.num_seqs();
  for (int s = 0; s < m.num_seqs; s++) {
    m.max_q_len = std::max(m.max_q_len, b.q_start[size_t(s) + 1] - b.q_start[size_t(s)]);
    m.max_kv_len = std::max(m.max_kv_len, b.kv_len[size_t(s)]);
  }
  return m;
}

Model::StepInputs Model::upload_inputs(const StepBatch& b, const bool pools[2]) {
  ws_.reset();
  cur_ = &ws_;
  StepInputs in;
  in.T = b.num_tokens();
  in.R = int64_t(b.logit_rows.size());
  in.ids = to_device(b.tokens);
  in.rows = to_device(b.logit_rows);
  Tensor positions = to_device(b.positions), q_start = to_device(b.q_start), kv_len = to_device(b.kv_len);
  for (int p = 0; p < 2; p++)
    if (pools[p]) in.meta[p] = upload_meta(b, p, positions, q_start, kv_len);
  return in;
}

void Model::attention(const LayerSpec& ls, const AttnWeights& aw, const AttnMeta& meta, Tensor& kc, Tensor& vc,
                      const Tensor& x, Tensor& out) {
  const AttnSpec& a = ls.attn;
  int64_t T = x.dim(0);
  Tensor q = cur_->take({T, a.num_heads, a.head_dim}, DType::F32);
  Tensor k = cur_->take({T, a.num_kv_heads, a.head_dim}, DType::F32);
  Tensor v = cur_->take({T, a.num_kv_heads, a.v_head_dim}, DType::F32);
  be_.linear(x, aw.q, q);
  be_.linear(x, aw.k, k);
  be_.linear(x, aw.v, v);
  be_.rope_(q, meta.positions, a.rotary_dim, a.rope_theta);
  be_.rope_(k, meta.positions, a.rotary_dim, a.rope_theta);
  be_.store_kv(k, v, a.value_scale, meta, kc, vc);
  Tensor att = cur_->take({T, a.num_heads, a.v_head_dim}, DType::F32);
  AttnParams p;
  p.window = a.kind == AttnKind::Sliding ? a.window : 0;
  p.scale = float(1.0 / std::sqrt(double(a.head_dim)));
  be_.attention(q, kc, vc, a.has_sink ? aw.sinks : Tensor(), meta, p, att);
  be_.linear(att.view({T, int64_t(a.num_heads) * a.v_head_dim}), aw.o, out);
  comm_.all_reduce_sum_(out);  // tensor parallel: o_proj is row-parallel
}

void Model::ffn(const LayerSpec& ls, const LayerWeights& lw, const Tensor& x, Tensor& out) {
  int64_t T = x.dim(0);
  if (ls.ffn == FfnKind::Dense) {
    int64_t I = lw.mlp.down.dim(1);
    Tensor gu = cur_->take({T, 2 * I}, DType::F32), act = cur_->take({T, I}, DType::F32);
    be_.linear(x, lw.mlp.gate_up, gu);
    be_.silu_mul(gu, act);
    be_.linear(act, lw.mlp.down, out);
    comm_.all_reduce_sum_(out);  // tensor parallel: down is row-parallel
    return;
  }
  const MoESpec& m = spec_.moe;
  Tensor logits = cur_->take({T, m.num_experts}, DType::F32);
  be_.linear(x, lw.moe.router, logits);  // fp32 router
  Tensor ids = cur_->take({T, m.top_k}, DType::I32), wts = cur_->take({T, m.top_k}, DType::F32);
  MoEParams p{m.top_k, m.n_group, m.topk_group, m.norm_topk_prob, m.routed_scaling_factor};
  be_.moe_route(logits, lw.moe.bias, p, ids, wts);
  // Expert parallel: each rank computes its own experts' share; the sum over
  // ranks is the layer's output.
  be_.moe_experts(x, ids, wts, lw.moe.gate_up, lw.moe.down, lw.moe.expert_begin, out);
  comm_.all_reduce_sum_(out);
}

const Tensor& Model::forward(const StepBatch& b, KvCache& kv) {
  MIMO_ASSERT(b.num_tokens() > 0);
  b.validate(used_pool(AttnKind::Full) ? kv.slots(kPoolFull) : 0, used_pool(AttnKind::Sliding) ? kv.slots(kPoolSwa) : 0);
  if (const Tensor* lg = graphed(-1, b, nullptr, kv)) return *lg;
  const bool pools[2] = {used_pool(AttnKind::Full), used_pool(AttnKind::Sliding)};
  StepInputs in = upload_inputs(b, pools);
  return run_forward(in, kv);
}

const Tensor& Model::run_forward(const StepInputs& in, KvCache& kv) {
  const int64_t T = in.T, H = spec_.hidden_size;
  Tensor x = cur_->take({T, H}, DType::F32), h = cur_->take({T, H}, DType::F32), y = cur_->take({T, H}, DType::F32);
  be_.embedding(in.ids, w_.embed, x);
  for (int l = 0; l < spec_.num_layers(); l++) {
    const LayerSpec& ls = spec_.layers[size_t(l)];
    const LayerWeights& lw = w_.layers[size_t(l)];
    be_.rms_norm(x, lw.input_norm, spec_.rms_eps, h);
    const size_t mark = cur_->mark();  // the attention's and the FFN's temporaries die with them
    attention(ls, lw.attn, in.meta[pool_of(ls.attn.kind)], kv.k(l), kv.v(l), h, y);
    cur_->rewind(mark);
    be_.add_(x, y);
    be_.rms_norm(x, lw.post_norm, spec_.rms_eps, h);
    ffn(ls, lw, h, y);
    cur_->rewind(mark);
    be_.add_(x, y);
  }
  hidden_ = cur_->take({T, H}, DType::F32);
  be_.rms_norm(x, w_.norm, spec_.rms_eps, hidden_);
  Tensor sel = cur_->take({in.R, H}, DType::F32);
  be_.gather_rows(hidden_, in.rows, sel);
  logits_ = cur_->take({in.R, spec_.vocab_size}, DType::F32);
  be_.linear(sel, w_.lm_head, logits_);
  return logits_;
}

}  // namespace mimo

namespace mimo {

const Tensor& Model::mtp_forward(int k, const StepBatch& b, const Tensor& hidden_in, KvCache& kv) {
  MIMO_ASSERT(k >= 0 && k < num_mtp_layers(), "MTP layer {} of {}", k, num_mtp_layers());
  MIMO_ASSERT(b.num_tokens() > 0 && hidden_in.dim(0) == b.num_tokens());
  MIMO_ASSERT(k < kv.num_mtp(), "the KV cache holds {} MTP layers, not layer {}", kv.num_mtp(), k);
  b.validate(kv.slots(kPoolFull), 0);
  if (const Tensor* lg = graphed(k, b, &hidden_in, kv)) return *lg;
  const bool pools[2] = {true, false};
  StepInputs in = upload_inputs(b, pools);
  return run_mtp(k, in, hidden_in, kv);
}

const Tensor& Model::run_mtp(int k, const StepInputs& in, const Tensor& hidden_in, KvCache& kv) {
  const int64_t T = in.T, H = spec_.hidden_size;
  const MtpLayerWeights& m = w_.mtp[size_t(k)];
  Tensor e = cur_->take({T, H}, DType::F32), a = cur_->take({T, H}, DType::F32), x = cur_->take({T, H}, DType::F32),
         y = cur_->take({T, H}, DType::F32);
  be_.embedding(in.ids, w_.embed, e);
  be_.rms_norm(e, m.enorm, spec_.rms_eps, e);
  be_.rms_norm(hidden_in, m.hnorm, spec_.rms_eps, a);
  // eh_proj(concat[enorm(e), hnorm(h)]) as two halves.
  be_.linear(e, m.eh_embed, x);
  be_.linear(a, m.eh_hidden, y);
  be_.add_(x, y);
  LayerSpec ls;
  ls.attn = spec_.mtp_attn;
  ls.ffn = FfnKind::Dense;
  be_.rms_norm(x, m.input_norm, spec_.rms_eps, a);
  const size_t mark = cur_->mark();
  attention(ls, m.attn, in.meta[kPoolFull], kv.mtp_k(k), kv.mtp_v(k), a, y);
  cur_->rewind(mark);
  be_.add_(x, y);
  be_.rms_norm(x, m.pre_mlp_norm, spec_.rms_eps, a);
  LayerWeights dense;
  dense.mlp = m.mlp;
  ffn(ls, dense, a, y);
  cur_->rewind(mark);
  be_.add_(x, y);
  be_.rms_norm(x, m.final_norm, spec_.rms_eps, x);
  Tensor sel = cur_->take({in.R, H}, DType::F32);
  be_.gather_rows(x, in.rows, sel);
  logits_ = cur_->take({in.R, spec_.vocab_size}, DType::F32);
  be_.linear(sel, w_.lm_head, logits_);
  return logits_;
}

}  // namespace mimo
