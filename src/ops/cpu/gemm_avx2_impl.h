// The packed-GEMM building blocks (chain-class-major packing, the 6x16
// micro-kernel and the tree combine that reproduces the backend's one
// summation order; see gemm_avx2.cc). Shared by the GEMM and attention.
// Include only from files built with -mavx2 -mfma.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "core/dtype.h"
#include "ops/cpu/kernels.h"
#include "ops/cpu/simd_avx2.h"

namespace mimo::cpu::avx2 {

inline float load1(const float* p) { return *p; }
inline float load1(const uint8_t* p) { return fp8e4m3_to_f32(*p); }
inline float load1(const uint16_t* p) {
  uint32_t u = uint32_t(*p) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// In-register transpose of an 8x8 block: r[i] holds row i; afterwards r[j]
// holds column j.
inline void transpose8(__m256 r[8]) {
  __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
  r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
  r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
  r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
  r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
  r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
  r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
  r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

// Packs rows row(0) .. row(rows - 1) (rows <= 16; missing rows are zero)
// of depth K into one chain-class-major panel, for the chain steps q in
// [q0, q1) (k = 8q + r): dst[(r * (q1 - q0) + q - q0) * 16 + i] =
// row(i)[8q + r]; with `tail`, then dst[(8 (q1 - q0) + t) * 16 + i] =
// row(i)[8 (K / 8) + t] for t < K % 8. dst is 32-byte aligned. A row's
// runs of 8 are `step` elements apart (8: row-major; kTiledRunStep: row
// tiles, which have no tail).
template <typename RowFn>
inline void pack_panel(RowFn row, int rows, int64_t K, int64_t q0, int64_t q1, bool tail, float* dst,
                       int64_t step = 8) {
  const int64_t kq = K / 8, kt = K % 8, nq = q1 - q0;
  for (int g = 0; g < 2; g++) {
    const int r0 = g * 8;
    const int live = std::clamp(rows - r0, 0, 8);
    decltype(row(0)) p[8];
    for (int i = 0; i < 8; i++) p[i] = i < live ? row(r0 + i) : nullptr;
    // Eight rows are read as eight short streams: prefetch ~512 bytes ahead
    // in each, once per cache line, so the packing is not latency-bound.
    using Elem = std::remove_cv_t<std::remove_pointer_t<decltype(p[0])>>;
    constexpr int64_t kLineQ = 64 / (8 * int64_t(sizeof(Elem))), kAhead = 512 / int64_t(sizeof(Elem));
    const int64_t ahead = kAhead / 8 * step;
    for (int64_t q = q0; q < q1; q++) {
      if (q % kLineQ == 0)
        for (int i = 0; i < live; i++)
          _mm_prefetch(reinterpret_cast<const char*>(p[i] + step * q + ahead), _MM_HINT_T0);
      __m256 v[8];
      for (int i = 0; i < 8; i++) v[i] = i < live ? load8(p[i] + step * q) : _mm256_setzero_ps();
      transpose8(v);
      for (int r = 0; r < 8; r++) _mm256_store_ps(dst + (r * nq + q - q0) * kNR + r0, v[r]);
    }
    if (tail)
      for (int64_t t = 0; t < kt; t++)
        for (int i = 0; i < 8; i++) dst[(8 * nq + t) * kNR + r0 + i] = i < live ? load1(p[i] + 8 * kq + t) : 0.0f;
  }
}
template <typename RowFn>
inline void pack_panel(RowFn row, int rows, int64_t K, float* dst) {
  pack_panel(row, rows, K, 0, K / 8, true, dst);
}

// The 6x16 micro-kernel: c[i][j] = fma(a[k][i], b[k][j], c[i][j]) for k in
// [0, kc), one FMA chain per output in k order, starting from zero or, with
// `resume`, from the values in C. a: packed [kc][6]; b and C rows ldb and
// ldc floats apart. (Every product of the backend goes through this one
// chain order: linears' packed GEMM, attention's scores and P.V.)
inline void ukernel_6x16(int64_t kc, const float* a, const float* b, int64_t ldb, float* c, int64_t ldc, bool resume) {
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00,
         c40 = c00, c41 = c00, c50 = c00, c51 = c00;
  if (resume) {
    c00 = _mm256_loadu_ps(c), c01 = _mm256_loadu_ps(c + 8);
    c10 = _mm256_loadu_ps(c + ldc), c11 = _mm256_loadu_ps(c + ldc + 8);
    c20 = _mm256_loadu_ps(c + 2 * ldc), c21 = _mm256_loadu_ps(c + 2 * ldc + 8);
    c30 = _mm256_loadu_ps(c + 3 * ldc), c31 = _mm256_loadu_ps(c + 3 * ldc + 8);
    c40 = _mm256_loadu_ps(c + 4 * ldc), c41 = _mm256_loadu_ps(c + 4 * ldc + 8);
    c50 = _mm256_loadu_ps(c + 5 * ldc), c51 = _mm256_loadu_ps(c + 5 * ldc + 8);
  }
  for (int64_t k = 0; k < kc; k++) {
    __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
    __m256 a0 = _mm256_broadcast_ss(a), a1 = _mm256_broadcast_ss(a + 1);
    c00 = _mm256_fmadd_ps(a0, b0, c00);
    c01 = _mm256_fmadd_ps(a0, b1, c01);
    c10 = _mm256_fmadd_ps(a1, b0, c10);
    c11 = _mm256_fmadd_ps(a1, b1, c11);
    a0 = _mm256_broadcast_ss(a + 2);
    a1 = _mm256_broadcast_ss(a + 3);
    c20 = _mm256_fmadd_ps(a0, b0, c20);
    c21 = _mm256_fmadd_ps(a0, b1, c21);
    c30 = _mm256_fmadd_ps(a1, b0, c30);
    c31 = _mm256_fmadd_ps(a1, b1, c31);
    a0 = _mm256_broadcast_ss(a + 4);
    a1 = _mm256_broadcast_ss(a + 5);
    c40 = _mm256_fmadd_ps(a0, b0, c40);
    c41 = _mm256_fmadd_ps(a0, b1, c41);
    c50 = _mm256_fmadd_ps(a1, b0, c50);
    c51 = _mm256_fmadd_ps(a1, b1, c51);
    a += kMR;
    b += ldb;
  }
  _mm256_storeu_ps(c, c00), _mm256_storeu_ps(c + 8, c01), c += ldc;
  _mm256_storeu_ps(c, c10), _mm256_storeu_ps(c + 8, c11), c += ldc;
  _mm256_storeu_ps(c, c20), _mm256_storeu_ps(c + 8, c21), c += ldc;
  _mm256_storeu_ps(c, c30), _mm256_storeu_ps(c + 8, c31), c += ldc;
  _mm256_storeu_ps(c, c40), _mm256_storeu_ps(c + 8, c41), c += ldc;
  _mm256_storeu_ps(c, c50), _mm256_storeu_ps(c + 8, c51);
}

// One chain class of a packed tile: tile[i][j] += sum over q of a[q][i] *
// b[q][j] (b: a packed panel, rows kNR apart; tile: [6][16]).
inline void ukernel_chain(int64_t kq, const float* a, const float* b, float* tile, bool resume = false) {
  ukernel_6x16(kq, a, b, kNR, tile, kNR, resume);
}

// Eight partial tiles (one per chain class) in the order's tree, plus the
// tail by FMA (at: [kt][6] of x, bt: [kt][16] of w), into C.
inline void combine_6x16(const float (*part)[kMR * kNR], int64_t kt, const float* at, const float* bt, float* c,
                         int64_t ldc, int mr, int nr) {
  alignas(32) float edge[kMR * kNR];
  const bool full = mr == kMR && nr == kNR;
  for (int i = 0; i < kMR; i++)
    for (int h = 0; h < 2; h++) {
      const int o = i * kNR + h * 8;
      __m256 v = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(_mm256_load_ps(part[0] + o), _mm256_load_ps(part[4] + o)),
                                             _mm256_add_ps(_mm256_load_ps(part[2] + o), _mm256_load_ps(part[6] + o))),
                               _mm256_add_ps(_mm256_add_ps(_mm256_load_ps(part[1] + o), _mm256_load_ps(part[5] + o)),
                                             _mm256_add_ps(_mm256_load_ps(part[3] + o), _mm256_load_ps(part[7] + o))));
      for (int64_t t = 0; t < kt; t++)
        v = _mm256_fmadd_ps(_mm256_broadcast_ss(at + t * kMR + i), _mm256_load_ps(bt + t * kNR + h * 8), v);
      if (full) _mm256_storeu_ps(c + i * ldc + h * 8, v);
      else _mm256_store_ps(edge + o, v);
    }
  if (!full)
    for (int i = 0; i < mr; i++)
      for (int j = 0; j < nr; j++) c[i * ldc + j] = edge[i * kNR + j];
}

// One 6x16 output tile from a packed sliver and a whole-depth panel.
inline void tile_6x16(int64_t kq, int64_t kt, const float* a, const float* b, float* c, int64_t ldc, int mr, int nr) {
  alignas(32) float part[8][kMR * kNR];
  for (int r = 0; r < 8; r++) ukernel_chain(kq, a + r * kq * kMR, b + r * kq * kNR, part[r]);
  combine_6x16(part, kt, a + 8 * kq * kMR, b + 8 * kq * kNR, c, ldc, mr, nr);
}

// row(i) gives the address of row i of x (contiguous or gathered rows).
template <typename RowFn>
inline void pack_a_impl(RowFn row, int64_t M, int64_t K, int64_t s0, int64_t s1, float* pa) {
  const int64_t kq = K / 8, kt = K % 8, SX = sliver_floats(K);
  for (int64_t s = s0; s < s1; s++) {
    float* d = pa + s * SX;
    const int64_t m0 = s * kMR;
    const int mr = int(std::min<int64_t>(kMR, M - m0));
    const float* r[kMR];
    for (int i = 0; i < kMR; i++) r[i] = i < mr ? row(m0 + i) : nullptr;
    for (int64_t q = 0; q < kq; q++) {
      // Six rows, eight k: transpose 8x8 (two rows unused) and keep six
      // lanes of each column (16 + 8 bytes, so nothing past it is touched).
      __m256 v[8];
      for (int i = 0; i < 8; i++) v[i] = i < kMR && i < mr ? _mm256_loadu_ps(r[i] + 8 * q) : _mm256_setzero_ps();
      transpose8(v);
      for (int j = 0; j < 8; j++) {
        float* o = d + (j * kq + q) * kMR;
        _mm_storeu_ps(o, _mm256_castps256_ps128(v[j]));
        _mm_storel_pi(reinterpret_cast<__m64*>(o + 4), _mm256_extractf128_ps(v[j], 1));
      }
    }
    for (int64_t t = 0; t < kt; t++)
      for (int i = 0; i < kMR; i++) d[(8 * kq + t) * kMR + i] = i < mr ? r[i][8 * kq + t] : 0.0f;
  }
}


}  // namespace mimo::cpu::avx2
