// A Backend that forwards every call to another one and counts what the
// step reads from memory and computes: weight bytes of every linear, the
// experts the router actually chose (each distinct expert's weights are read
// once per step), the KV each attention call reads, and the FLOPs of the
// matrix products. The benchmark divides these by measured times.
#pragma once

#include "ops/backend.h"

namespace mimo::bench {

// Where a step's time goes, by op family (seconds; host wall time, so only
// meaningful on the CPU backend, whose calls are synchronous).
enum OpKind { kOpLinear, kOpAttention, kOpMoe, kOpNorm, kOpRope, kOpOther, kNumOpKinds };
const char* op_kind_name(int k);

struct OpCounts {
  double flops = 0;     // 2 per multiply-add of linears, experts and attention
  int64_t experts = 0;  // distinct (layer, expert) pairs run
  double seconds[kNumOpKinds] = {};
  // What each family read: linears their matrices (dense, attention,
  // lm_head), MoE its routed experts, attention its K and V.
  double bytes[kNumOpKinds] = {};
  double weight_bytes() const { return bytes[kOpLinear] + bytes[kOpMoe]; }
  double kv_bytes() const { return bytes[kOpAttention]; }
  double total_bytes() const { return weight_bytes() + kv_bytes(); }
  void clear() { *this = OpCounts(); }
};

class CountingBackend final : public Backend {
 public:
  explicit CountingBackend(Backend& inner) : in_(inner) {}
  OpCounts& counts() { return c_; }
  Backend& inner() { return in_; }

  Device device() const override { return in_.device(); }
  std::string name() const override { return in_.name(); }
  Tensor alloc(std::vector<int64_t> shape, DType dtype) override { return in_.alloc(std::move(shape), dtype); }
  Tensor alloc_streamed(std::vector<int64_t> shape, DType dtype) override {
    return in_.alloc_streamed(std::move(shape), dtype);
  }
  void zero_(Tensor& t) override { in_.zero_(t); }
  Tensor prepare_weight(const Tensor& w) const override { return in_.prepare_weight(w); }
  void copy_from_host(Tensor& dst, const void* src) override { in_.copy_from_host(dst, src); }
  void copy_to_host(void* dst, const Tensor& src) override { in_.copy_to_host(dst, src); }
  void embedding(const Tensor& ids, const Tensor& table, Tensor& out) override {
    Timer t(c_, kOpOther);
    in_.embedding(ids, table, out);
  }
  void rms_norm(const Tensor& x, const Tensor& w, float eps, Tensor& out) override {
    Timer t(c_, kOpNorm);
    in_.rms_norm(x, w, eps, out);
  }
  void linear(const Tensor& x, const Tensor& w, Tensor& out) override;
  void add_(Tensor& x, const Tensor& y) override {
    Timer t(c_, kOpNorm);
    in_.add_(x, y);
  }
  void rope_(Tensor& x, const Tensor& positions, int rot_dim, double theta) override {
    Timer t(c_, kOpRope);
    in_.rope_(x, positions, rot_dim, theta);
  }
  void store_kv(const Tensor& k, const Tensor& v, float v_scale, const AttnMeta& meta, Tensor& k_cache,
                Tensor& v_cache) override {
    Timer t(c_, kOpAttention);
    in_.store_kv(k, v, v_scale, meta, k_cache, v_cache);
  }
  void attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const Tensor& sinks,
                 const AttnMeta& meta, const AttnParams& p, Tensor& out) override;
  void silu_mul(const Tensor& gate_up, Tensor& out) override {
    Timer t(c_, kOpOther);
    in_.silu_mul(gate_up, out);
  }
  void moe_route(const Tensor& logits, const Tensor& bias, const MoEParams& p, Tensor& ids, Tensor& weights) override {
    Timer t(c_, kOpMoe);
    in_.moe_route(logits, bias, p, ids, weights);
  }
  void moe_experts(const Tensor& x, const Tensor& ids, const Tensor& weights, const Tensor& gate_up,
                   const Tensor& down, int expert_begin, Tensor& out) override;
  void gather_rows(const Tensor& x, const Tensor& rows, Tensor& out) override {
    Timer t(c_, kOpOther);
    in_.gather_rows(x, rows, out);
  }
  void argmax(const Tensor& x, Tensor& out) override { in_.argmax(x, out); }
  void sample(const Tensor& logits, const Tensor& params, const Tensor& drafts, const Tensor& u,
              Tensor& out) override {
    in_.sample(logits, params, drafts, u, out);
  }
  void convert(const Tensor& src, Tensor& dst) override { in_.convert(src, dst); }

 private:
  struct Timer {
    Timer(OpCounts& c, int k);
    ~Timer();
    OpCounts& c;
    int k;
    double t0;
  };
  Backend& in_;
  OpCounts c_;
};

}  // namespace mimo::bench
