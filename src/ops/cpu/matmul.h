// Matrix products on the thread pool: picks the dot-product form (small M,
// weight-streaming) or the packed GEMM (M >= kGemmMinM, or kGemmMinMAvx512
// with AVX-512) and splits the work so each thread streams its own weight
// rows.
#pragma once

#include <cstddef>
#include <cstdint>

#include "ops/cpu/kernels.h"

namespace mimo {
class ThreadPool;
}

namespace mimo::cpu {

// A 32-byte-aligned float buffer that only grows: scratch reused across
// calls so hot paths do not allocate once warmed up.
class FloatBuffer {
 public:
  FloatBuffer() = default;
  FloatBuffer(const FloatBuffer&) = delete;
  FloatBuffer& operator=(const FloatBuffer&) = delete;
  ~FloatBuffer();
  float* get(size_t n);

 private:
  float* p_ = nullptr;
  size_t cap_ = 0;
};

// Weight-panel scratch of the calling thread for depth K.
float* thread_wbuf(int64_t K);

// A weight matrix [N, K] with rows `ld` elements apart: fp32, bf16, or FP8
// with per-row block scales (`scales` rows `scale_ld` apart, `block` columns
// per scale). fp32 and bf16 may be in row tiles instead (kernels.h; ld is
// then K, the elements per row, and kernel_ld() says kRowTiles), bf16 in AMX
// tiles (amx; ld is K too).
struct WeightView {
  enum class Kind : uint8_t { F32, BF16, FP8 };
  const void* data = nullptr;
  Kind kind = Kind::F32;
  int64_t ld = 0;
  bool tiled = false;
  bool amx = false;
  int64_t kernel_ld() const { return tiled ? kRowTiles : ld; }
  const float* scales = nullptr;
  int64_t scale_ld = 0;
  int64_t block = 0;
  const float* f32() const { return static_cast<const float*>(data); }
  const uint16_t* b16() const { return static_cast<const uint16_t*>(data); }
  Fp8Matrix fp8() const { return {static_cast<const uint8_t*>(data), ld, scales, scale_ld, block}; }
  int64_t elem_bytes() const { return kind == Kind::F32 ? 4 : kind == Kind::BF16 ? 2 : 1; }
  // Rows [n, ...) of this matrix (n a multiple of kTileRows when tiled, of
  // kAmxRows in AMX tiles).
  WeightView rows_from(int64_t n) const {
    WeightView v = *this;
    v.data = static_cast<const char*>(data) + n * ld * elem_bytes();
    if (scales) v.scales = scales + n * scale_ld;
    return v;
  }
};

// True when rows x K products of M rows go through the packed GEMM.
bool use_gemm(int64_t M);

// Whether matmul_range reads M rows of x for w packed (AMX weights always,
// others through the GEMM), the floats that takes, and the packing of the
// rows of x, or of x[rows[0]], x[rows[1]], ... (one thread).
bool packs_x(const WeightView& w, int64_t M);
int64_t packed_x_floats(const WeightView& w, int64_t M, int64_t K);
void pack_x(const WeightView& w, const float* x, int64_t ldx, int64_t M, int64_t K, float* pa);
void pack_x_rows(const WeightView& w, const float* x, int64_t ldx, const int32_t* rows, int64_t M, int64_t K,
                 float* pa);
// The same for x itself, across the pool.
void pack_x_parallel(ThreadPool& pool, const WeightView& w, const float* x, int64_t ldx, int64_t M, int64_t K,
                     float* pa);

// One thread: out[m, n0:n1] = x[m] . w[n] for m < M. pa is x packed for w
// when packs_x(w, M), else ignored (x is read directly). With AMX weights n0
// and n1 are multiples of kAmxRows.
void matmul_range(const float* x, int64_t ldx, const float* pa, int64_t M, int64_t K, const WeightView& w, int64_t n0,
                  int64_t n1, float* out, int64_t ldo);

// The whole product across the pool; pa_scratch holds packed x.
void matmul(ThreadPool& pool, const float* x, int64_t ldx, int64_t M, int64_t K, const WeightView& w, int64_t N,
            float* out, int64_t ldo, FloatBuffer& pa_scratch);

}  // namespace mimo::cpu
