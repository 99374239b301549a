// AVX2+FMA weight-streaming kernels (this file alone is built with -mavx2
// -mfma; callers reach it only after cpu_features() says the CPU has them).
//
// linear: out = x w^T in dot-product form for small M (decode). A tile of MR
// rows of x against NR rows of w keeps MR*NR 8-lane accumulators; bf16 and
// fp8 weights are widened (fp8 also scaled) in registers, so weights stream
// from memory at two or one bytes each, once whatever M is (a group of rows
// reuses the weight tile from L1).
//
// Every output is summed in the backend's one order (kernels.h): one 8-lane
// FMA accumulator over k < K8, the fixed horizontal tree, then the tail by
// FMA. The packed GEMM reproduces it bit for bit, so batch composition never
// changes a row's result.
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "core/dtype.h"
#include "ops/cpu/kernels.h"
#include "ops/cpu/simd_avx2.h"

namespace mimo::cpu::avx2 {

namespace {

inline float scalar(const float* p, int64_t i) { return p[i]; }
inline float scalar(const uint16_t* p, int64_t i) { return bf16_to_f32(p[i]); }

// Weight rows as the tiles see them. A source names rows by index (at(n)
// moves to row n) and gives byte addresses for prefetching; its Cursor
// reads 8 fp32 weights of row j at k, in k order (step(k) runs once per 8).

// fp32 or bf16 rows `ld` elements apart; bf16 is widened in registers.
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
    inline __m256 load(int j, int64_t k) const { return load8(r.w + j * r.ld + k); }
    inline float one(int j, int64_t k) const { return scalar(r.w + j * r.ld, k); }
  };
};

// FP8 rows with per-row block scales: w = fp8 * s (fp8x8 gives fp8 * 2^-8
// exactly and the scale is taken times 2^8, so the fp32 weight is the one
// rounding of fp8 * s, as dequant_fp8_row and the loader's dequantisation give).
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
    inline __m256 load(int j, int64_t k) const {
      return _mm256_mul_ps(fp8x8(r.m.q + j * r.m.ld + k), _mm256_set1_ps(sc[j]));
    }
    inline float one(int j, int64_t k) const {
      return fp8e4m3_table()[r.m.q[j * r.m.ld + k]] * r.m.s[j * r.m.lds + k / r.m.block];
    }
  };
};

// An MR x NR tile in the backend's order; prefetch(k) runs once per 64 bytes
// of each weight row consumed (k a multiple of a cache line's elements).
template <int MR, int NR, typename Src, typename Prefetch>
inline void tile_with(const float* x, int64_t ldx, const Src& w, float* out, int64_t ldo, int64_t K,
                      Prefetch&& prefetch) {
  __m256 acc[MR][NR];
  #pragma GCC unroll 16
  for (int i = 0; i < MR; i++)
    #pragma GCC unroll 16
    for (int j = 0; j < NR; j++) acc[i][j] = _mm256_setzero_ps();
  const int64_t k8 = K / 8 * 8;
  constexpr int64_t kLine = 64 / Src::kBytes;
  typename Src::template Cursor<NR> c(w);
  for (int64_t k = 0; k < k8; k += 8) {
    if (k % kLine == 0) prefetch(k);
    c.step(k);
    if constexpr (MR == 1) {
      // One row: NR independent chains hide the FMA latency; each weight
      // vector is used once, so load it straight into the FMA.
      __m256 xv = _mm256_loadu_ps(x + k);
      #pragma GCC unroll 16
      for (int j = 0; j < NR; j++) acc[0][j] = _mm256_fmadd_ps(xv, c.load(j, k), acc[0][j]);
    } else {
      __m256 wv[NR];
      #pragma GCC unroll 16
      for (int j = 0; j < NR; j++) wv[j] = c.load(j, k);
      #pragma GCC unroll 16
      for (int i = 0; i < MR; i++) {
        __m256 xv = _mm256_loadu_ps(x + i * ldx + k);
        #pragma GCC unroll 16
        for (int j = 0; j < NR; j++) acc[i][j] = _mm256_fmadd_ps(xv, wv[j], acc[i][j]);
      }
    }
  }
  // The tail of the order: s = fma(x, w, s) for k in [K8, K).
  #pragma GCC unroll 16
  for (int i = 0; i < MR; i++)
    #pragma GCC unroll 16
    for (int j = 0; j < NR; j++) {
      float s = hsum(acc[i][j]);
      for (int64_t k = k8; k < K; k++) s = std::fma(x[i * ldx + k], c.one(j, k), s);
      out[i * ldo + j] = s;
    }
}

// Weight rows are short (a few KB) and read as NR interleaved streams, too
// short for the hardware prefetcher to ramp up on: fetch the next tile's rows
// (the next NR rows, usually adjacent in memory) one line per row per 64
// bytes consumed.
template <int MR, int NR, typename Src>
inline void tile(const float* x, int64_t ldx, const Src& w, float* out, int64_t ldo, int64_t K) {
  tile_with<MR, NR>(x, ldx, w, out, ldo, K, [&](int64_t k) {
    #pragma GCC unroll 16
    for (int j = 0; j < NR; j++) _mm_prefetch(w.addr(j + NR, k), _MM_HINT_T0);
  });
}

template <int MR, int NR, typename Src>
void tiles(const float* x, int64_t ldx, const Src& w, float* out, int64_t ldo, int64_t n0, int64_t n1, int64_t K) {
  int64_t n = n0;
  for (; n + NR <= n1; n += NR) tile<MR, NR>(x, ldx, w.at(n), out + n, ldo, K);
  for (; n < n1; n++) tile<MR, 1>(x, ldx, w.at(n), out + n, ldo, K);
}

// MR rows of x against contiguous weight rows [n0, n1) (decode) of up to
// 2 KB: the same tiles and arithmetic as tile<MR, NR>, but the software
// prefetch runs linearly through the block, ~8 rows ahead of the reads,
// into L2, and never past the block's end. Measured on Zen 3 (single
// thread, CPU time, A/B alternated, weights in 128 KB - 1 MB blocks as the
// pool hands them out): K = 512 +25-35%, K = 1024 +2-5% over prefetching
// the next tile row by row (tile()); K >= 2048 rows gained nothing, so they
// keep tile().
// pf: the next line to prefetch; rd: how far the reads have come. Starting
// close behind the reads, pf gains an extra NR lines per step until it is
// `dist` ahead, so short blocks (the experts' 128 KB column blocks) are
// covered from their start.
template <int MR, int NR, typename Src>
inline void tile_linear(const float* x, int64_t ldx, const Src& w, int64_t K, float* out, int64_t ldo, const char*& pf,
                        const char*& rd, const char* pf_end, int64_t dist) {
  tile_with<MR, NR>(x, ldx, w, out, ldo, K, [&](int64_t) {
    // NR lines are read per line's worth of k: prefetch as many, in order.
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

// Whether rows [n0, n1) of w are one contiguous run short enough for
// tile_linear's prefetch to pay (see above).
template <typename Src>
inline bool linear_prefetch_pays(const Src& w, int64_t K) {
  return w.contiguous(K) && K * Src::kBytes <= 2048;
}

// MR rows of x against weight rows [n0, n1) in NR-row tiles with the linear
// prefetch (the caller checked linear_prefetch_pays), the rest one by one.
template <int MR, int NR, typename Src>
void rows_linear(const float* x, int64_t ldx, const Src& w, float* out, int64_t ldo, int64_t n0, int64_t n1,
                 int64_t K) {
  const char* rd = w.addr(n0, 0);
  const char* pf = rd + 64 * NR;
  const char* pf_end = w.addr(n1, 0);
  const int64_t dist = std::max<int64_t>(NR, 8) * K * Src::kBytes;
  int64_t n = n0;
  for (; n + NR <= n1; n += NR) tile_linear<MR, NR>(x, ldx, w.at(n), K, out + n, ldo, pf, rd, pf_end, dist);
  for (; n < n1; n++) tile<MR, 1>(x, ldx, w.at(n), out + n, ldo, K);
}

// One group of MR rows of x against weight rows [nb, ne), with the linear
// prefetch when those rows are one short contiguous run.
template <int MR, int NR, typename Src>
void group(const float* x, int64_t ldx, const Src& w, float* out, int64_t ldo, int64_t nb, int64_t ne, int64_t K,
           bool linear) {
  if (linear) rows_linear<MR, NR>(x, ldx, w, out, ldo, nb, ne, K);
  else tiles<MR, NR>(x, ldx, w, out, ldo, nb, ne, K);
}

// The tile shape for a group of g <= 4 rows (a 4x3 tile fills the 16
// registers; one row keeps 8 independent chains).
template <typename Src>
void group_of(int g, const float* x, int64_t ldx, const Src& w, float* out, int64_t ldo, int64_t nb, int64_t ne,
              int64_t K, bool linear) {
  switch (g) {
    case 4: return group<4, 3>(x, ldx, w, out, ldo, nb, ne, K, linear);
    case 3: return group<3, 3>(x, ldx, w, out, ldo, nb, ne, K, linear);
    case 2: return group<2, 4>(x, ldx, w, out, ldo, nb, ne, K, linear);
    default: return group<1, 8>(x, ldx, w, out, ldo, nb, ne, K, linear);
  }
}

template <typename Src>
void linear_impl(const float* x, int64_t ldx, const Src& w, float* out, int64_t ldo, int64_t M, int64_t n0, int64_t n1,
                 int64_t K) {
  // Up to 4 rows (decode, an expert's share of a decode batch) are one
  // group: no weights are reused across groups, so they are one stream,
  // prefetched linearly when contiguous. Measured with M = 2..4 rows against
  // 1-2 MB of bf16 weights in 256 KB - 512 KB row runs, cold, 2 threads, A/B
  // alternated: K = 512 +20-40%, K = 1024 +0-10% over tile()'s next-rows
  // prefetch.
  if (M <= 4) return group_of(int(M), x, ldx, w, out, ldo, n0, n1, K, linear_prefetch_pays(w, K));
  // More rows go in groups of at most 4 over column slabs whose weight rows
  // (~32 KB) stay in L1 while every group uses them.
  const int64_t slab = std::max<int64_t>(12, (32768 / std::max<int64_t>(K * Src::kBytes, 1)) / 12 * 12);
  for (int64_t nb = n0; nb < n1; nb += slab) {
    const int64_t ne = std::min(n1, nb + slab);
    for (int64_t m = 0; m < M;) {
      const int64_t left = M - m;
      const int g = left >= 7 ? 4 : left >= 5 ? 3 : int(left);
      group_of(g, x + m * ldx, ldx, w, out + m * ldo, ldo, nb, ne, K, false);
      m += g;
    }
  }
}

template <typename W>
inline float dot_impl(const float* a, const W* b, int64_t n) {
  float r;
  tile<1, 1>(a, 0, PlainRows<W>{b, 0}, &r, 0, n);
  return r;
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
void dequant_fp8_row(const Fp8Matrix& w, int64_t n, int64_t K, float* dst) {
  const Fp8Rows row = Fp8Rows{w}.at(n);
  Fp8Rows::Cursor<1> c(row);
  const int64_t k8 = K / 8 * 8;
  for (int64_t k = 0; k < k8; k += 8) {
    c.step(k);
    _mm256_storeu_ps(dst + k, c.load(0, k));
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
