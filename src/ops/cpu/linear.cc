// Portable kernels and run-time dispatch to the AVX2 ones.
#include <algorithm>

#include "core/dtype.h"
#include "ops/cpu/kernels.h"

namespace mimo::cpu {

namespace {
CpuFeatures detect() {
  CpuFeatures c;
#if defined(__x86_64__)
  __builtin_cpu_init();
  c.avx2_fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
  return c;
}
const CpuFeatures g_detected = detect();
const CpuFeatures* g_active = &g_detected;
}  // namespace

const CpuFeatures& cpu_features() { return *g_active; }

void override_cpu_features(const CpuFeatures* f) {
  static CpuFeatures held;
  if (!f) {
    g_active = &g_detected;
    return;
  }
  held = *f;
  held.avx2_fma = held.avx2_fma && g_detected.avx2_fma;  // never claim what the CPU lacks
  g_active = &held;
}

namespace {
template <typename W>
float load(const W* w, int64_t i) {
  if constexpr (sizeof(W) == 2) return bf16_to_f32(w[i]);
  else return w[i];
}

template <typename W>
void linear_ref(const float* x, int64_t ldx, const W* w, int64_t ldw, float* out, int64_t ldo, int64_t M, int64_t n0,
                int64_t n1, int64_t K) {
  // Four independent partial sums keep the portable build from being bound
  // by add latency; the compiler vectorises them with SSE2.
  for (int64_t n = n0; n < n1; n++)
    for (int64_t m = 0; m < M; m++) {
      const float* xr = x + m * ldx;
      const W* wr = w + n * ldw;
      float a[4] = {0, 0, 0, 0};
      int64_t k = 0;
      for (; k + 4 <= K; k += 4)
        for (int j = 0; j < 4; j++) a[j] += xr[k + j] * load(wr, k + j);
      float acc = (a[0] + a[1]) + (a[2] + a[3]);
      for (; k < K; k++) acc += xr[k] * load(wr, k);
      out[m * ldo + n] = acc;
    }
}
}  // namespace

void linear_f32(const float* x, int64_t ldx, const float* w, int64_t ldw, float* out, int64_t ldo, int64_t M,
                int64_t n0, int64_t n1, int64_t K) {
  if (cpu_features().avx2_fma) return avx2::linear_f32(x, ldx, w, ldw, out, ldo, M, n0, n1, K);
  linear_ref(x, ldx, w, ldw, out, ldo, M, n0, n1, K);
}

void linear_bf16(const float* x, int64_t ldx, const uint16_t* w, int64_t ldw, float* out, int64_t ldo, int64_t M,
                 int64_t n0, int64_t n1, int64_t K) {
  if (cpu_features().avx2_fma) return avx2::linear_bf16(x, ldx, w, ldw, out, ldo, M, n0, n1, K);
  linear_ref(x, ldx, w, ldw, out, ldo, M, n0, n1, K);
}

float dot(const float* a, const float* b, int64_t n) {
  if (cpu_features().avx2_fma) return avx2::dot_f32(a, b, n);
  float s = 0;
  for (int64_t i = 0; i < n; i++) s += a[i] * b[i];
  return s;
}
float dot(const float* a, const uint16_t* b, int64_t n) {
  if (cpu_features().avx2_fma) return avx2::dot_bf16(a, b, n);
  float s = 0;
  for (int64_t i = 0; i < n; i++) s += a[i] * bf16_to_f32(b[i]);
  return s;
}
void axpy(float a, const float* x, float* y, int64_t n) {
  if (cpu_features().avx2_fma) return avx2::axpy_f32(a, x, y, n);
  for (int64_t i = 0; i < n; i++) y[i] += a * x[i];
}
void axpy(float a, const uint16_t* x, float* y, int64_t n) {
  if (cpu_features().avx2_fma) return avx2::axpy_bf16(a, x, y, n);
  for (int64_t i = 0; i < n; i++) y[i] += a * bf16_to_f32(x[i]);
}

}  // namespace mimo::cpu
