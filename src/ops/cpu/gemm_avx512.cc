// The packed GEMM's inner step with AVX-512 (this file alone is built with
// the AVX-512 flags; gemm_avx2.cc calls it only when cpu_features() says the
// CPU has them). Packing and blocking stay in gemm_avx2.cc; this is the
// micro-kernel and the combine.
//
// Same arithmetic as avx2::sliver_panels: every output is one FMA chain per
// chain class in k order, the eight partial tiles are added in the backend's
// tree, then the tail by FMA in order. A 512-bit vector holds a whole
// 16-column panel row, so a 6x32 micro-kernel (two panels, 12 accumulators,
// 6 broadcasts and 2 loads per step) does the work of two AVX2 6x16 passes
// with half the instructions, and the results are the same bits. Two slivers
// at a time (a 12x32 tile, 24 accumulators) halve the panel loads per FMA.
#include <immintrin.h>

#include <algorithm>

#include "ops/cpu/kernels.h"

namespace mimo::cpu::avx512 {

namespace {

constexpr int kTile = kMR * kNR;  // floats of one partial 6x16 tile

// NS slivers' (1 or 2) 6 rows against NP panels (1 or 2): c[2 s + p] is the
// 6x16 tile of sliver s and panel p; c[..][i][j] = fma(a_s[k][i], b_p[k][j],
// ...) for k < kc, from zero or (resume) from the values in c.
template <int NS, int NP>
inline void ukernel(int64_t kc, const float* const* a, const float* const* b, float* const* c, bool resume) {
  __m512 acc[NS * kMR][NP];
  #pragma GCC unroll 12
  for (int i = 0; i < NS * kMR; i++)
    #pragma GCC unroll 2
    for (int p = 0; p < NP; p++)
      acc[i][p] = resume ? _mm512_loadu_ps(c[2 * (i / kMR) + p] + (i % kMR) * kNR) : _mm512_setzero_ps();
  for (int64_t k = 0; k < kc; k++) {
    const __m512 w0 = _mm512_loadu_ps(b[0] + k * kNR);
    const __m512 w1 = NP == 2 ? _mm512_loadu_ps(b[1] + k * kNR) : w0;
    #pragma GCC unroll 12
    for (int i = 0; i < NS * kMR; i++) {
      const __m512 av = _mm512_set1_ps(a[i / kMR][k * kMR + i % kMR]);
      acc[i][0] = _mm512_fmadd_ps(av, w0, acc[i][0]);
      if constexpr (NP == 2) acc[i][1] = _mm512_fmadd_ps(av, w1, acc[i][1]);
    }
  }
  #pragma GCC unroll 12
  for (int i = 0; i < NS * kMR; i++)
    #pragma GCC unroll 2
    for (int p = 0; p < NP; p++) _mm512_storeu_ps(c[2 * (i / kMR) + p] + (i % kMR) * kNR, acc[i][p]);
}

// Eight partial tiles in the tree ((p0+p4)+(p2+p6))+((p1+p5)+(p3+p7)), the
// tail by FMA (at: [kt][6] of x, bt: [kt][16] of w), into C.
inline void combine(const float* part, int64_t kt, const float* at, const float* bt, float* c, int64_t ldc, int mr,
                    int nr) {
  const __mmask16 cols = __mmask16((1u << nr) - 1);
  for (int i = 0; i < mr; i++) {
    auto P = [&](int r) { return _mm512_loadu_ps(part + r * kTile + i * kNR); };
    __m512 v = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(P(0), P(4)), _mm512_add_ps(P(2), P(6))),
                             _mm512_add_ps(_mm512_add_ps(P(1), P(5)), _mm512_add_ps(P(3), P(7))));
    for (int64_t t = 0; t < kt; t++) v = _mm512_fmadd_ps(_mm512_set1_ps(at[t * kMR + i]), _mm512_loadu_ps(bt + t * kNR), v);
    _mm512_mask_storeu_ps(c + i * ldc, cols, v);
  }
}

}  // namespace

void sliver_panels(const avx2::SliverPanels& j) {
  alignas(64) float local[2][2][8 * kTile];  // [sliver][panel of the pair]
  const int64_t per_sliver = j.panels * 8 * kTile;  // floats of one sliver's kept partial tiles
  for (int64_t p = 0; p < j.panels; p += 2) {
    const bool two = p + 1 < j.panels;
    float* part[2][2];
    for (int t = 0; t < 2; t++)
      for (int q = 0; q < 2; q++) part[t][q] = j.parts ? j.parts + t * per_sliver + (p + q) * 8 * kTile : local[t][q];
    const float* b0 = j.w + p * j.sw;
    const float* b1 = b0 + j.sw;
    for (int r = 0; r < 8; r++) {
      const float* a[2] = {j.a + (r * j.kq + j.q0) * kMR, j.a + j.sx + (r * j.kq + j.q0) * kMR};
      const int64_t off = r * j.nq * kNR;
      const float* b[2] = {b0 + off, b1 + off};
      float* c[4] = {part[0][0] + r * kTile, part[0][1] + r * kTile, part[1][0] + r * kTile, part[1][1] + r * kTile};
      if (j.nsl == 2) {
        if (two) ukernel<2, 2>(j.nq, a, b, c, j.resume);
        else ukernel<2, 1>(j.nq, a, b, c, j.resume);
      } else {
        if (two) ukernel<1, 2>(j.nq, a, b, c, j.resume);
        else ukernel<1, 1>(j.nq, a, b, c, j.resume);
      }
    }
    if (!j.last) continue;
    const int64_t toff = 8 * j.nq * kNR;
    for (int t = 0; t < j.nsl; t++) {
      const float* at = j.a + t * j.sx + 8 * j.kq * kMR;
      float* out = j.out + t * kMR * j.ldo;
      const int mr = t == j.nsl - 1 ? j.mr : kMR;
      combine(part[t][0], j.kt, at, b0 + toff, out + p * kNR, j.ldo, mr, int(std::min<int64_t>(kNR, j.nc - p * kNR)));
      if (two)
        combine(part[t][1], j.kt, at, b1 + toff, out + (p + 1) * kNR, j.ldo, mr,
                int(std::min<int64_t>(kNR, j.nc - (p + 1) * kNR)));
    }
  }
}

}  // namespace mimo::cpu::avx512
