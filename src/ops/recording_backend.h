// A Backend that forwards every call to another one and can capture op
// graphs the way a CUDA stream does: while capturing, each op is recorded
// (its arguments by value, tensors as handles to their storage) and not
// run; replay() runs the recording. This brings the capture contract of
// Backend (backend.h) to any backend, so the model's graph path — fixed
// input buffers, padded batches, bounds fixed at capture — is exercised
// and checked on the CPU, where replay itself saves nothing.
#pragma once

#include <atomic>
#include <functional>
#include <thread>
#include <vector>

#include "ops/backend.h"

namespace mimo {

class RecordingBackend final : public Backend {
 public:
  explicit RecordingBackend(Backend& inner) : in_(inner) {}
  int captures() const { return captures_; }
  int replays() const { return replays_; }

  Device device() const override { return in_.device(); }
  std::string name() const override { return in_.name() + " (recording)"; }
  Tensor alloc(std::vector<int64_t> shape, DType dtype) override { return in_.alloc(std::move(shape), dtype); }
  Tensor alloc_streamed(std::vector<int64_t> shape, DType dtype) override {
    return in_.alloc_streamed(std::move(shape), dtype);
  }
  void zero_(Tensor& t) override;
  Tensor prepare_weight(const Tensor& w) const override { return in_.prepare_weight(w); }
  void copy_from_host(Tensor& dst, const void* src) override;
  void copy_to_host(void* dst, const Tensor& src) override;

  void embedding(const Tensor& ids, const Tensor& table, Tensor& out) override;
  void rms_norm(const Tensor& x, const Tensor& w, float eps, Tensor& out) override;
  void linear(const Tensor& x, const Tensor& w, Tensor& out) override;
  void add_(Tensor& x, const Tensor& y) override;
  void rope_(Tensor& x, const Tensor& positions, int rot_dim, double theta) override;
  void store_kv(const Tensor& k, const Tensor& v, float v_scale, const AttnMeta& meta, Tensor& k_cache,
                Tensor& v_cache) override;
  void attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const Tensor& sinks,
                 const AttnMeta& meta, const AttnParams& p, Tensor& out) override;
  void silu_mul(const Tensor& gate_up, Tensor& out) override;
  void moe_route(const Tensor& logits, const Tensor& bias, const MoEParams& p, Tensor& ids, Tensor& weights) override;
  void moe_experts(const Tensor& x, const Tensor& ids, const Tensor& weights, const Tensor& gate_up,
                   const Tensor& down, int expert_begin, Tensor& out) override;
  void gather_rows(const Tensor& x, const Tensor& rows, Tensor& out) override;
  void argmax(const Tensor& x, Tensor& out) override;
  void sample(const Tensor& logits, const Tensor& params, const Tensor& drafts, const Tensor& u,
              Tensor& out) override;
  void convert(const Tensor& src, Tensor& dst) override;

  bool can_capture() const override { return true; }
  void begin_capture() override;
  std::unique_ptr<OpGraph> end_capture() override;
  void replay(OpGraph& graph) override;
  void abort_capture() override;
  // Tests: ops recorded from now on throw instead (a capture that fails).
  void fail_captures(bool on) { fail_captures_ = on; }

 private:
  // Runs op now, or records it while capturing.
  void run(std::function<void()> op);
  // Capture is per thread, as CUDA's thread-local capture mode: other
  // threads' calls run as usual meanwhile.
  bool capturing() const {
    return capturing_.load(std::memory_order_acquire) && std::this_thread::get_id() == capture_thread_;
  }

  Backend& in_;
  std::atomic<bool> capturing_{false};
  std::thread::id capture_thread_;
  std::vector<std::function<void()>> ops_;
  int captures_ = 0, replays_ = 0;
  bool fail_captures_ = false;
};

}  // namespace mimo
