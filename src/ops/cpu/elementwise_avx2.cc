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

void to_fp8_row(const float* src, float scale, uint8_t* dst, int64_t n) {
  // f32_to_fp8e4m3 on eight lanes (core/dtype.cc says how).
  const __m256 s = _mm256_set1_ps(scale), abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const __m256i one = _mm256_set1_epi32(1), bias = _mm256_set1_epi32(0x7ffff), rebias = _mm256_set1_epi32(120);
  // Byte 0 of each 32-bit lane to the lane's first four bytes, then the two
  // 128-bit lanes' words side by side.
  const __m256i pick = _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 4, 8, 12, -1, -1,
                                        -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 x = _mm256_mul_ps(_mm256_loadu_ps(src + i), s), a = _mm256_and_ps(x, abs_mask);
    const __m256i sign = _mm256_srli_epi32(_mm256_andnot_si256(_mm256_castps_si256(abs_mask), _mm256_castps_si256(x)), 24);
    __m256i b = _mm256_castps_si256(a);
    b = _mm256_add_epi32(b, _mm256_add_epi32(bias, _mm256_and_si256(_mm256_srli_epi32(b, 20), one)));
    __m256i code = _mm256_or_si256(_mm256_slli_epi32(_mm256_sub_epi32(_mm256_srli_epi32(b, 23), rebias), 3),
                                   _mm256_and_si256(_mm256_srli_epi32(b, 20), _mm256_set1_epi32(7)));
    const __m256i sub = _mm256_cvtps_epi32(_mm256_mul_ps(a, _mm256_set1_ps(512.0f)));  // nearest even (MXCSR default)
    code = _mm256_blendv_epi8(code, sub, _mm256_castps_si256(_mm256_cmp_ps(a, _mm256_set1_ps(0.015625f), _CMP_LT_OQ)));
    code = _mm256_blendv_epi8(code, _mm256_set1_epi32(0x7e),
                              _mm256_castps_si256(_mm256_cmp_ps(a, _mm256_set1_ps(448.0f), _CMP_GE_OQ)));
    code = _mm256_or_si256(code, sign);
    code = _mm256_blendv_epi8(code, _mm256_set1_epi32(0x7f), _mm256_castps_si256(_mm256_cmp_ps(x, x, _CMP_UNORD_Q)));
    const __m256i bytes = _mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(code, pick), _mm256_setr_epi32(0, 4, 1, 1, 1, 1, 1, 1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(dst + i), _mm256_castsi256_si128(bytes));
  }
  for (; i < n; i++) dst[i] = f32_to_fp8e4m3(src[i] * scale);
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
