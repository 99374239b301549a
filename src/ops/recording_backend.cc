#include "ops/recording_backend.h"

#include "core/error.h"

namespace mimo {

namespace {

struct Recording final : OpGraph {
  std::vector<std::function<void()>> ops;
};

}  // namespace

void RecordingBackend::run(std::function<void()> op) {
  if (!capturing()) return op();
  if (fail_captures_) throw Error("RecordingBackend: injected capture failure");
  ops_.push_back(std::move(op));
}

void RecordingBackend::zero_(Tensor& t) {
  run([=, this, a = t]() mutable { in_.zero_(a); });
}
void RecordingBackend::copy_from_host(Tensor& dst, const void* src) {
  MIMO_ASSERT(!capturing(), "copy_from_host during a graph capture");
  in_.copy_from_host(dst, src);
}
void RecordingBackend::copy_to_host(void* dst, const Tensor& src) {
  MIMO_ASSERT(!capturing(), "copy_to_host during a graph capture");
  in_.copy_to_host(dst, src);
}

// Arguments are copied into the closures: a Tensor copy shares its storage,
// so a replay reads and writes the same memory with whatever it then holds.
void RecordingBackend::embedding(const Tensor& ids, const Tensor& table, Tensor& out) {
  run([=, this, o = out]() mutable { in_.embedding(ids, table, o); });
}
void RecordingBackend::rms_norm(const Tensor& x, const Tensor& w, float eps, Tensor& out) {
  run([=, this, o = out]() mutable { in_.rms_norm(x, w, eps, o); });
}
void RecordingBackend::linear(const Tensor& x, const Tensor& w, Tensor& out) {
  run([=, this, o = out]() mutable { in_.linear(x, w, o); });
}
void RecordingBackend::add_(Tensor& x, const Tensor& y) {
  run([=, this, a = x]() mutable { in_.add_(a, y); });
}
void RecordingBackend::rope_(Tensor& x, const Tensor& positions, int rot_dim, double theta) {
  run([=, this, a = x]() mutable { in_.rope_(a, positions, rot_dim, theta); });
}
void RecordingBackend::store_kv(const Tensor& k, const Tensor& v, float v_scale, const AttnMeta& meta,
                                Tensor& k_cache, Tensor& v_cache) {
  run([=, this, kc = k_cache, vc = v_cache]() mutable { in_.store_kv(k, v, v_scale, meta, kc, vc); });
}
void RecordingBackend::attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const Tensor& sinks,
                                 const AttnMeta& meta, const AttnParams& p, Tensor& out) {
  run([=, this, o = out]() mutable { in_.attention(q, k_cache, v_cache, sinks, meta, p, o); });
}
void RecordingBackend::silu_mul(const Tensor& gate_up, Tensor& out) {
  run([=, this, o = out]() mutable { in_.silu_mul(gate_up, o); });
}
void RecordingBackend::moe_route(const Tensor& logits, const Tensor& bias, const MoEParams& p, Tensor& ids,
                                 Tensor& weights) {
  run([=, this, i = ids, w = weights]() mutable { in_.moe_route(logits, bias, p, i, w); });
}
void RecordingBackend::moe_experts(const Tensor& x, const Tensor& ids, const Tensor& weights, const Tensor& gate_up,
                                   const Tensor& down, int expert_begin, Tensor& out) {
  run([=, this, o = out]() mutable { in_.moe_experts(x, ids, weights, gate_up, down, expert_begin, o); });
}
void RecordingBackend::gather_rows(const Tensor& x, const Tensor& rows, Tensor& out) {
  run([=, this, o = out]() mutable { in_.gather_rows(x, rows, o); });
}
void RecordingBackend::argmax(const Tensor& x, Tensor& out) {
  run([=, this, o = out]() mutable { in_.argmax(x, o); });
}
void RecordingBackend::sample(const Tensor& logits, const Tensor& params, const Tensor& drafts, const Tensor& u,
                              Tensor& out) {
  run([=, this, o = out]() mutable { in_.sample(logits, params, drafts, u, o); });
}
void RecordingBackend::convert(const Tensor& src, Tensor& dst) {
  run([=, this, d = dst]() mutable { in_.convert(src, d); });
}

void RecordingBackend::begin_capture() {
  MIMO_ASSERT(!capturing_, "nested graph capture");
  ops_.clear();
  capture_thread_ = std::this_thread::get_id();
  capturing_.store(true, std::memory_order_release);
}

std::unique_ptr<OpGraph> RecordingBackend::end_capture() {
  MIMO_ASSERT(capturing(), "end_capture without begin_capture on this thread");
  capturing_.store(false, std::memory_order_release);
  auto g = std::make_unique<Recording>();
  g->ops = std::move(ops_);
  ops_.clear();
  captures_++;
  return g;
}

void RecordingBackend::abort_capture() {
  if (!capturing()) return;  // end_capture already ended it
  capturing_.store(false, std::memory_order_release);
  ops_.clear();
}

void RecordingBackend::replay(OpGraph& graph) {
  MIMO_ASSERT(!capturing(), "replay during a graph capture");
  auto* g = dynamic_cast<Recording*>(&graph);
  MIMO_ASSERT(g, "replay of a graph another backend captured");
  for (auto& op : g->ops) op();
  replays_++;
}

}  // namespace mimo
