// Row kernels for AVX2+FMA (built with -mavx2 -mfma; reached only after
// cpu_features() says so). Each matches its portable twin in elementwise.cc
// up to fp32 summation order.
#include <cmath>

#include "core/dtype.h"
#include "ops/cpu/kernels.h"
#include "ops/cpu/simd_avx2.h"

namespace mimo::cpu::avx2 {

void rms_norm_row(const float* x, const void* w, bool w_bf16, float eps, float* out, int64_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m256 v0 = _mm256_loadu_ps(x + i), v1 = _mm256_loadu_ps(x + i + 8);
    a0 = _mm256_fmadd_ps(v0, v0, a0);
    a1 = _mm256_fmadd_ps(v1, v1, a1);
  }
  float ss = hsum(_mm256_add_ps(a0, a1));
  for (; i < n; i++) ss += x[i] * x[i];
  const float inv = 1.0f / std::sqrt(ss / float(n) + eps);
  const __m256 s = _mm256_set1_ps(inv);
  i = 0;
  if (w_bf16) {
    const uint16_t* wb = static_cast<const uint16_t*>(w);
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, _mm256_mul_ps(load8(wb + i), _mm256_mul_ps(load8(x + i), s)));
    for (; i < n; i++) out[i] = bf16_to_f32(wb[i]) * (x[i] * inv);
  } else {
    const float* wf = static_cast<const float*>(w);
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, _mm256_mul_ps(load8(wf + i), _mm256_mul_ps(load8(x + i), s)));
    for (; i < n; i++) out[i] = wf[i] * (x[i] * inv);
  }
}

void silu_mul_row(const float* g, const float* u, float* out, int64_t n) {
  // The tail goes through the same vector code (padded), so an element's
  // result never depends on where a row is cut.
  const __m256 one = _mm256_set1_ps(1.0f), neg = _mm256_set1_ps(-0.0f);
  auto f = [&](__m256 a, __m256 b) { return _mm256_mul_ps(_mm256_div_ps(a, _mm256_add_ps(one, exp8(_mm256_xor_ps(a, neg)))), b); };
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, f(_mm256_loadu_ps(g + i), _mm256_loadu_ps(u + i)));
  if (i < n) {
    alignas(32) float a[8] = {}, b[8] = {}, r[8];
    for (int64_t j = i; j < n; j++) a[j - i] = g[j], b[j - i] = u[j];
    _mm256_store_ps(r, f(_mm256_load_ps(a), _mm256_load_ps(b)));
    for (int64_t j = i; j < n; j++) out[j] = r[j - i];
  }
}

void add_row(float* x, const float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_add_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  for (; i < n; i++) x[i] += y[i];
}

void to_bf16_row(const float* src, float scale, uint16_t* dst, int64_t n) {
  const __m256 s = _mm256_set1_ps(scale);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), to_bf16_8(_mm256_mul_ps(_mm256_loadu_ps(src + i), s)));
  for (; i < n; i++) dst[i] = f32_to_bf16(src[i] * scale);
}

void to_f32_row(const uint16_t* src, float* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, load8(src + i));
  for (; i < n; i++) dst[i] = bf16_to_f32(src[i]);
}

void rope_row(float* x, const float* cs, const float* sn, int half) {
  int i = 0;
  for (; i + 8 <= half; i += 8) {
    __m256 a = _mm256_loadu_ps(x + i), b = _mm256_loadu_ps(x + i + half);
    __m256 c = _mm256_loadu_ps(cs + i), s = _mm256_loadu_ps(sn + i);
    _mm256_storeu_ps(x + i, _mm256_fmsub_ps(a, c, _mm256_mul_ps(b, s)));
    _mm256_storeu_ps(x + i + half, _mm256_fmadd_ps(b, c, _mm256_mul_ps(a, s)));
  }
  for (; i < half; i++) {
    float a = x[i], b = x[i + half];
    x[i] = a * cs[i] - b * sn[i];
    x[i + half] = b * cs[i] + a * sn[i];
  }
}

void exp_row(const float* x, float* out, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, exp8(_mm256_loadu_ps(x + i)));
  if (i < n) {
    alignas(32) float a[8] = {}, r[8];
    for (int64_t j = i; j < n; j++) a[j - i] = x[j];
    _mm256_store_ps(r, exp8(_mm256_load_ps(a)));
    for (int64_t j = i; j < n; j++) out[j] = r[j - i];
  }
}

}  // namespace mimo::cpu::avx2
