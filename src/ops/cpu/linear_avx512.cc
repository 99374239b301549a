// AVX-512 weight-streaming kernels (this file alone is built with the
// AVX-512 flags; callers reach it only after cpu_features() says the CPU has
// them).
//
// The tiles of linear_tiles.inc, twice as wide as linear_avx2.cc's: a
// 512-bit accumulator holds two weight rows' eight FMA chains side by side
// (row j in lanes 0-7, row j+1 in lanes 8-15), and x's eight values are
// broadcast to both halves. Every chain sees the same products in the same
// order as the AVX2 kernel's 8-lane accumulator and each half is reduced by
// the same tree, so every output is bit-identical to the AVX2 kernel's (and
// so to the packed GEMM's): batch invariance holds across ISAs too. What
// changes is the instruction count per weight (one FMA per 16 instead of
// per 8, one widening per 16), and with 32 registers a group reuses each
// weight tile across up to 8 rows of x.
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "core/dtype.h"
#include "core/error.h"
#include "ops/cpu/kernels.h"
#include "ops/cpu/simd_avx512.h"

namespace mimo::cpu::avx512 {

namespace {

#include "ops/cpu/linear_tiles.inc"

// Tile shapes for a group of g <= 8 rows of x: MR x NV accumulators plus NV
// weight vectors and one x vector within the 32 registers. 2-4 rows take 4
// weight rows per tile, not 8: bench-0.5b decode at batch 4 ran 20.1-20.3
// ms per step against 20.8 with 8 (the experts' and linears' streams are
// shorter per tile; 2 threads, alternated runs). Up to 8 rows are one group;
// more go in groups of nearly equal size.
struct Groups {
  static constexpr int kMaxGroup = 8, kSlab = 24;
  static constexpr int kStreamNV = 8;  // one row of x over row tiles: 16 rows (two tiles) per tile pass
  template <typename Src>
  static void run(int g, const float* x, int64_t ldx, const Src& w, float* out, int64_t ldo, int64_t nb, int64_t ne,
                  int64_t K, bool linear, Paced* paced) {
    switch (g) {
      case 8: return group<8, 3>(x, ldx, w, out, ldo, nb, ne, K, linear, paced);
      case 7: return group<7, 3>(x, ldx, w, out, ldo, nb, ne, K, linear, paced);
      case 6: return group<6, 4>(x, ldx, w, out, ldo, nb, ne, K, linear, paced);
      case 5: return group<5, 4>(x, ldx, w, out, ldo, nb, ne, K, linear, paced);
      case 4: return group<4, 2>(x, ldx, w, out, ldo, nb, ne, K, linear, paced);
      case 3: return group<3, 2>(x, ldx, w, out, ldo, nb, ne, K, linear, paced);
      case 2: return group<2, 2>(x, ldx, w, out, ldo, nb, ne, K, linear, paced);
      default: return group<1, 4>(x, ldx, w, out, ldo, nb, ne, K, linear, paced);
    }
  }
  static int split(int64_t M, int64_t m) {
    // Group gi covers [M gi / groups, M (gi + 1) / groups); m is one's start.
    const int64_t groups = (M + 7) / 8, gi = (m * groups + M - 1) / M;
    return int(M * (gi + 1) / groups - m);
  }
};

}  // namespace

void linear_f32(const float* x, int64_t ldx, const float* w, int64_t ldw, float* out, int64_t ldo, int64_t M,
                int64_t n0, int64_t n1, int64_t K) {
  linear_rows<Groups>(x, ldx, w, ldw, out, ldo, M, n0, n1, K);
}
void linear_bf16(const float* x, int64_t ldx, const uint16_t* w, int64_t ldw, float* out, int64_t ldo, int64_t M,
                 int64_t n0, int64_t n1, int64_t K) {
  linear_rows<Groups>(x, ldx, w, ldw, out, ldo, M, n0, n1, K);
}
void linear_fp8(const float* x, int64_t ldx, const Fp8Matrix& w, float* out, int64_t ldo, int64_t M, int64_t n0,
                int64_t n1, int64_t K) {
  linear_groups<Groups>(x, ldx, Fp8Rows{w}, out, ldo, M, n0, n1, K);
}

}  // namespace mimo::cpu::avx512
