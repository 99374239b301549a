// AVX2+FMA weight-streaming kernels (this file alone is built with -mavx2
// -mfma; callers reach it only after cpu_features() says the CPU has them).
//
// linear: out = x w^T in dot-product form for small M (decode), the tiles of
// linear_tiles.inc with 8-lane vectors: a tile of MR rows of x against NR
// rows of w keeps MR*NR accumulators; bf16 and fp8 weights are widened (fp8
// also scaled) in registers, so weights stream from memory at two or one
// bytes each, once whatever M is (a group of rows reuses the weight tile
// from L1).
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "core/dtype.h"
#include "core/error.h"
#include "ops/cpu/kernels.h"
#include "ops/cpu/simd_avx2.h"

namespace mimo::cpu::avx2 {

namespace {

#include "ops/cpu/linear_tiles.inc"

// Tile shapes for a group of g <= 4 rows (a 4x3 tile fills the 16
// registers; one row keeps 8 independent chains). Up to 4 rows are one
// group. Measured with M = 2..4 rows against 1-2 MB of bf16 weights in
// 256 KB - 512 KB row runs, cold, 2 threads, A/B alternated: K = 512
// +20-40%, K = 1024 +0-10% for the linear prefetch over tile()'s next-rows
// one. More rows: groups of 4 (3 + 4 for 7, 3 + 2 for 5).
struct Groups {
  static constexpr int kMaxGroup = 4, kSlab = 12;
  static constexpr int kStreamNV = 8;  // one row of x over row tiles: 8 rows per tile
  template <typename Src>
  static void run(int g, const float* x, int64_t ldx, const Src& w, float* out, int64_t ldo, int64_t nb, int64_t ne,
                  int64_t K, bool linear, Paced* paced) {
    switch (g) {
      case 4: return group<4, 3>(x, ldx, w, out, ldo, nb, ne, K, linear, paced);
      case 3: return group<3, 3>(x, ldx, w, out, ldo, nb, ne, K, linear, paced);
      case 2: return group<2, 4>(x, ldx, w, out, ldo, nb, ne, K, linear, paced);
      default: return group<1, 8>(x, ldx, w, out, ldo, nb, ne, K, linear, paced);
    }
  }
  static int split(int64_t M, int64_t m) {
    const int64_t left = M - m;
    return left >= 7 ? 4 : left >= 5 ? 3 : int(left);
  }
};

template <typename W>
inline float dot_impl(const float* a, const W* b, int64_t n) {
  float r;
  tile<1, 1>(a, 0, PlainRows<W>{b, 0}, &r, 0, n);
  return r;
}

}  // namespace

void linear_f32(const float* x, int64_t ldx, const float* w, int64_t ldw, float* out, int64_t ldo, int64_t M,
                int64_t n0, int64_t n1, int64_t K) {
  linear_rows<Groups>(x, ldx, w, ldw, out, ldo, M, n0, n1, K);
}
void linear_bf16(const float* x, int64_t ldx, const uint16_t* w, int64_t ldw, float* out, int64_t ldo, int64_t M,
                 int64_t n0, int64_t n1, int64_t K) {
  linear_rows<Groups>(x, ldx, w, ldw, out, ldo, M, n0, n1, K);
}
void linear_fp8(const float* x, int64_t ldx, const Fp8Matrix& w, float* out, int64_t ldo, int64_t M, int64_t n0,
                int64_t n1, int64_t K) {
  linear_groups<Groups>(x, ldx, Fp8Rows{w}, out, ldo, M, n0, n1, K);
}
void dequant_fp8_row(const Fp8Matrix& w, int64_t n, int64_t K, float* dst) {
  const Fp8Rows row = Fp8Rows{w}.at(n);
  Fp8Rows::Cursor<1> c(row);
  const int64_t k8 = K / 8 * 8;
  for (int64_t k = 0; k < k8; k += 8) {
    c.step(k);
    _mm256_storeu_ps(dst + k, c.load(0, 0, k));
  }
  for (int64_t k = k8; k < K; k++) dst[k] = c.one(0, k);
}

float dot_f32(const float* a, const float* b, int64_t n) { return dot_impl(a, b, n); }
float dot_bf16(const float* a, const uint16_t* b, int64_t n) { return dot_impl(a, b, n); }

void axpy_f32(float a, const float* x, float* y, int64_t n) {
  __m256 av = _mm256_set1_ps(a);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(av, load8(x + i), _mm256_loadu_ps(y + i)));
  for (; i < n; i++) y[i] = std::fma(a, x[i], y[i]);
}
void axpy_bf16(float a, const uint16_t* x, float* y, int64_t n) {
  __m256 av = _mm256_set1_ps(a);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(av, load8(x + i), _mm256_loadu_ps(y + i)));
  for (; i < n; i++) y[i] = std::fma(a, bf16_to_f32(x[i]), y[i]);
}

}  // namespace mimo::cpu::avx2
