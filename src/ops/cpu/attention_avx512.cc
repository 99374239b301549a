// Attention's direct products with AVX-512 (this file alone is built with
// the AVX-512 flags; attention_avx2.cc calls it only when cpu_features()
// says the CPU has them, and then for every call, decode and prefill, a
// sliver at a time): attention_direct.inc with two keys per 512-bit vector
// in the scores (one per half, q broadcast to both) and 16 output dims per
// vector in P.V, the same bits as the AVX2 path. Softmax, blocking and the
// packed path stay in attention_avx2.cc.
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "core/dtype.h"
#include "ops/cpu/kernels.h"
#include "ops/cpu/simd_avx512.h"

namespace mimo::cpu::avx512 {

namespace {

#include "ops/cpu/attention_direct.inc"

}  // namespace

void attn_scores(int R, const float* const* q, const void* const* k, KvType kv, int64_t nk, int64_t D, float* S,
                 int64_t ldS, const AttnPrefetch& next) {
  switch (kv) {
    case KvType::BF16: return scores_direct(R, q, reinterpret_cast<const uint16_t* const*>(k), nk, D, S, ldS, next);
    case KvType::FP8: return scores_direct(R, q, reinterpret_cast<const uint8_t* const*>(k), nk, D, S, ldS, next);
    case KvType::F32: return scores_direct(R, q, reinterpret_cast<const float* const*>(k), nk, D, S, ldS, next);
  }
}

void attn_pv(int R, int64_t nk, const float* p, const void* const* v, KvType kv, int64_t Dv, float* o, int64_t ldo,
             const AttnPrefetch& next) {
  switch (kv) {
    case KvType::BF16: return pv_direct(R, nk, p, reinterpret_cast<const uint16_t* const*>(v), Dv, o, ldo, next);
    case KvType::FP8: return pv_direct(R, nk, p, reinterpret_cast<const uint8_t* const*>(v), Dv, o, ldo, next);
    case KvType::F32: return pv_direct(R, nk, p, reinterpret_cast<const float* const*>(v), Dv, o, ldo, next);
  }
}

}  // namespace mimo::cpu::avx512
