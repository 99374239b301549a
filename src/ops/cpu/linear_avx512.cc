// AVX-512 weight-streaming kernels (this file alone is built with the
// AVX-512 flags; callers reach it only after cpu_features() says the CPU has
// them).
//
// The same dot-product form and the same arithmetic as linear_avx2.cc, twice
// as wide: a 512-bit accumulator holds two weight rows' eight FMA chains side
// by side (row j in lanes 0-7, row j+1 in lanes 8-15), and x's eight values
// are broadcast to both halves. Every chain sees the same products in the
// same order as the AVX2 kernel's 8-lane accumulator, each half is reduced by
// the same tree and the tail is added by FMA in order, so every output is
// bit-identical to the AVX2 kernel's (and so to the packed GEMM's): batch
// invariance holds across ISAs too. What changes is the instruction count
// per weight (one FMA per 16 instead of per 8, one widening per 16), and
// with 32 registers a group reuses each weight tile across up to 8 rows of x.
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "core/dtype.h"
#include "ops/cpu/kernels.h"
#include "ops/cpu/simd_avx512.h"

namespace mimo::cpu::avx512 {

namespace {

inline float scalar(const float* p, int64_t i) { return p[i]; }
inline float scalar(const uint16_t* p, int64_t i) { return bf16_to_f32(p[i]); }

// Weight rows as the tiles see them (as in linear_avx2.cc): at(n) moves to
// row n, addr() gives byte addresses for prefetching, and a Cursor reads two
// rows' next 8 fp32 weights at k as one vector (step(k) runs once per 8).
template <typename W>
struct PlainRows {
  const W* w;
  int64_t ld;
  static constexpr int64_t kBytes = int64_t(sizeof(W));
  PlainRows at(int64_t n) const { return {w + n * ld, ld}; }
  bool contiguous(int64_t K) const { return ld == K; }
  const char* addr(int64_t j, int64_t k) const { return reinterpret_cast<const char*>(w + j * ld + k); }
  template <int NR>
  struct Cursor {
    const PlainRows& r;
    explicit Cursor(const PlainRows& rows) : r(rows) {}
    inline void step(int64_t) {}
    inline __m512 load2(int ja, int jb, int64_t k) const { return pair8(r.w + ja * r.ld + k, r.w + jb * r.ld + k); }
    inline float one(int j, int64_t k) const { return scalar(r.w + j * r.ld, k); }
  };
};

// FP8 rows with per-row block scales: (fp8 * 2^-8) * (s * 2^8), the one
// rounding avx2::Fp8Rows and dequant_fp8_row give.
struct Fp8Rows {
  Fp8Matrix m;
  static constexpr int64_t kBytes = 1;
  Fp8Rows at(int64_t n) const { return {{m.q + n * m.ld, m.ld, m.s + n * m.lds, m.lds, m.block}}; }
  bool contiguous(int64_t K) const { return m.ld == K; }
  const char* addr(int64_t j, int64_t k) const { return reinterpret_cast<const char*>(m.q + j * m.ld + k); }
  template <int NR>
  struct Cursor {
    const Fp8Rows& r;
    float sc[NR] = {};
    int64_t next = 0;
    explicit Cursor(const Fp8Rows& rows) : r(rows) {}
    inline void step(int64_t k) {
      if (k != next) return;
      #pragma GCC unroll 16
      for (int j = 0; j < NR; j++) sc[j] = r.m.s[j * r.m.lds + k / r.m.block] * 256.0f;
      next += r.m.block;
    }
    inline __m512 load2(int ja, int jb, int64_t k) const {
      const __m512 s = _mm512_mask_blend_ps(__mmask16(0xFF00), _mm512_set1_ps(sc[ja]), _mm512_set1_ps(sc[jb]));
      return _mm512_mul_ps(pair8(r.m.q + ja * r.m.ld + k, r.m.q + jb * r.m.ld + k), s);
    }
    inline float one(int j, int64_t k) const {
      return fp8e4m3_table()[r.m.q[j * r.m.ld + k]] * r.m.s[j * r.m.lds + k / r.m.block];
    }
  };
};

// An MR x NR tile (NR = 2 NP weight rows, or one row when NP is 0: both
// halves then read that row and only the low one is kept), in the backend's
// order; prefetch(k) runs once per 64 bytes of each weight row consumed.
template <int MR, int NP, typename Src, typename Prefetch>
inline void tile_with(const float* x, int64_t ldx, const Src& w, float* out, int64_t ldo, int64_t K,
                      Prefetch&& prefetch) {
  constexpr bool kSingle = NP == 0;
  constexpr int P = kSingle ? 1 : NP, NR = kSingle ? 1 : 2 * NP;
  __m512 acc[MR][P];
  #pragma GCC unroll 16
  for (int i = 0; i < MR; i++)
    #pragma GCC unroll 16
    for (int j = 0; j < P; j++) acc[i][j] = _mm512_setzero_ps();
  const int64_t k8 = K / 8 * 8;
  constexpr int64_t kLine = 64 / Src::kBytes;
  typename Src::template Cursor<NR> c(w);
  for (int64_t k = 0; k < k8; k += 8) {
    if (k % kLine == 0) prefetch(k);
    c.step(k);
    __m512 wv[P];
    #pragma GCC unroll 16
    for (int j = 0; j < P; j++) wv[j] = kSingle ? c.load2(0, 0, k) : c.load2(2 * j, 2 * j + 1, k);
    #pragma GCC unroll 16
    for (int i = 0; i < MR; i++) {
      const __m512 xv = _mm512_broadcast_f32x8(_mm256_loadu_ps(x + i * ldx + k));
      #pragma GCC unroll 16
      for (int j = 0; j < P; j++) acc[i][j] = _mm512_fmadd_ps(xv, wv[j], acc[i][j]);
    }
  }
  // Per row: the tree over its 8 lanes, then s = fma(x, w, s) for k in [K8, K).
  #pragma GCC unroll 16
  for (int i = 0; i < MR; i++)
    #pragma GCC unroll 16
    for (int j = 0; j < NR; j++) {
      float s = hsum_half(acc[i][j / 2], j % 2);
      for (int64_t k = k8; k < K; k++) s = std::fma(x[i * ldx + k], c.one(j, k), s);
      out[i * ldo + j] = s;
    }
}

// Prefetch of the next tile's rows, one line per row per 64 bytes consumed
// (for weights that are not one short contiguous run).
template <int MR, int NP, typename Src>
inline void tile(const float* x, int64_t ldx, const Src& w, float* out, int64_t ldo, int64_t K) {
  constexpr int NR = NP == 0 ? 1 : 2 * NP;
  tile_with<MR, NP>(x, ldx, w, out, ldo, K, [&](int64_t k) {
    #pragma GCC unroll 16
    for (int j = 0; j < NR; j++) _mm_prefetch(w.addr(j + NR, k), _MM_HINT_T0);
  });
}

template <int MR, int NP, typename Src>
void tiles(const float* x, int64_t ldx, const Src& w, float* out, int64_t ldo, int64_t n0, int64_t n1, int64_t K) {
  constexpr int NR = 2 * NP;
  int64_t n = n0;
  for (; n + NR <= n1; n += NR) tile<MR, NP>(x, ldx, w.at(n), out + n, ldo, K);
  for (; n + 2 <= n1; n += 2) tile<MR, 1>(x, ldx, w.at(n), out + n, ldo, K);
  if (n < n1) tile<MR, 0>(x, ldx, w.at(n), out + n, ldo, K);
}

// Contiguous rows of up to 2 KB: the software prefetch runs linearly through
// the block ahead of the reads, into L2, ramping up from close behind them
// (linear_avx2.cc's tile_linear; measured there).
template <int MR, int NP, typename Src>
inline void tile_linear(const float* x, int64_t ldx, const Src& w, int64_t K, float* out, int64_t ldo, const char*& pf,
                        const char*& rd, const char* pf_end, int64_t dist) {
  constexpr int NR = 2 * NP;
  tile_with<MR, NP>(x, ldx, w, out, ldo, K, [&](int64_t) {
    rd += 64 * NR;
    for (int twice = 0; twice < 2; twice++) {
      #pragma GCC unroll 16
      for (int j = 0; j < NR; j++)
        if (pf + 64 * j < pf_end) _mm_prefetch(pf + 64 * j, _MM_HINT_T1);
      pf += 64 * NR;
      if (pf >= rd + dist) break;
    }
  });
}

template <typename Src>
inline bool linear_prefetch_pays(const Src& w, int64_t K) {
  return w.contiguous(K) && K * Src::kBytes <= 2048;
}

template <int MR, int NP, typename Src>
void rows_linear(const float* x, int64_t ldx, const Src& w, float* out, int64_t ldo, int64_t n0, int64_t n1,
                 int64_t K) {
  constexpr int NR = 2 * NP;
  const char* rd = w.addr(n0, 0);
  const char* pf = rd + 64 * NR;
  const char* pf_end = w.addr(n1, 0);
  const int64_t dist = std::max<int64_t>(NR, 8) * K * Src::kBytes;
  int64_t n = n0;
  for (; n + NR <= n1; n += NR) tile_linear<MR, NP>(x, ldx, w.at(n), K, out + n, ldo, pf, rd, pf_end, dist);
  for (; n + 2 <= n1; n += 2) tile<MR, 1>(x, ldx, w.at(n), out + n, ldo, K);
  if (n < n1) tile<MR, 0>(x, ldx, w.at(n), out + n, ldo, K);
}

template <int MR, int NP, typename Src>
void group(const float* x, int64_t ldx, const Src& w, float* out, int64_t ldo, int64_t nb, int64_t ne, int64_t K,
           bool linear) {
  if (linear) rows_linear<MR, NP>(x, ldx, w, out, ldo, nb, ne, K);
  else tiles<MR, NP>(x, ldx, w, out, ldo, nb, ne, K);
}

// Tile shapes for a group of g <= 8 rows of x: MR x NP accumulators plus NP
// weight vectors and one x vector within the 32 registers. 2-4 rows take 4
// weight rows per tile, not 8: bench-0.5b decode at batch 4 ran 20.1-20.3
// ms per step against 20.8 with 8 (the experts' and linears' streams are
// shorter per tile; 2 threads, alternated runs).
template <typename Src>
void group_of(int g, const float* x, int64_t ldx, const Src& w, float* out, int64_t ldo, int64_t nb, int64_t ne,
              int64_t K, bool linear) {
  switch (g) {
    case 8: return group<8, 3>(x, ldx, w, out, ldo, nb, ne, K, linear);
    case 7: return group<7, 3>(x, ldx, w, out, ldo, nb, ne, K, linear);
    case 6: return group<6, 4>(x, ldx, w, out, ldo, nb, ne, K, linear);
    case 5: return group<5, 4>(x, ldx, w, out, ldo, nb, ne, K, linear);
    case 4: return group<4, 2>(x, ldx, w, out, ldo, nb, ne, K, linear);
    case 3: return group<3, 2>(x, ldx, w, out, ldo, nb, ne, K, linear);
    case 2: return group<2, 2>(x, ldx, w, out, ldo, nb, ne, K, linear);
    default: return group<1, 4>(x, ldx, w, out, ldo, nb, ne, K, linear);
  }
}

constexpr int64_t kMaxGroup = 8;

template <typename Src>
void linear_impl(const float* x, int64_t ldx, const Src& w, float* out, int64_t ldo, int64_t M, int64_t n0, int64_t n1,
                 int64_t K) {
  // Up to 8 rows are one group: one pass over the weights, prefetched
  // linearly when contiguous.
  if (M <= kMaxGroup) return group_of(int(M), x, ldx, w, out, ldo, n0, n1, K, linear_prefetch_pays(w, K));
  // More rows: groups of nearly equal size over column slabs whose weight
  // rows (~32 KB) stay in L1 while every group uses them.
  const int64_t groups = (M + kMaxGroup - 1) / kMaxGroup;
  const int64_t slab = std::max<int64_t>(24, (32768 / std::max<int64_t>(K * Src::kBytes, 1)) / 24 * 24);
  for (int64_t nb = n0; nb < n1; nb += slab) {
    const int64_t ne = std::min(n1, nb + slab);
    for (int64_t gi = 0, m = 0; gi < groups; gi++) {
      const int64_t m1 = M * (gi + 1) / groups;
      group_of(int(m1 - m), x + m * ldx, ldx, w, out + m * ldo, ldo, nb, ne, K, false);
      m = m1;
    }
  }
}

}  // namespace

void linear_f32(const float* x, int64_t ldx, const float* w, int64_t ldw, float* out, int64_t ldo, int64_t M,
                int64_t n0, int64_t n1, int64_t K) {
  linear_impl(x, ldx, PlainRows<float>{w, ldw}, out, ldo, M, n0, n1, K);
}
void linear_bf16(const float* x, int64_t ldx, const uint16_t* w, int64_t ldw, float* out, int64_t ldo, int64_t M,
                 int64_t n0, int64_t n1, int64_t K) {
  linear_impl(x, ldx, PlainRows<uint16_t>{w, ldw}, out, ldo, M, n0, n1, K);
}
void linear_fp8(const float* x, int64_t ldx, const Fp8Matrix& w, float* out, int64_t ldo, int64_t M, int64_t n0,
                int64_t n1, int64_t K) {
  linear_impl(x, ldx, Fp8Rows{w}, out, ldo, M, n0, n1, K);
}

}  // namespace mimo::cpu::avx512
