// The one interface through which model code runs ops. A Backend owns its
// device memory; every tensor passed in lives on backend.device(). Batch
// metadata (positions, KV slots) arrives as device tensors, so a model step
// needs no host round-trip until the caller copies the outputs back.
//
// Shapes are row-major; "T" is the number of tokens in the step.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "core/tensor.h"

namespace mimo {

// Where each query row and each cached key lives. Rows of one sequence are
// contiguous in the batch. `table` holds, per sequence, the KV slot of every
// position 0..kv_len-1 (entries the kernel never reads, such as positions
// that slid out of a window, may be -1).
struct AttnMeta {
  Tensor positions;    // I32 [T]      absolute position of each query row
  Tensor q_start;      // I32 [S + 1]  first row of each sequence; q_start[S] = T
  Tensor kv_len;       // I32 [S]      context length after this step
  Tensor table_start;  // I32 [S]      offset of the sequence's slots in `table`
  Tensor table;        // I32 [sum of kv_len]
  Tensor out_slots;    // I32 [T]      slot each row's K/V is written to
  int num_seqs = 0;
  int max_q_len = 0;   // host-known bounds, for launch configuration
  int max_kv_len = 0;
};

struct AttnParams {
  int window = 0;       // 0 = causal over the whole context
  float scale = 1.0f;   // applied to q.k
};

struct MoEParams {
  int top_k = 0;
  int n_group = 1;
  int topk_group = 1;
  bool norm_topk_prob = true;
  float routed_scaling_factor = 1.0f;
};

// A recorded sequence of ops (a CUDA graph) that Backend::replay runs again.
class OpGraph {
 public:
  virtual ~OpGraph() = default;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual Device device() const = 0;
  virtual std::string name() const = 0;

  // Memory.
  virtual Tensor alloc(std::vector<int64_t> shape, DType dtype) = 0;
  // Memory read in long streams step after step (the KV pools): on the CPU
  // on huge pages (host_alloc.h; decode attention at batch 16 took 30-40%
  // less time with its KV there) and faulted in before it returns (no page
  // faults while serving); elsewhere as alloc().
  virtual Tensor alloc_streamed(std::vector<int64_t> shape, DType dtype) { return alloc(std::move(shape), dtype); }
  virtual void zero_(Tensor& t) = 0;
  virtual void copy_from_host(Tensor& dst, const void* src) = 0;  // dst.nbytes() bytes
  virtual void copy_to_host(void* dst, const Tensor& src) = 0;
  Tensor upload(const Tensor& host);  // host tensor -> new tensor on this device
  // A host weight matrix [N, K] or stack [E, N, K] that the model reads only
  // as linear's or moe_experts' w, in the layout this backend's kernels read
  // fastest (the CPU's row tiles, kernels.h), or `w` itself. Thread-safe:
  // the loader calls it from its threads, before upload.
  virtual Tensor prepare_weight(const Tensor& w) const = 0;

  // out[T, H] = table[ids[t]]; table F32 or BF16, out F32.
  virtual void embedding(const Tensor& ids, const Tensor& table, Tensor& out) = 0;
  // out = w * x / sqrt(mean(x^2) + eps), row-wise; out may alias x.
  virtual void rms_norm(const Tensor& x, const Tensor& w, float eps, Tensor& out) = 0;
  // out[M, N] = x[M, K] @ w[N, K]^T; w F32 or BF16.
  virtual void linear(const Tensor& x, const Tensor& w, Tensor& out) = 0;
  // x += y
  virtual void add_(Tensor& x, const Tensor& y) = 0;
  // NeoX rotate-half RoPE on the first rot_dim dims of each head; x [T, heads, D].
  virtual void rope_(Tensor& x, const Tensor& positions, int rot_dim, double theta) = 0;
  // Writes k [T, nkv, D] and v * v_scale [T, nkv, Dv] into the caches
  // [slots, nkv, D|Dv] at meta.out_slots.
  virtual void store_kv(const Tensor& k, const Tensor& v, float v_scale, const AttnMeta& meta, Tensor& k_cache,
                        Tensor& v_cache) = 0;
  // out[T, H, Dv] = softmax(q k^T * scale [+ sink]) v over the visible keys:
  // key j is visible to a query at p when j <= p and (window == 0 or j > p - window).
  // sinks: F32 [H] or undefined.
  virtual void attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const Tensor& sinks,
                         const AttnMeta& meta, const AttnParams& p, Tensor& out) = 0;
  // out[T, I] = silu(gu[:, :I]) * gu[:, I:]
  virtual void silu_mul(const Tensor& gate_up, Tensor& out) = 0;
  // Router: logits F32 [T, E] -> ids I32 [T, k], weights F32 [T, k] (sigmoid
  // scores, bias for selection only, group-limited top-k).
  virtual void moe_route(const Tensor& logits, const Tensor& bias, const MoEParams& p, Tensor& ids,
                         Tensor& weights) = 0;
  // out[T, H] = sum_k weights[t, k] * down_e(silu(gate_e x) * up_e x) with
  // e = ids[t, k]; gate_up [E, 2I, H], down [E, H, I]. Experts not held by
  // this rank (ids outside [expert_begin, expert_begin + E)) are skipped.
  virtual void moe_experts(const Tensor& x, const Tensor& ids, const Tensor& weights, const Tensor& gate_up,
                           const Tensor& down, int expert_begin, Tensor& out) = 0;
  // out[R, C] = x[rows[r], :]
  virtual void gather_rows(const Tensor& x, const Tensor& rows, Tensor& out) = 0;
  // out I32 [R] = argmax over the last dim of x [R, V] (first maximum wins).
  virtual void argmax(const Tensor& x, Tensor& out) = 0;
  // out I32 [R]: one token per row of logits F32 [R, V], decided as
  // ops/sampling.h defines (verify_row): params F32 [R, 4] holds each row's
  // temperature, top_p, top_k (<= 0: all) and min_p (temperature 0 is the
  // argmax), drafts I32 [R] its draft token (-1: none, a plain draw), u F32
  // [R, 2] its uniforms in [0, 1) (to accept the draft, to draw).
  virtual void sample(const Tensor& logits, const Tensor& params, const Tensor& drafts, const Tensor& u,
                      Tensor& out) = 0;
  // Converts between F32 and BF16 (or copies when dtypes match).
  virtual void convert(const Tensor& src, Tensor& dst) = 0;

  // Step graphs. Between begin_capture() and end_capture() ops are recorded,
  // not run; replay() runs the recording with one launch. Everything an op
  // is given is fixed at capture (tensor addresses, shapes, AttnMeta's host
  // bounds, scalars); only the contents of tensors may change between
  // replays. Copies between host and device are not recorded: a capture
  // that calls copy_from_host or copy_to_host fails. Ops must have run once with the same
  // shapes before their capture (backends size scratch memory then).
  virtual bool can_capture() const { return false; }
  virtual void begin_capture();
  virtual std::unique_ptr<OpGraph> end_capture();
  virtual void replay(OpGraph& graph);
  // Ends a capture that failed part way (an op or end_capture threw),
  // discarding what it recorded, so the backend runs ops again (the caller
  // runs the step op by op instead). A backend reports a failure inside a
  // capture by throwing, not by aborting.
  virtual void abort_capture();
};

std::unique_ptr<Backend> make_cpu_backend();
// Returns nullptr when this build has no CUDA or no device is present.
std::unique_ptr<Backend> make_cuda_backend();

// A bump allocator for a step's temporaries: reset() each step; after the
// first steps it stops allocating (its block grows to the high-water mark).
class Workspace {
 public:
  explicit Workspace(Backend& b) : backend_(b) {}
  Tensor take(std::vector<int64_t> shape, DType dtype);
  void reset();
  // Everything taken after mark() is given back by rewind(mark): a layer's
  // temporaries are dead once its output is written, so the next layer
  // reuses their memory and the block holds one layer's worth, not every
  // layer's. (Ops run in order on one stream, so a later op writing reused
  // memory never overtakes an earlier one reading it.)
  size_t mark() const { return used_; }
  void rewind(size_t m) { used_ = m; }
  // The most bytes in use at once so far (what the block grows to).
  size_t high_water() const { return high_water_; }
  // Whether everything taken since the last reset() came from the block
  // (reset() then keeps the block, so the addresses repeat).
  bool settled() const { return overflow_.empty() && high_water_ <= capacity_; }

 private:
  Backend& backend_;
  Tensor block_;
  size_t capacity_ = 0, used_ = 0, high_water_ = 0;
  std::vector<Tensor> overflow_;
};

}  // namespace mimo
