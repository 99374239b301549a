// Attention for AVX2+FMA (built with -mavx2 -mfma; reached only after
// cpu_features() says so). One call handles the query rows of one sequence
// that share one kv head: R = rows x G query vectors against the keys they
// can see, flash-style: keys in blocks of kKB, online softmax, K and V of a
// block read (and widened to fp32) once for all R queries.
//
// Two paths, the same bits. Direct: K and V rows read straight from the
// cache by dot-product tiles, up to kMR query vectors (a sliver) at a time;
// the first sliver brings a block's rows into cache and the others reuse
// them (attention_direct.inc; with AVX-512 it runs 512 bits wide in
// attention_avx512.cc). Packed: the block's K transposed into GEMM panels
// and its V widened to fp32 once for all slivers, scores by the GEMM's
// micro-kernel (every q.k summed in the backend's one order), P.V by the
// broadcast micro-kernel continuing each output's FMA chain over keys. With
// AVX-512 the direct path wins at every size a call gets (at most ~48 query
// vectors; 16 sequences x 512 keys, bf16 KV, 2 threads: 4 queries each
// (an MTP verify) 2.08 ms per full layer against 3.30 packed, 0.83 against
// 1.52 per window-128 layer; 12 each 5.07 against 6.42; a 2048-token
// prefill of bench-0.5b 1.84 s against 1.94), so it takes every call whose
// Dv is a multiple of 16; the AVX2 direct path only up to three slivers
// (this machine with AVX2 only: 4 queries each 2.55 ms against 2.98 full,
// 0.78 against 1.09 window; 12 each 7.20 against 6.00 full).
//
// Batch invariance: key blocks are fixed by absolute position ([b kKB,
// (b+1) kKB)), a query's per-block arithmetic does not depend on the other
// queries in the call (keys it cannot see contribute p = 0, which leaves
// every sum and FMA chain bit-identical), so a row's output is the same in
// a decode step, a prefill, a chunk of one, or next to other sequences.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "core/dtype.h"
#include "ops/cpu/gemm_avx2_impl.h"
#include "ops/cpu/kernels.h"
#include "ops/cpu/matmul.h"
#include "ops/cpu/simd_avx2.h"

namespace mimo::cpu::avx2 {

namespace {

constexpr int kKB = 64;  // keys per block

inline float exp1(float x) { return _mm256_cvtss_f32(exp8(_mm256_set1_ps(x))); }

#include "ops/cpu/attention_direct.inc"

// Per-thread scratch, grown once.
struct Scratch {
  FloatBuffer q, k, s, p, v, o, ml;
  std::vector<int32_t> range;  // lo | hi of each query vector's row
  std::vector<const float*> qptr;  // direct path: each query vector
};

template <typename KV>
void attend(const AttnRows& a) {
  const int G = a.H / a.nkv;
  const int64_t R = a.nrows * G, nsl = (R + kMR - 1) / kMR, Rp = nsl * kMR;
  const int64_t Dvp = (a.Dv + kNR - 1) / kNR * kNR;
  const int64_t SX = sliver_floats(a.D), SW = panel_floats(a.D), kq = a.D / 8, kt = a.D % 8;
  const KV* kc = static_cast<const KV*>(a.k_cache);
  const KV* vc = static_cast<const KV*>(a.v_cache);
  thread_local Scratch sc;
  float* qp = sc.q.get(size_t(nsl * SX));
  float* kp = sc.k.get(size_t(kKB / kNR * SW));
  float* S = sc.s.get(size_t(Rp * kKB));
  float* P = sc.p.get(size_t(nsl * kKB * kMR));
  float* V = sc.v.get(size_t(kKB * Dvp));
  float* O = sc.o.get(size_t(Rp * Dvp));
  float* m = sc.ml.get(size_t(2 * R));
  float* l = m + R;
  sc.range.resize(size_t(2 * R));
  int32_t* lo = sc.range.data();  // keys [lo, hi] of each query vector's row
  int32_t* hi = lo + R;

  int64_t lo_all = INT64_MAX, hi_all = -1;
  for (int64_t i = 0; i < R; i++) {
    const int64_t p = a.pos[a.row0 + i / G];
    hi[i] = int32_t(std::min<int64_t>(p, a.kv_len - 1));
    lo[i] = int32_t(a.window > 0 ? std::max<int64_t>(0, p - a.window + 1) : 0);
    m[i] = -INFINITY;
    l[i] = 0;
    if (hi[i] >= lo[i]) lo_all = std::min<int64_t>(lo_all, lo[i]), hi_all = std::max<int64_t>(hi_all, hi[i]);
  }
  std::fill(O, O + Rp * Dvp, 0.0f);
  auto qrow = [&](int64_t i) { return a.q + ((a.row0 + i / G) * a.H + int64_t(a.kh) * G + i % G) * a.D; };
  // The direct path's two products run 512 bits wide when the CPU can; the
  // file's head says which calls take it.
  const bool wide = cpu_features().avx512;
  const bool direct = (wide || R <= 3 * kMR) && a.Dv % kNR == 0;
  constexpr KvType kKv = std::is_same_v<KV, uint16_t>  ? KvType::BF16
                         : std::is_same_v<KV, uint8_t> ? KvType::FP8
                                                       : KvType::F32;
  sc.qptr.resize(size_t(direct ? R : 0));
  const float** qptr = sc.qptr.data();
  const KV* krows[2][kKB];  // this block's rows and the next one's
  const KV* vrows[2][kKB];
  if (direct)
    for (int64_t i = 0; i < R; i++) qptr[i] = qrow(i);
  else
    pack_a_impl(qrow, R, a.D, 0, nsl, qp);

  const __m256 iota = _mm256_setr_ps(0, 1, 2, 3, 4, 5, 6, 7);
  const int64_t b_end = hi_all >= 0 ? hi_all / kKB + 1 : 0;
  // No whole-block K/V prefetch: one here compiled to nothing (GCC 12
  // deletes a lambda's loop of prefetches alone), and made to run it was
  // slower (4096-token prefill 4.80 s vs 4.72, decode at 4K 17.6 ms vs 16.7).
  // The direct path prefetches the next block's K during the scores and its
  // V during P.V (NextRows).
  // Direct path: fn(sliver, its query vectors, prefetch) for each sliver of
  // up to kMR query vectors; only the first prefetches the next block (the
  // others find this block's rows in cache).
  auto slivers = [&](const AttnPrefetch& next, auto&& fn) {
    const AttnPrefetch none;
    for (int64_t s = 0; s < nsl; s++) fn(s, int(std::min<int64_t>(kMR, R - s * kMR)), s == 0 ? next : none);
  };
  // Direct path: the rows of block b, in krows[b & 1] / vrows[b & 1].
  auto block_rows = [&](int64_t b) {
    const int64_t j0 = std::max(b * kKB, lo_all), j1 = std::min(b * kKB + kKB - 1, hi_all);
    for (int64_t j = j0; j <= j1; j++) {
      krows[b & 1][j - j0] = kc + int64_t(a.slots[j]) * a.D;
      vrows[b & 1][j - j0] = vc + int64_t(a.slots[j]) * a.Dv;
    }
    return std::max<int64_t>(0, j1 - j0 + 1);
  };
  if (direct && b_end > 0) block_rows(lo_all / kKB);
  for (int64_t b = hi_all >= 0 ? lo_all / kKB : 0; b < b_end; b++) {
    const int64_t j0 = std::max(b * kKB, lo_all), j1 = std::min(b * kKB + kKB - 1, hi_all), nk = j1 - j0 + 1;
    const int32_t* slots = a.slots + j0;
    AttnPrefetch next;  // direct path: the next block's rows (K during the scores, V during P.V)
    if (direct) {
      if (b + 1 < b_end) {
        next.n = block_rows(b + 1);
        next.k = reinterpret_cast<const void* const*>(krows[(b + 1) & 1]);
        next.v = reinterpret_cast<const void* const*>(vrows[(b + 1) & 1]);
        next.kbytes = a.D * int64_t(sizeof(KV)), next.vbytes = a.Dv * int64_t(sizeof(KV));
      }
      slivers(next, [&](int64_t s, int rs, const AttnPrefetch& nx) {
        float* Ss = S + s * kMR * kKB + (j0 - b * kKB);
        if (wide)
          avx512::attn_scores(rs, qptr + s * kMR, reinterpret_cast<const void* const*>(krows[b & 1]), kKv, nk, a.D,
                              Ss, kKB, nx);
        else
          scores_direct(rs, qptr + s * kMR, krows[b & 1], nk, a.D, Ss, kKB, nx);
      });
    } else {
      // K panels (keys as rows, chain-class-major over d) and V rows in fp32.
      for (int64_t p = 0; p * kNR < nk; p++)
        pack_panel([&](int i) { return kc + int64_t(slots[p * kNR + i]) * a.D; },
                   int(std::min<int64_t>(kNR, nk - p * kNR)), a.D, kp + p * SW);
      for (int64_t j = 0; j < nk; j++) {
        const KV* src = vc + int64_t(slots[j]) * a.Dv;
        float* dst = V + j * Dvp;
        int64_t d = 0;
        for (; d + 8 <= a.Dv; d += 8) _mm256_storeu_ps(dst + d, load8(src + d));
        for (; d < a.Dv; d++) dst[d] = load1(src + d);
        for (; d < Dvp; d++) dst[d] = 0.0f;
      }
      for (int64_t s = 0; s < nsl; s++)
        for (int64_t p = 0; p * kNR < nk; p++)
          tile_6x16(kq, kt, qp + s * SX, kp + p * SW, S + s * kMR * kKB + (j0 - b * kKB) + p * kNR, kKB,
                    int(std::min<int64_t>(kMR, R - s * kMR)), int(std::min<int64_t>(kNR, nk - p * kNR)));
    }
    // Online softmax, one query at a time. Scores sit at their key's offset
    // in the block (o = j - b kKB), so the 8-lane sum of a query's p runs
    // over the same lanes and chunks whichever other queries share the
    // call. P is written in the packed [key][6] layout P.V broadcasts from.
    const __m256 scale = _mm256_set1_ps(a.scale);
    const int64_t base = b * kKB;
    for (int64_t i = 0; i < Rp; i++) {
      float* pi = P + (i / kMR) * kKB * kMR + i % kMR;
      const int64_t va = i < R ? std::max<int64_t>(j0, lo[i]) : 1, ve = i < R ? std::min<int64_t>(j1, hi[i]) : 0;
      float alpha = 1.0f;
      if (va > ve) {
        for (int64_t j = 0; j < nk; j++) pi[j * kMR] = 0.0f;
      } else {
        const float* si = S + i * kKB;
        const __m256 vlo = _mm256_set1_ps(float(va - base)), vhi = _mm256_set1_ps(float(ve - base));
        const int64_t c0 = (va - base) / 8 * 8, c1 = ve - base;
        alignas(32) float pv[kKB];
        __m256 mx = _mm256_set1_ps(-INFINITY);
        for (int64_t c = c0; c <= c1; c += 8) {
          __m256 idx = _mm256_add_ps(iota, _mm256_set1_ps(float(c)));
          __m256 in = _mm256_and_ps(_mm256_cmp_ps(idx, vlo, _CMP_GE_OQ), _mm256_cmp_ps(idx, vhi, _CMP_LE_OQ));
          __m256 x = _mm256_blendv_ps(_mm256_set1_ps(-INFINITY), _mm256_mul_ps(_mm256_loadu_ps(si + c), scale), in);
          _mm256_store_ps(pv + c, x);
          mx = _mm256_max_ps(mx, x);
        }
        const float m_new = std::max(m[i], hmax(mx));
        alpha = exp1(m[i] - m_new);
        const __m256 mv = _mm256_set1_ps(m_new);
        __m256 sum = _mm256_setzero_ps();
        for (int64_t c = c0; c <= c1; c += 8) {
          __m256 e = exp8(_mm256_sub_ps(_mm256_load_ps(pv + c), mv));  // exp(-inf) = 0 off the row's keys
          _mm256_store_ps(pv + c, e);
          sum = _mm256_add_ps(sum, e);
        }
        for (int64_t j = j0; j < va; j++) pi[(j - j0) * kMR] = 0.0f;
        for (int64_t j = va; j <= ve; j++) pi[(j - j0) * kMR] = pv[j - base];
        for (int64_t j = ve + 1; j <= j1; j++) pi[(j - j0) * kMR] = 0.0f;
        l[i] = l[i] * alpha + hsum(sum);
        m[i] = m_new;
      }
      if (alpha != 1.0f) {
        float* oi = O + i * Dvp;
        const __m256 av = _mm256_set1_ps(alpha);
        for (int64_t d = 0; d < Dvp; d += 8) _mm256_storeu_ps(oi + d, _mm256_mul_ps(_mm256_loadu_ps(oi + d), av));
      }
    }
    // O += P V.
    if (direct)
      slivers(next, [&](int64_t s, int rs, const AttnPrefetch& nx) {
        const float* Ps = P + s * kKB * kMR;
        float* Os = O + s * kMR * Dvp;
        if (wide)
          avx512::attn_pv(rs, nk, Ps, reinterpret_cast<const void* const*>(vrows[b & 1]), kKv, a.Dv, Os, Dvp, nx);
        else
          pv_direct(rs, nk, Ps, vrows[b & 1], a.Dv, Os, Dvp, nx);
      });
    else
      for (int64_t s = 0; s < nsl; s++)
        for (int64_t d = 0; d < Dvp; d += kNR)
          ukernel_6x16(nk, P + s * kKB * kMR, V + d, Dvp, O + s * kMR * Dvp + d, Dvp, true);
  }
  for (int64_t i = 0; i < R; i++) {
    const int h = a.kh * G + int(i % G);
    float denom = l[i];
    if (a.sinks) denom += exp1(a.sinks[h] - m[i]);
    const float inv = denom > 0 ? 1.0f / denom : 0.0f;
    float* o = a.out + ((a.row0 + i / G) * a.H + h) * a.Dv;
    const float* src = O + i * Dvp;
    for (int64_t d = 0; d < a.Dv; d++) o[d] = src[d] * inv;
  }
}

}  // namespace

void attention_rows(const AttnRows& a) {
  switch (a.kv) {
    case KvType::BF16: return attend<uint16_t>(a);
    case KvType::FP8: return attend<uint8_t>(a);
    case KvType::F32: return attend<float>(a);
  }
}

}  // namespace mimo::cpu::avx2
