// The CPU backend: host memory, the global thread pool, SIMD kernels.
// Ops reuse scratch held by the backend, so one thread at a time may call
// them (the model's thread); each op spreads its work over the pool.
#pragma once

#include <vector>

#include "ops/backend.h"
#include "ops/cpu/matmul.h"

namespace mimo {

class ThreadPool;

// A weight tensor (2-D [N, K], or 3-D stacked experts) as the CPU kernels
// read it: fp32, bf16, or FP8 with its block scales.
cpu::WeightView weight_view(const Tensor& w);

class CpuBackend final : public Backend {
 public:
  CpuBackend();
  Device device() const override { return Device::CPU; }
  std::string name() const override;

  Tensor alloc(std::vector<int64_t> shape, DType dtype) override;
  Tensor alloc_streamed(std::vector<int64_t> shape, DType dtype) override;
  void zero_(Tensor& t) override;
  // bf16 matrices with N and K multiples of 32 go into AMX tiles when the
  // AMX path runs (kernels.h). Otherwise fp32 and bf16 matrices with N and K
  // multiples of 8 and rows of at most
  // 2 KB go into row tiles (kernels.h) when the AVX-512 kernels run: the
  // AVX2 path reads them in 8-row passes, a single stream, no faster than
  // rows (2048 x 1024 bf16: 23.4 GB/s either way; 1024 x 512: 18-20 against
  // 21.5-23), so there they stay row-major unless MIMOSERVE_CPU_ROW_TILES=1.
  Tensor prepare_weight(const Tensor& w) const override;
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

 private:
  ThreadPool& pool_;
  // prepare_weight's row tiles: with the AVX-512 path (auto, the default),
  // always (MIMOSERVE_CPU_ROW_TILES=1) or never (=0).
  enum class RowTiles { Auto, On, Off } row_tiles_ = RowTiles::Auto;
  // Scratch reused across calls (grown to the largest step, never shrunk),
  // so a warmed-up step does not allocate.
  cpu::FloatBuffer pack_;  // packed x of linear()
  struct RopeTable {       // cos/sin per (row, i) for one (theta, rot_dim, positions)
    double theta = 0;
    int rot_dim = 0;
    std::vector<int32_t> pos;
    std::vector<float> cs, sn;
  };
  RopeTable ropes_[4];
  int rope_next_ = 0;
  const RopeTable& rope_table(const int32_t* pos, int64_t T, int rot_dim, double theta);
  struct MoeScratch {
    std::vector<int32_t> cnt, off, tok, active;
    std::vector<float> wt;
    std::vector<int64_t> xoff, aoff, poff;
    cpu::FloatBuffer x, act, packed_act;
    std::vector<float> s, c, gscore;
    std::vector<int> order;
    std::vector<char> keep;
  } moe_;
  std::vector<int32_t> seq_of_;  // attention: row -> sequence
};

}  // namespace mimo
