// AVX2+FMA kernels (this file alone is built with -mavx2 -mfma; callers
// reach it only after cpu_features() says the CPU has them).
//
// linear: out = x w^T in dot-product form. A tile of MR rows of x against
// NR rows of w keeps MR*NR vector accumulators; bf16 weights are widened to
// fp32 in registers, so weights stream from memory at two bytes each.
#include <immintrin.h>

#include <algorithm>

#include "core/dtype.h"
#include "ops/cpu/kernels.h"

namespace mimo::cpu::avx2 {

namespace {

inline __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
inline __m256 load8(const uint16_t* p) {
  __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}
inline float scalar(const float* p, int64_t i) { return p[i]; }
inline float scalar(const uint16_t* p, int64_t i) { return bf16_to_f32(p[i]); }

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

template <int MR, int NR, typename W>
inline void tile(const float* x, int64_t ldx, const W* w, int64_t ldw, float* out, int64_t ldo, int64_t K) {
  __m256 acc[MR][NR];
  for (int i = 0; i < MR; i++)
    for (int j = 0; j < NR; j++) acc[i][j] = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 8 <= K; k += 8) {
    __m256 wv[NR];
    for (int j = 0; j < NR; j++) wv[j] = load8(w + j * ldw + k);
    for (int i = 0; i < MR; i++) {
      __m256 xv = _mm256_loadu_ps(x + i * ldx + k);
      for (int j = 0; j < NR; j++) acc[i][j] = _mm256_fmadd_ps(xv, wv[j], acc[i][j]);
    }
  }
  for (int i = 0; i < MR; i++)
    for (int j = 0; j < NR; j++) {
      float s = hsum(acc[i][j]);
      for (int64_t kk = k; kk < K; kk++) s += x[i * ldx + kk] * scalar(w + j * ldw, kk);
      out[i * ldo + j] = s;
    }
}

// Single row of x (decode): two accumulators per weight row hide FMA latency.
template <int NR, typename W>
inline void row_tile(const float* x, const W* w, int64_t ldw, float* out, int64_t K) {
  __m256 a0[NR], a1[NR];
  for (int j = 0; j < NR; j++) a0[j] = a1[j] = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 16 <= K; k += 16) {
    __m256 x0 = _mm256_loadu_ps(x + k), x1 = _mm256_loadu_ps(x + k + 8);
    for (int j = 0; j < NR; j++) {
      a0[j] = _mm256_fmadd_ps(x0, load8(w + j * ldw + k), a0[j]);
      a1[j] = _mm256_fmadd_ps(x1, load8(w + j * ldw + k + 8), a1[j]);
    }
  }
  for (; k + 8 <= K; k += 8) {
    __m256 x0 = _mm256_loadu_ps(x + k);
    for (int j = 0; j < NR; j++) a0[j] = _mm256_fmadd_ps(x0, load8(w + j * ldw + k), a0[j]);
  }
  for (int j = 0; j < NR; j++) {
    float s = hsum(_mm256_add_ps(a0[j], a1[j]));
    for (int64_t kk = k; kk < K; kk++) s += x[kk] * scalar(w + j * ldw, kk);
    out[j] = s;
  }
}

template <int MR, typename W>
inline void tile_n(const float* x, int64_t ldx, const W* w, int64_t ldw, float* out, int64_t ldo, int nr, int64_t K) {
  switch (nr) {
    case 4: return tile<MR, 4>(x, ldx, w, ldw, out, ldo, K);
    case 3: return tile<MR, 3>(x, ldx, w, ldw, out, ldo, K);
    case 2: return tile<MR, 2>(x, ldx, w, ldw, out, ldo, K);
    default: return tile<MR, 1>(x, ldx, w, ldw, out, ldo, K);
  }
}

template <typename W>
void linear_impl(const float* x, int64_t ldx, const W* w, int64_t ldw, float* out, int64_t ldo, int64_t M, int64_t n0,
                 int64_t n1, int64_t K) {
  constexpr int NR = 4, MR = 3;
  // Every path sums each output in the same order (one 8-lane accumulator
  // over k, then the same horizontal sum), so a row's result does not depend
  // on how many rows share the call: batching never changes outputs.
  for (int64_t n = n0; n < n1; n += NR) {
    int nr = int(std::min<int64_t>(NR, n1 - n));
    const W* wn = w + n * ldw;
    int64_t m = 0;
    for (; m + MR <= M; m += MR) tile_n<MR>(x + m * ldx, ldx, wn, ldw, out + m * ldo + n, ldo, nr, K);
    for (; m < M; m++) tile_n<1>(x + m * ldx, ldx, wn, ldw, out + m * ldo + n, ldo, nr, K);
  }
}

}  // namespace

void linear_f32(const float* x, int64_t ldx, const float* w, int64_t ldw, float* out, int64_t ldo, int64_t M,
                int64_t n0, int64_t n1, int64_t K) {
  linear_impl(x, ldx, w, ldw, out, ldo, M, n0, n1, K);
}
void linear_bf16(const float* x, int64_t ldx, const uint16_t* w, int64_t ldw, float* out, int64_t ldo, int64_t M,
                 int64_t n0, int64_t n1, int64_t K) {
  linear_impl(x, ldx, w, ldw, out, ldo, M, n0, n1, K);
}

float dot_f32(const float* a, const float* b, int64_t n) {
  float r;
  row_tile<1>(a, b, 0, &r, n);
  return r;
}
float dot_bf16(const float* a, const uint16_t* b, int64_t n) {
  float r;
  row_tile<1>(a, b, 0, &r, n);
  return r;
}

void axpy_f32(float a, const float* x, float* y, int64_t n) {
  __m256 av = _mm256_set1_ps(a);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(av, load8(x + i), _mm256_loadu_ps(y + i)));
  for (; i < n; i++) y[i] += a * x[i];
}
void axpy_bf16(float a, const uint16_t* x, float* y, int64_t n) {
  __m256 av = _mm256_set1_ps(a);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(av, load8(x + i), _mm256_loadu_ps(y + i)));
  for (; i < n; i++) y[i] += a * bf16_to_f32(x[i]);
}

}  // namespace mimo::cpu::avx2
