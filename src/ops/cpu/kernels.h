// CPU kernels behind CpuBackend. Each has a portable version; the hot ones
// have an AVX2+FMA version picked at run time (cpu_features()).
#pragma once

#include <cstdint>

namespace mimo::cpu {

struct CpuFeatures {
  bool avx2_fma = false;
};
const CpuFeatures& cpu_features();

// out[m, n] = sum_k x[m, k] * w[n, k] for m in [0, M), n in [n0, n1).
// ldx/ldw/ldo are row strides in elements.
void linear_f32(const float* x, int64_t ldx, const float* w, int64_t ldw, float* out, int64_t ldo, int64_t M,
                int64_t n0, int64_t n1, int64_t K);
void linear_bf16(const float* x, int64_t ldx, const uint16_t* w, int64_t ldw, float* out, int64_t ldo, int64_t M,
                 int64_t n0, int64_t n1, int64_t K);

namespace avx2 {
void linear_f32(const float* x, int64_t ldx, const float* w, int64_t ldw, float* out, int64_t ldo, int64_t M,
                int64_t n0, int64_t n1, int64_t K);
void linear_bf16(const float* x, int64_t ldx, const uint16_t* w, int64_t ldw, float* out, int64_t ldo, int64_t M,
                 int64_t n0, int64_t n1, int64_t K);
float dot_f32(const float* a, const float* b, int64_t n);
float dot_bf16(const float* a, const uint16_t* b, int64_t n);
void axpy_f32(float a, const float* x, float* y, int64_t n);    // y += a x
void axpy_bf16(float a, const uint16_t* x, float* y, int64_t n);
}  // namespace avx2

// Dot products and axpy used by attention (dispatching).
float dot(const float* a, const float* b, int64_t n);
float dot(const float* a, const uint16_t* b, int64_t n);
void axpy(float a, const float* x, float* y, int64_t n);
void axpy(float a, const uint16_t* x, float* y, int64_t n);

}  // namespace mimo::cpu
