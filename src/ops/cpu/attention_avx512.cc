// Decode attention's two products with AVX-512 (this file alone is built
// with the AVX-512 flags; attention_avx2.cc calls it only when
// cpu_features() says the CPU has them): attention_direct.inc with two keys
// per 512-bit vector in the scores (one per half, q broadcast to both) and
// 16 output dims per vector in P.V, the same bits as the AVX2 path. Softmax,
// blocking and the prefill path stay in attention_avx2.cc.
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "core/dtype.h"
#include "ops/cpu/kernels.h"
#include "ops/cpu/simd_avx512.h"

namespace mimo::cpu::avx512 {

namespace {

struct Isa {
  using Vec = __m512;
  static constexpr int kRows = 2, kDims = 16;
  static Vec zero() { return _mm512_setzero_ps(); }
  static Vec x8(const float* x) { return _mm512_broadcast_f32x8(_mm256_loadu_ps(x)); }
  template <typename W>
  static Vec w8(const W* a, const W* b) {
    return pair8(a, b);
  }
  static Vec fma(Vec x, Vec w, Vec acc) { return _mm512_fmadd_ps(x, w, acc); }
  static float sum8(Vec v, int row) { return hsum_half(v, row); }
  static Vec set1(float v) { return _mm512_set1_ps(v); }
  static Vec vload(const float* p) { return _mm512_loadu_ps(p); }
  static Vec vload(const uint16_t* p) {
    return _mm512_castsi512_ps(
        _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))), 16));
  }
  static void vstore(float* p, Vec v) { _mm512_storeu_ps(p, v); }
};

#include "ops/cpu/attention_direct.inc"

}  // namespace

void attn_scores(int R, const float* const* q, const void* const* k, bool bf16, int64_t nk, int64_t D, float* S,
                 int64_t ldS, const AttnPrefetch& next) {
  if (bf16) scores_direct(R, q, reinterpret_cast<const uint16_t* const*>(k), nk, D, S, ldS, next);
  else scores_direct(R, q, reinterpret_cast<const float* const*>(k), nk, D, S, ldS, next);
}

void attn_pv(int R, int64_t nk, const float* p, const void* const* v, bool bf16, int64_t Dv, float* o, int64_t ldo) {
  if (bf16) pv_direct(R, nk, p, reinterpret_cast<const uint16_t* const*>(v), Dv, o, ldo);
  else pv_direct(R, nk, p, reinterpret_cast<const float* const*>(v), Dv, o, ldo);
}

}  // namespace mimo::cpu::avx512
