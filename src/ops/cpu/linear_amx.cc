// AMX matrix products for bf16 weights (this file alone is built with the
// AMX flags; callers reach it only after cpu_features() says the CPU and
// the kernel allow AMX).
//
// out[m, n] = sum_k x[m, k] w[n, k] as tile products: A = 16 rows of x x
// 32 k, B = 16 weight rows x 32 k in the pair-interleaved form TDPBF16PS
// wants (one contiguous 1 KB tile of the AMX layout, kernels.h), C = 16 x
// 16 fp32 sums, rows of out as they are. x is fp32 and the unit multiplies
// bf16, so each x value goes in as two bf16 terms, hi = bf16(x) and lo =
// bf16(x - hi) (x to 2^-18 of itself instead of bf16's 2^-9); the weight is
// exact in bf16, each product is exact in fp32, and C += A.hi then C += A.lo
// for every 32 k in k order. That order does not depend on how many rows of
// x share the call or which tile they sit in, so results are batch
// invariant: a decode row, a verify row and a prefill row with the same x
// get the same bits, which speculative decoding's greedy equality needs.
// (They are not the AVX2/AVX-512 kernels' bits: a model whose weights are in
// the AMX layout runs every product here.)
#include <immintrin.h>

#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "core/dtype.h"
#include "ops/cpu/kernels.h"

namespace mimo::cpu::amx {

namespace {

struct alignas(64) TileConfig {
  uint8_t palette = 1, start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

// Tile shapes: x tiles 4 and 5 hold ra and rb rows (the live rows of the
// one or two x blocks in flight), their sums C 0, 1 and 2, 3 alike; the
// weight tiles 6 and 7 are whole. A thread keeps its shape until a call
// needs another (a decode step's one row loads and multiplies one row, not
// 16).
thread_local int t_ra = -1, t_rb = -1;
// Weight bytes are prefetched two 32-k steps (4 KB) ahead of the tile
// loads, every line: one row of x (decode) read 2048 x 1024 bf16 at 26-28
// GB/s against 22 with only the hardware prefetcher (and 26 for the
// AVX-512 kernels), 2 threads.
constexpr int kPrefetch = 2;
inline void configure(int ra, int rb) {
  if (ra == t_ra && rb == t_rb) return;
  TileConfig c;
  const int rows[8] = {ra, ra, rb, rb, ra, rb, 16, 16};
  for (int i = 0; i < 8; i++) {
    c.colsb[i] = 64;
    c.rows[i] = uint8_t(rows[i]);
  }
  _tile_loadconfig(&c);
  t_ra = ra;
  t_rb = rb;
}

// Block b of packed x from rows row_of(b * 16 + r): per 32 k, row r's
// values rounded to bf16 (the hi tile's row r) and the rounded remainders
// (the lo tile's). Rows past M stay unwritten: no tile reads them.
template <typename RowOf>
void pack_blocks(RowOf row_of, int64_t M, int64_t K, int64_t b0, int64_t b1, uint16_t* px) {
  auto widen = [](__m256i h) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)); };
  for (int64_t b = b0; b < b1; b++) {
    uint16_t* blk = px + b * amx_block_elems(K);
    const int64_t rows = std::min<int64_t>(16, M - b * 16);
    for (int64_t r = 0; r < rows; r++) {
      const float* xr = row_of(b * 16 + r);
      for (int64_t kb = 0; kb < K / 32; kb++) {
        const __m512 a = _mm512_loadu_ps(xr + kb * 32), c = _mm512_loadu_ps(xr + kb * 32 + 16);
        const __m512i hi = (__m512i)_mm512_cvtne2ps_pbh(c, a);  // k 0-15 in the low half
        const __m512 ra = _mm512_sub_ps(a, widen(_mm512_castsi512_si256(hi)));
        const __m512 rc = _mm512_sub_ps(c, widen(_mm512_extracti64x4_epi64(hi, 1)));
        uint16_t* tile = blk + kb * 2 * kAmxTileElems + r * 32;
        _mm512_storeu_si512(tile, hi);
        _mm512_storeu_si512(tile + kAmxTileElems, (__m512i)_mm512_cvtne2ps_pbh(rc, ra));
      }
    }
  }
}

}  // namespace

bool enable() {
  // Linux grants AMX's tile data per process on request (5.16+): without
  // it the first tile instruction faults.
  constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
}

void pack_x(const float* x, int64_t ldx, int64_t M, int64_t K, int64_t b0, int64_t b1, uint16_t* px) {
  pack_blocks([&](int64_t m) { return x + m * ldx; }, M, K, b0, b1, px);
}

void pack_x_rows(const float* x, int64_t ldx, const int32_t* rows, int64_t M, int64_t K, int64_t b0, int64_t b1,
                 uint16_t* px) {
  pack_blocks([&](int64_t m) { return x + int64_t(rows[m]) * ldx; }, M, K, b0, b1, px);
}

void linear(const uint16_t* px, int64_t M, int64_t K, const uint16_t* w, int64_t n0, int64_t n1, float* out,
            int64_t ldo) {
  const int64_t kb_n = K / 32, blocks = (M + 15) / 16, kstep = 2 * kAmxTileElems;
  const int64_t ldo_bytes = ldo * int64_t(sizeof(float));
  // One or two x blocks (tiles 4, 5; hi then lo) against two weight blocks
  // (tiles 6, 7): C tiles 0-3, stored straight into out. With many rows of
  // x (prefill), 256 at a time: their packed form (1 MB at K = 2048) stays
  // in L2 while the weights stream past, each weight tile read from memory
  // once per 256 rows.
  constexpr int64_t kChunk = 16;
  for (int64_t b0 = 0; b0 < blocks; b0 += kChunk) {
    const int64_t b_end = std::min(blocks, b0 + kChunk);
    for (int64_t n = n0; n < n1; n += 32) {
      const bool two_n = n + 16 < n1;
      const uint16_t* wa = w + amx_tile(n, 0, K);
      const uint16_t* wb = w + amx_tile(n + 16, 0, K);
      for (int64_t b = b0; b < b_end; b += 2) {
        const bool two_m = b + 1 < b_end;
        const int ra = int(std::min<int64_t>(16, M - b * 16)), rb = two_m ? int(std::min<int64_t>(16, M - b * 16 - 16)) : 1;
        configure(ra, rb);
        const uint16_t* xa = px + b * amx_block_elems(K);
        const uint16_t* xb = xa + amx_block_elems(K);
        _tile_zero(0);
        _tile_zero(1);
        _tile_zero(2);
        _tile_zero(3);
        for (int64_t kb = 0; kb < kb_n; kb++) {
          const uint16_t* ta = xa + kb * 2 * kAmxTileElems;
          const uint16_t* tb = xb + kb * 2 * kAmxTileElems;
          _tile_loadd(6, wa + kb * kstep, 64);
          if (two_n) _tile_loadd(7, wb + kb * kstep, 64);
          if (b == b0) {  // later blocks find the weights in cache
            const char* pf = reinterpret_cast<const char*>(wa + (kb + kPrefetch) * kstep);
            for (int l = 0; l < 32; l++) _mm_prefetch(pf + l * 64, _MM_HINT_T0);
          }
          for (int t = 0; t < 2; t++) {  // hi, then lo
            _tile_loadd(4, ta + t * kAmxTileElems, 64);
            _tile_dpbf16ps(0, 4, 6);
            if (two_n) _tile_dpbf16ps(1, 4, 7);
            if (two_m) {
              _tile_loadd(5, tb + t * kAmxTileElems, 64);
              _tile_dpbf16ps(2, 5, 6);
              if (two_n) _tile_dpbf16ps(3, 5, 7);
            }
          }
        }
        float* oa = out + b * 16 * ldo + n;
        float* ob = oa + 16 * ldo;
        _tile_stored(0, oa, ldo_bytes);
        if (two_n) _tile_stored(1, oa + 16, ldo_bytes);
        if (two_m) {
          _tile_stored(2, ob, ldo_bytes);
          if (two_n) _tile_stored(3, ob + 16, ldo_bytes);
        }
      }
    }
  }
}

}  // namespace mimo::cpu::amx
