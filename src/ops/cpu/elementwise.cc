// Portable row kernels and their dispatch to the AVX2 versions.
#include <cmath>

#include "core/dtype.h"
#include "ops/cpu/kernels.h"

namespace mimo::cpu {

void rms_norm_row(const float* x, const void* w, bool w_bf16, float eps, float* out, int64_t n) {
  if (cpu_features().avx2_fma) return avx2::rms_norm_row(x, w, w_bf16, eps, out, n);
  float ss = 0;
  for (int64_t i = 0; i < n; i++) ss += x[i] * x[i];
  const float inv = 1.0f / std::sqrt(ss / float(n) + eps);
  for (int64_t i = 0; i < n; i++) {
    float wi = w_bf16 ? bf16_to_f32(static_cast<const uint16_t*>(w)[i]) : static_cast<const float*>(w)[i];
    out[i] = wi * (x[i] * inv);
  }
}

void silu_mul_row(const float* g, const float* u, float* out, int64_t n) {
  if (cpu_features().avx2_fma) return avx2::silu_mul_row(g, u, out, n);
  for (int64_t i = 0; i < n; i++) out[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
}

void add_row(float* x, const float* y, int64_t n) {
  if (cpu_features().avx2_fma) return avx2::add_row(x, y, n);
  for (int64_t i = 0; i < n; i++) x[i] += y[i];
}

void to_bf16_row(const float* src, float scale, uint16_t* dst, int64_t n) {
  if (cpu_features().avx2_fma) return avx2::to_bf16_row(src, scale, dst, n);
  for (int64_t i = 0; i < n; i++) dst[i] = f32_to_bf16(src[i] * scale);
}

void to_fp8_row(const float* src, float scale, uint8_t* dst, int64_t n) {
  if (cpu_features().avx2_fma) return avx2::to_fp8_row(src, scale, dst, n);
  for (int64_t i = 0; i < n; i++) dst[i] = f32_to_fp8e4m3(src[i] * scale);
}

void to_f32_row(const uint16_t* src, float* dst, int64_t n) {
  if (cpu_features().avx2_fma) return avx2::to_f32_row(src, dst, n);
  for (int64_t i = 0; i < n; i++) dst[i] = bf16_to_f32(src[i]);
}

void rope_row(float* x, const float* cs, const float* sn, int half) {
  if (cpu_features().avx2_fma) return avx2::rope_row(x, cs, sn, half);
  for (int i = 0; i < half; i++) {
    float a = x[i], b = x[i + half];
    x[i] = a * cs[i] - b * sn[i];
    x[i + half] = b * cs[i] + a * sn[i];
  }
}

}  // namespace mimo::cpu
