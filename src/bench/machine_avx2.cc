// AVX2+FMA loops of machine.cc (this file alone is built with -mavx2 -mfma).
#include <immintrin.h>

#include "bench/machine.h"

namespace mimo::bench::avx2 {

float sum_stream(const float* p, size_t n) {
  // Eight independent accumulators: the loop is limited by loads, not by
  // add latency.
  __m256 a[8];
  for (auto& v : a) v = _mm256_setzero_ps();
  for (size_t i = 0; i < n; i += 64)
    for (int j = 0; j < 8; j++) a[j] = _mm256_add_ps(a[j], _mm256_load_ps(p + i + 8 * j));
  for (int j = 1; j < 8; j++) a[0] = _mm256_add_ps(a[0], a[j]);
  alignas(32) float t[8];
  _mm256_store_ps(t, a[0]);
  return t[0] + t[1] + t[2] + t[3] + t[4] + t[5] + t[6] + t[7];
}

float fma_loop(int64_t iters) {
  // Ten chains cover the FMA latency (4 cycles) times two pipes with room to
  // spare; the operands never leave registers.
  __m256 a[10];
  for (int j = 0; j < 10; j++) a[j] = _mm256_set1_ps(float(j) * 1e-3f);
  const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
  for (int64_t i = 0; i < iters; i++)
    for (int j = 0; j < 10; j++) a[j] = _mm256_fmadd_ps(a[j], m, c);
  for (int j = 1; j < 10; j++) a[0] = _mm256_add_ps(a[0], a[j]);
  alignas(32) float t[8];
  _mm256_store_ps(t, a[0]);
  return t[0] + t[7];
}

}  // namespace mimo::bench::avx2
