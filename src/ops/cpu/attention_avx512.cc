// Decode attention's two products with AVX-512 (this file alone is built
// with the AVX-512 flags; attention_avx2.cc calls it only when
// cpu_features() says the CPU has them). Softmax, blocking and the prefill
// path stay in attention_avx2.cc.
//
// Same arithmetic as the AVX2 direct path, so the same bits: a score is one
// 8-lane FMA chain over d, the tree, the tail by FMA (here two keys share a
// 512-bit accumulator, one per half, with q broadcast to both); an output
// element of P.V continues its FMA chain over keys in order (here 16 output
// dims per vector instead of 8).
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "core/dtype.h"
#include "ops/cpu/kernels.h"
#include "ops/cpu/simd_avx512.h"

namespace mimo::cpu::avx512 {

namespace {

inline float one(const float* p) { return *p; }
inline float one(const uint16_t* p) { return bf16_to_f32(*p); }

inline __m512 load16(const float* p) { return _mm512_loadu_ps(p); }
inline __m512 load16(const uint16_t* p) {
  return _mm512_castsi512_ps(
      _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))), 16));
}

// The next block's K and V rows into L2, a few at a time (as the AVX2 path).
struct Next {
  const AttnPrefetch& n;
  int64_t done = 0;
  inline void upto(int64_t e) {
    e = std::min(e, n.n);
    for (; done < e; done++) {
      const char* kr = static_cast<const char*>(n.k[done]);
      const char* vr = static_cast<const char*>(n.v[done]);
      for (int64_t o = 0; o < n.kbytes; o += 64) _mm_prefetch(kr + o, _MM_HINT_T1);
      for (int64_t o = 0; o < n.vbytes; o += 64) _mm_prefetch(vr + o, _MM_HINT_T1);
    }
  }
};

// Scores of R queries against 2 NP keys (or one, NP = 0).
template <int R, int NP, typename KV>
inline void scores_tile(const float* const* q, const KV* const* k, int64_t D, float* S, int64_t ldS) {
  constexpr bool kOne = NP == 0;
  constexpr int P = kOne ? 1 : NP, NK = kOne ? 1 : 2 * NP;
  __m512 acc[R][P];
  #pragma GCC unroll 8
  for (int i = 0; i < R; i++)
    #pragma GCC unroll 8
    for (int j = 0; j < P; j++) acc[i][j] = _mm512_setzero_ps();
  const int64_t d8 = D / 8 * 8;
  for (int64_t d = 0; d < d8; d += 8) {
    __m512 kv[P];
    #pragma GCC unroll 8
    for (int j = 0; j < P; j++) kv[j] = kOne ? pair8(k[0] + d, k[0] + d) : pair8(k[2 * j] + d, k[2 * j + 1] + d);
    #pragma GCC unroll 8
    for (int i = 0; i < R; i++) {
      const __m512 qv = _mm512_broadcast_f32x8(_mm256_loadu_ps(q[i] + d));
      #pragma GCC unroll 8
      for (int j = 0; j < P; j++) acc[i][j] = _mm512_fmadd_ps(qv, kv[j], acc[i][j]);
    }
  }
  #pragma GCC unroll 8
  for (int i = 0; i < R; i++)
    #pragma GCC unroll 8
    for (int j = 0; j < NK; j++) {
      float v = hsum_half(acc[i][j / 2], j % 2);
      for (int64_t d = d8; d < D; d++) v = std::fma(q[i][d], one(k[j] + d), v);
      S[i * ldS + j] = v;
    }
}

template <int R, typename KV>
void scores_rows(const float* const* q, const KV* const* k, int64_t nk, int64_t D, float* S, int64_t ldS, Next& next) {
  constexpr int NP = R <= 3 ? 4 : 2;
  constexpr int NK = 2 * NP;
  int64_t j = 0;
  for (; j + NK <= nk; j += NK) {
    next.upto((j + NK) * next.n.n / std::max<int64_t>(nk, 1));
    scores_tile<R, NP>(q, k + j, D, S + j, ldS);
  }
  for (; j + 2 <= nk; j += 2) scores_tile<R, 1>(q, k + j, D, S + j, ldS);
  if (j < nk) scores_tile<R, 0>(q, k + j, D, S + j, ldS);
}

template <typename KV>
void scores_any(int R, const float* const* q, const KV* const* k, int64_t nk, int64_t D, float* S, int64_t ldS,
                Next& next) {
  switch (R) {
    case 1: return scores_rows<1>(q, k, nk, D, S, ldS, next);
    case 2: return scores_rows<2>(q, k, nk, D, S, ldS, next);
    case 3: return scores_rows<3>(q, k, nk, D, S, ldS, next);
    case 4: return scores_rows<4>(q, k, nk, D, S, ldS, next);
    case 5: return scores_rows<5>(q, k, nk, D, S, ldS, next);
    default: return scores_rows<6>(q, k, nk, D, S, ldS, next);
  }
}

// O[i][d .. d + 16 NV) continues its FMA chains over the nk keys; p is the
// packed [key][kMR] layout.
template <int R, int NV, typename KV>
inline void pv_chunk(int64_t nk, const float* p, const KV* const* v, int64_t d, float* o, int64_t ldo) {
  __m512 acc[R][NV];
  #pragma GCC unroll 8
  for (int i = 0; i < R; i++)
    #pragma GCC unroll 8
    for (int c = 0; c < NV; c++) acc[i][c] = _mm512_loadu_ps(o + i * ldo + d + 16 * c);
  for (int64_t j = 0; j < nk; j++) {
    __m512 vv[NV];
    #pragma GCC unroll 8
    for (int c = 0; c < NV; c++) vv[c] = load16(v[j] + d + 16 * c);
    #pragma GCC unroll 8
    for (int i = 0; i < R; i++) {
      const __m512 pi = _mm512_set1_ps(p[j * kMR + i]);
      #pragma GCC unroll 8
      for (int c = 0; c < NV; c++) acc[i][c] = _mm512_fmadd_ps(pi, vv[c], acc[i][c]);
    }
  }
  #pragma GCC unroll 8
  for (int i = 0; i < R; i++)
    #pragma GCC unroll 8
    for (int c = 0; c < NV; c++) _mm512_storeu_ps(o + i * ldo + d + 16 * c, acc[i][c]);
}

template <int R, typename KV>
void pv_rows(int64_t nk, const float* p, const KV* const* v, int64_t Dv, float* o, int64_t ldo) {
  constexpr int NV = R <= 2 ? 8 : R <= 3 ? 6 : 4;  // up to 24 accumulators
  int64_t d = 0;
  for (; d + 16 * NV <= Dv; d += 16 * NV) pv_chunk<R, NV>(nk, p, v, d, o, ldo);
  for (; d < Dv; d += 16) pv_chunk<R, 1>(nk, p, v, d, o, ldo);  // Dv is a multiple of 16 here
}

template <typename KV>
void pv_any(int R, int64_t nk, const float* p, const KV* const* v, int64_t Dv, float* o, int64_t ldo) {
  switch (R) {
    case 1: return pv_rows<1>(nk, p, v, Dv, o, ldo);
    case 2: return pv_rows<2>(nk, p, v, Dv, o, ldo);
    case 3: return pv_rows<3>(nk, p, v, Dv, o, ldo);
    case 4: return pv_rows<4>(nk, p, v, Dv, o, ldo);
    case 5: return pv_rows<5>(nk, p, v, Dv, o, ldo);
    default: return pv_rows<6>(nk, p, v, Dv, o, ldo);
  }
}

}  // namespace

void attn_scores(int R, const float* const* q, const void* const* k, bool bf16, int64_t nk, int64_t D, float* S,
                 int64_t ldS, const AttnPrefetch& next) {
  Next nx{next};
  if (bf16) {
    scores_any(R, q, reinterpret_cast<const uint16_t* const*>(k), nk, D, S, ldS, nx);
    nx.upto(next.n);
  } else {
    scores_any(R, q, reinterpret_cast<const float* const*>(k), nk, D, S, ldS, nx);
    nx.upto(next.n);
  }
}

void attn_pv(int R, int64_t nk, const float* p, const void* const* v, bool bf16, int64_t Dv, float* o, int64_t ldo) {
  if (bf16) pv_any(R, nk, p, reinterpret_cast<const uint16_t* const*>(v), Dv, o, ldo);
  else pv_any(R, nk, p, reinterpret_cast<const float* const*>(v), Dv, o, ldo);
}

}  // namespace mimo::cpu::avx512
