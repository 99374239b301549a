// The CUDA backend: device memory from cudaMalloc, every op enqueued on one
// stream that the backend owns (exposed so the runtime can capture graphs
// or overlap copies later), cuBLAS for dense products, own kernels for the
// rest (src/ops/cuda/*.cu, declared in cuda_kernels.h).
//
// Ops never synchronise except copy_to_host (and scratch growth, see
// below), so a model step runs without host round trips. Set
// MIMOSERVE_CUDA_SYNC=1 to synchronise and check after every op when hunting
// a faulting kernel.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "ops/backend.h"

// Opaque CUDA handle types, so that including this header needs no CUDA
// headers (they are what cudaStream_t and cublasHandle_t point to).
struct CUstream_st;
struct cublasContext;

namespace mimo {

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(int device);
  ~CudaBackend() override;
  Device device() const override { return Device::CUDA; }
  std::string name() const override { return name_; }
  CUstream_st* stream() const { return stream_; }
  int device_index() const { return device_; }
  void synchronize();

  Tensor alloc(std::vector<int64_t> shape, DType dtype) override;
  void zero_(Tensor& t) override;
  Tensor prepare_weight(const Tensor& w) const override { return w; }  // cuBLAS reads [N, K] as stored
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

  // CUDA graphs: stream capture (thread-local mode, so other threads'
  // CUDA calls are unaffected), instantiated once, launched on the stream.
  bool can_capture() const override { return true; }
  void begin_capture() override;
  std::unique_ptr<OpGraph> end_capture() override;
  void replay(OpGraph& graph) override;
  void abort_capture() override;

 private:
  // One scratch block reused by every op that needs temporaries (bf16 copies
  // of activations, attention splits, MoE grouping). Ops run in stream
  // order, so reuse is safe; growing it synchronises once, and after the
  // largest step it never grows again.
  void* scratch(size_t bytes);
  // inv_freq per (rot_dim, theta), computed on the host like the CPU backend
  // and uploaded once.
  const float* inv_freq(int rot_dim, double theta);
  void after_launch(const char* op);

  int device_ = 0;
  int num_sms_ = 0;
  std::string name_;
  CUstream_st* stream_ = nullptr;
  cublasContext* blas_ = nullptr;
  void* blas_workspace_ = nullptr;
  void* scratch_ = nullptr;
  size_t scratch_bytes_ = 0;
  // Scratch blocks left by growth once a graph exists: graphs keep their
  // addresses, so the blocks live as long as the backend.
  std::vector<void*> retired_scratch_;
  bool capturing_ = false, captured_ = false;
  std::map<std::pair<int, double>, Tensor> inv_freq_;
  bool sync_each_op_ = false;
};

}  // namespace mimo
