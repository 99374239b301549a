#include "ops/cpu/matmul.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "core/error.h"
#include "core/thread_pool.h"
#include "ops/cpu/kernels.h"

namespace mimo::cpu {

FloatBuffer::~FloatBuffer() { std::free(p_); }

float* FloatBuffer::get(size_t n) {
  if (n > cap_) {
    std::free(p_);
    cap_ = std::max(n, cap_ + cap_ / 2);
    p_ = static_cast<float*>(std::aligned_alloc(64, (cap_ * sizeof(float) + 63) / 64 * 64));
    MIMO_ASSERT(p_, "out of memory for {} floats of scratch", cap_);
  }
  return p_;
}

float* thread_wbuf(int64_t K) {
  thread_local FloatBuffer buf;
  return buf.get(avx2::gemm_wbuf_floats(K));
}

bool use_gemm(int64_t M) {
  const CpuFeatures& f = cpu_features();
  return f.avx2_fma && M >= (f.avx512 ? kGemmMinMAvx512 : kGemmMinM);
}

bool packs_x(const WeightView& w, int64_t M) { return w.amx || use_gemm(M); }

int64_t packed_x_floats(const WeightView& w, int64_t M, int64_t K) {
  return w.amx ? amx_packed_floats(M, K) : packed_a_floats(M, K);
}

void pack_x(const WeightView& w, const float* x, int64_t ldx, int64_t M, int64_t K, float* pa) {
  if (w.amx) amx::pack_x(x, ldx, M, K, 0, (M + kAmxRows - 1) / kAmxRows, reinterpret_cast<uint16_t*>(pa));
  else avx2::pack_a(x, ldx, M, K, 0, (M + kMR - 1) / kMR, pa);
}

void pack_x_rows(const WeightView& w, const float* x, int64_t ldx, const int32_t* rows, int64_t M, int64_t K,
                 float* pa) {
  if (w.amx) amx::pack_x_rows(x, ldx, rows, M, K, 0, (M + kAmxRows - 1) / kAmxRows, reinterpret_cast<uint16_t*>(pa));
  else avx2::pack_a_rows(x, ldx, rows, M, K, 0, (M + kMR - 1) / kMR, pa);
}

namespace {
// Slivers [s0, s1) of packed x against weight columns [n0, n1).
void gemm_slivers(const float* pa, int64_t M, int64_t K, int64_t s0, int64_t s1, const WeightView& w, int64_t n0,
                  int64_t n1, float* out, int64_t ldo) {
  float* wbuf = thread_wbuf(K);
  switch (w.kind) {
    case WeightView::Kind::BF16:
      return avx2::gemm_packed(pa, M, K, s0, s1, w.b16(), w.kernel_ld(), n0, n1, out, ldo, wbuf);
    case WeightView::Kind::FP8: return avx2::gemm_packed(pa, M, K, s0, s1, w.fp8(), n0, n1, out, ldo, wbuf);
    default: return avx2::gemm_packed(pa, M, K, s0, s1, w.f32(), w.kernel_ld(), n0, n1, out, ldo, wbuf);
  }
}
}  // namespace

void matmul_range(const float* x, int64_t ldx, const float* pa, int64_t M, int64_t K, const WeightView& w, int64_t n0,
                  int64_t n1, float* out, int64_t ldo) {
  if (n1 <= n0 || M <= 0) return;
  if (w.amx) return amx::linear(reinterpret_cast<const uint16_t*>(pa), M, K, w.b16(), n0, n1, out, ldo);
  if (use_gemm(M)) {
    gemm_slivers(pa, M, K, 0, (M + kMR - 1) / kMR, w, n0, n1, out, ldo);
    return;
  }
  switch (w.kind) {
    case WeightView::Kind::BF16: return linear_bf16(x, ldx, w.b16(), w.kernel_ld(), out, ldo, M, n0, n1, K);
    case WeightView::Kind::FP8: return linear_fp8(x, ldx, w.fp8(), out, ldo, M, n0, n1, K);
    default: return linear_f32(x, ldx, w.f32(), w.kernel_ld(), out, ldo, M, n0, n1, K);
  }
}

void pack_x_parallel(ThreadPool& pool, const WeightView& w, const float* x, int64_t ldx, int64_t M, int64_t K,
                     float* pa) {
  const int64_t rows = w.amx ? kAmxRows : kMR, blocks = (M + rows - 1) / rows;
  // Packing is a copy: only worth a fork when there is a lot of it.
  int64_t grain = std::max<int64_t>(1, (int64_t(1) << 16) / std::max<int64_t>(1, K * rows));
  pool.parallel_for(blocks, grain, [&](int64_t b, int64_t e) {
    if (w.amx) amx::pack_x(x, ldx, M, K, b, e, reinterpret_cast<uint16_t*>(pa));
    else avx2::pack_a(x, ldx, M, K, b, e, pa);
  });
}

void matmul(ThreadPool& pool, const float* x, int64_t ldx, int64_t M, int64_t K, const WeightView& w, int64_t N,
            float* out, int64_t ldo, FloatBuffer& pa_scratch) {
  if (M <= 0 || N <= 0) return;
  const int nt = pool.size();
  if (w.amx) {
    // Pack x once, then split the weight rows in pairs of AMX blocks (the
    // kernel's step), each chunk at least ~512 KB of weights as below.
    float* pa = pa_scratch.get(size_t(amx_packed_floats(M, K)));
    pack_x_parallel(pool, w, x, ldx, M, K, pa);
    constexpr int64_t u = 2 * kAmxRows;
    const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 19) / (u * K * 2));
    pool.parallel_for((N + u - 1) / u, grain, [&](int64_t b, int64_t e) {
      matmul_range(x, ldx, pa, M, K, w, b * u, std::min(N, e * u), out, ldo);
    });
    return;
  }
  if (!use_gemm(M)) {
    // Weight-streaming: each chunk is a contiguous run of weight rows (in
    // units of 8: whole row tiles, and whole tiles of the dot kernel, which
    // keeps each chunk's rows aligned for them), at least ~512 KB of them: every
    // chunk starts a new stream whose first KBs the prefetch cannot cover
    // (on Zen 3, 128 KB chunks stream ~9% slower than 1 MB ones), while a
    // matrix of 4 MB or more still gives each thread several chunks.
    const int64_t es = w.elem_bytes();
    constexpr int64_t u = kTileRows;
    int64_t grain = std::max<int64_t>(1, (int64_t(1) << 19) / std::max<int64_t>(1, u * K * es));
    pool.parallel_for((N + u - 1) / u, grain, [&](int64_t b, int64_t e) {
      matmul_range(x, ldx, nullptr, M, K, w, b * u, std::min(N, e * u), out, ldo);
    });
    return;
  }
  float* pa = pa_scratch.get(size_t(packed_a_floats(M, K)));
  pack_x_parallel(pool, w, x, ldx, M, K, pa);
  // Work items: column blocks (multiples of kNR, one L2-sized panel group
  // wide if there are enough of them) times ranges of row slivers; rows
  // are split only when there are too few column blocks to keep every
  // thread busy (each split re-packs its weights).
  const int64_t slivers = (M + kMR - 1) / kMR;
  const int64_t want = int64_t(nt) * 3;
  int64_t nb = avx2::gemm_group_cols(K);
  while (nb > kNR && (N + nb - 1) / nb < want) nb -= kNR;
  const int64_t cblocks = (N + nb - 1) / nb;
  const int64_t mparts = nt == 1 ? 1 : std::min<int64_t>(slivers, std::max<int64_t>(1, want / cblocks));
  pool.run_chunks(cblocks * mparts, [&](int64_t item) {
    int64_t cb = item / mparts, mp = item % mparts;
    int64_t n0 = cb * nb, n1 = std::min(N, n0 + nb);
    int64_t s0 = slivers * mp / mparts, s1 = slivers * (mp + 1) / mparts;
    gemm_slivers(pa, M, K, s0, s1, w, n0, n1, out, ldo);
  });
}

}  // namespace mimo::cpu
