// The AVX-512 FMA loop of machine.cc (this file alone is built with
// -mavx512f; called only when cpu_features().avx512 says the CPU has it).
#include <immintrin.h>

#include "bench/machine.h"

namespace mimo::bench::avx512 {

float fma_loop(int64_t iters) {
  // kFmaChains chains of 16 lanes cover the FMA latency (4 cycles) times two
  // 512-bit pipes with room to spare; the operands never leave registers.
  __m512 a[kFmaChains];
  for (int j = 0; j < kFmaChains; j++) a[j] = _mm512_set1_ps(float(j) * 1e-3f);
  const __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
  for (int64_t i = 0; i < iters; i++)
    for (int j = 0; j < kFmaChains; j++) a[j] = _mm512_fmadd_ps(a[j], m, c);
  for (int j = 1; j < kFmaChains; j++) a[0] = _mm512_add_ps(a[0], a[j]);
  return _mm512_reduce_add_ps(a[0]);
}

}  // namespace mimo::bench::avx512
