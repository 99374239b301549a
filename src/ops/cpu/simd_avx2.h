// Inline AVX2 helpers shared by the *_avx2.cc files. Include only from files
// built with -mavx2 -mfma.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace mimo::cpu::avx2 {

inline __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
inline __m256 load8(const uint16_t* p) {
  __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

// Eight FP8 E4M3 bytes as fp32 times 2^-8, exactly: each byte's exponent and
// mantissa bits are moved into an fp16's (whose exponent bias is 8 more) and
// converted, so E4M3 subnormals come out as normal fp32 numbers. (The NaN
// codes 0x7f / 0xff read as +-480; they do not occur in weights.)
inline __m256 fp8x8(const uint8_t* p) {
  __m128i w = _mm_cvtepi8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
  w = _mm_and_si128(_mm_slli_epi16(w, 7), _mm_set1_epi16(int16_t(0xBF80)));
  return _mm256_cvtph_ps(w);
}

// Eight FP8 E4M3 values as they are (a KV cache's): fp8x8 times 2^8, exact.
// (A NaN code, stored only for a NaN key or value, reads as +-480 here.)
inline __m256 load8(const uint8_t* p) { return _mm256_mul_ps(fp8x8(p), _mm256_set1_ps(256.0f)); }

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
inline float hmax(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// exp(x): x = n ln2 + r with |r| <= ln2/2 (ln2 split in two so r is exact
// enough), e^r by a degree-6 polynomial, 2^n through the exponent bits.
// Relative error ~2e-7; inputs below -87.3 (and -inf) give 0, above 88.72
// saturate.
inline __m256 exp8(__m256 x) {
  const __m256 hi = _mm256_set1_ps(88.72f), lo = _mm256_set1_ps(-87.3f);
  __m256 under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
  x = _mm256_max_ps(_mm256_min_ps(x, hi), lo);
  __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                             _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.3981999507e-3f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  // n may reach 128 (x near 88.7): scale in two steps so 2^n never overflows
  // the exponent field.
  __m256i ni = _mm256_cvtps_epi32(n);
  __m256i n1 = _mm256_srai_epi32(ni, 1), n2 = _mm256_sub_epi32(ni, n1);
  __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, _mm256_set1_epi32(127)), 23));
  __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, _mm256_set1_epi32(127)), 23));
  p = _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
  return _mm256_andnot_ps(under, p);
}

// Round-to-nearest-even fp32 -> bf16 of 8 lanes (NaN stays NaN), packed
// into the low 128 bits.
inline __m128i to_bf16_8(__m256 v) {
  __m256i u = _mm256_castps_si256(v);
  __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
  __m256i r = _mm256_add_epi32(u, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff)));
  __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_UNORD_Q));
  r = _mm256_blendv_epi8(r, _mm256_or_si256(u, _mm256_set1_epi32(0x400000)), nan);
  r = _mm256_srli_epi32(r, 16);
  __m128i lo = _mm256_castsi256_si128(r), hi2 = _mm256_extracti128_si256(r, 1);
  return _mm_packus_epi32(lo, hi2);
}

// The vector operations linear_tiles.inc and attention_direct.inc are
// written against (see there), for 8-lane vectors.
struct Isa {
  using Vec = __m256;
  static constexpr int kRows = 1, kDims = 8;
  static Vec zero() { return _mm256_setzero_ps(); }
  static Vec x8(const float* x) { return _mm256_loadu_ps(x); }
  template <typename W>
  static Vec w8(const W* a, const W*) {
    return load8(a);
  }
  static Vec fp8(const uint8_t* a, const uint8_t*, float sa, float) {
    return _mm256_mul_ps(fp8x8(a), _mm256_set1_ps(sa));
  }
  static Vec fma(Vec x, Vec w, Vec acc) { return _mm256_fmadd_ps(x, w, acc); }
  // out[u] = hsum(in[u]) for 8 vectors at once: hsum's adds, level by level
  // across the vectors (7 adds and 15 shuffles instead of 24 and 24).
  static void sums8(const Vec in[8], float* out) {
    __m256 b[4], c[2];
    for (int u = 0; u < 4; u++)  // lanes i + i+4: [in 2u | in 2u+1]
      b[u] = _mm256_add_ps(_mm256_permute2f128_ps(in[2 * u], in[2 * u + 1], 0x20),
                           _mm256_permute2f128_ps(in[2 * u], in[2 * u + 1], 0x31));
    for (int u = 0; u < 2; u++)  // + 2: 128-bit lane L holds vectors 4u + L, 4u + 2 + L
      c[u] = _mm256_add_ps(_mm256_shuffle_ps(b[2 * u], b[2 * u + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                           _mm256_shuffle_ps(b[2 * u], b[2 * u + 1], _MM_SHUFFLE(3, 2, 3, 2)));
    // + 1: element 4L + m is vector L + 2m.
    __m256 d = _mm256_add_ps(_mm256_shuffle_ps(c[0], c[1], _MM_SHUFFLE(2, 0, 2, 0)),
                             _mm256_shuffle_ps(c[0], c[1], _MM_SHUFFLE(3, 1, 3, 1)));
    _mm256_storeu_ps(out, _mm256_permutevar8x32_ps(d, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
  }
  static Vec set1(float v) { return _mm256_set1_ps(v); }
  template <typename W>
  static Vec vload(const W* p) {
    return load8(p);
  }
  static void vstore(float* p, Vec v) { _mm256_storeu_ps(p, v); }
};

#include "ops/cpu/simd_sums.inc"

}  // namespace mimo::cpu::avx2
