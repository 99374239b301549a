// Inline AVX-512 helpers for the *_avx512.cc files (include only from files
// built with the AVX-512 flags). Everything here is in an unnamed namespace:
// an inline function compiled with AVX-512 enabled must never be merged with
// a same-named copy the AVX2 or portable files use, or a CPU without AVX-512
// could end up running it.
#pragma once

#include <immintrin.h>

#include <cstdint>


namespace mimo::cpu::avx512 {
namespace {

// Two weight rows' next 8 values side by side (row a in lanes 0-7, row b in
// lanes 8-15), widened to fp32: each half is one AVX2 load8 of that row.
inline __m512 pair8(const float* a, const float* b) {
  return _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_loadu_ps(a)), _mm256_loadu_ps(b), 1);
}
inline __m512 pair8(const uint16_t* a, const uint16_t* b) {
  __m256i h = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a))),
                                      _mm_loadu_si128(reinterpret_cast<const __m128i*>(b)), 1);
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}
// FP8 E4M3 as fp32 times 2^-8, exactly, as avx2::fp8x8 (see simd_avx2.h).
inline __m512 pair8(const uint8_t* a, const uint8_t* b) {
  __m128i q = _mm_unpacklo_epi64(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(a)),
                                 _mm_loadl_epi64(reinterpret_cast<const __m128i*>(b)));
  __m256i w = _mm256_cvtepi8_epi16(q);
  w = _mm256_and_si256(_mm256_slli_epi16(w, 7), _mm256_set1_epi16(int16_t(0xBF80)));
  return _mm512_cvtph_ps(w);
}

// The vector operations linear_tiles.inc and attention_direct.inc are
// written against (see there): two weight rows (keys) per vector, x (q)
// broadcast to both halves; 16 output dims per vector in P.V.
struct Isa {
  using Vec = __m512;
  static constexpr int kRows = 2, kDims = 16;
  static Vec zero() { return _mm512_setzero_ps(); }
  static Vec x8(const float* x) { return _mm512_broadcast_f32x8(_mm256_loadu_ps(x)); }
  template <typename W>
  static Vec w8(const W* a, const W* b) {
    return pair8(a, b);
  }
  static Vec fp8(const uint8_t* a, const uint8_t* b, float sa, float sb) {
    return _mm512_mul_ps(pair8(a, b), _mm512_mask_blend_ps(__mmask16(0xFF00), _mm512_set1_ps(sa), _mm512_set1_ps(sb)));
  }
  static Vec fma(Vec x, Vec w, Vec acc) { return _mm512_fmadd_ps(x, w, acc); }
  // out[2u + h] = avx2::hsum of half h of in[u] for 8 vectors (16 sums) at
  // once: the same adds, level by level across the vectors (7 adds and 15
  // shuffles instead of 48 and 56).
  static void sums8(const Vec in[8], float* out) {
    __m512 b[4], c[2];
    for (int u = 0; u < 4; u++)  // lanes i + i+4: 128-bit lane L is half L of in 2u + L / 2
      b[u] = _mm512_add_ps(_mm512_shuffle_f32x4(in[2 * u], in[2 * u + 1], _MM_SHUFFLE(2, 0, 2, 0)),
                           _mm512_shuffle_f32x4(in[2 * u], in[2 * u + 1], _MM_SHUFFLE(3, 1, 3, 1)));
    for (int u = 0; u < 2; u++)  // + 2: lane L holds halves 8u + L, 8u + 4 + L
      c[u] = _mm512_add_ps(_mm512_shuffle_ps(b[2 * u], b[2 * u + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                           _mm512_shuffle_ps(b[2 * u], b[2 * u + 1], _MM_SHUFFLE(3, 2, 3, 2)));
    // + 1: element 4L + m is half L + 4m.
    __m512 d = _mm512_add_ps(_mm512_shuffle_ps(c[0], c[1], _MM_SHUFFLE(2, 0, 2, 0)),
                             _mm512_shuffle_ps(c[0], c[1], _MM_SHUFFLE(3, 1, 3, 1)));
    _mm512_storeu_ps(out, _mm512_permutexvar_ps(
                              _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), d));
  }
  // FP8 E4M3 keys as they are (a KV cache's; weights go through fp8()).
  static Vec w8(const uint8_t* a, const uint8_t* b) { return _mm512_mul_ps(pair8(a, b), _mm512_set1_ps(256.0f)); }
  static Vec set1(float v) { return _mm512_set1_ps(v); }
  static Vec vload(const float* p) { return _mm512_loadu_ps(p); }
  static Vec vload(const uint8_t* p) {  // 16 FP8 E4M3 values as they are
    __m256i w = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    w = _mm256_and_si256(_mm256_slli_epi16(w, 7), _mm256_set1_epi16(int16_t(0xBF80)));
    return _mm512_mul_ps(_mm512_cvtph_ps(w), _mm512_set1_ps(256.0f));
  }
  static Vec vload(const uint16_t* p) {
    return _mm512_castsi512_ps(
        _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))), 16));
  }
  static void vstore(float* p, Vec v) { _mm512_storeu_ps(p, v); }
};

#include "ops/cpu/simd_sums.inc"

}  // namespace
}  // namespace mimo::cpu::avx512
