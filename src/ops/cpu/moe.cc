// MoE on the CPU. Routing per token; then all routed experts of the step in
// two parallel passes, each split by columns across every expert at once:
//
//   1. act_e = silu(x_e Wg_e^T) * (x_e Wu_e^T) for the rows x_e routed to e,
//      items = column blocks of I (gate and up columns of a block together,
//      so SwiGLU happens in registers' reach and gate_up is never stored);
//   2. out[t] += w_tk * act_e Wd_e^T, items = column blocks of H, so no two
//      threads write the same output element and no per-expert output
//      buffer or combine pass is needed.
//
// Every item touches every active expert, so work is balanced however the
// router spreads tokens, and a step costs two forks instead of two per
// expert. Experts with few rows (decode) use the weight-streaming dot
// kernel; experts with many (prefill) the packed GEMM, their rows packed
// once. Scratch lives in the backend, so a warmed-up step does not allocate.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "core/error.h"
#include "core/thread_pool.h"
#include "ops/cpu/cpu_backend.h"
#include "ops/cpu/kernels.h"
#include "ops/cpu/matmul.h"

namespace mimo {

void CpuBackend::moe_route(const Tensor& logits, const Tensor& bias, const MoEParams& p, Tensor& ids,
                           Tensor& weights) {
  const int64_t T = logits.dim(0);
  const int E = int(logits.dim(1)), K = p.top_k, G = p.n_group, per = E / G;
  const float* b = bias.ptr<float>();
  auto& m = moe_;
  m.s.resize(size_t(E));
  m.c.resize(size_t(E));
  m.gscore.resize(size_t(G));
  m.order.resize(size_t(std::max(E, G)));
  m.keep.resize(size_t(G));
  float* s = m.s.data();
  float* c = m.c.data();
  for (int64_t t = 0; t < T; t++) {
    const float* l = logits.ptr<float>() + t * E;
    for (int e = 0; e < E; e++) {
      s[e] = 1.0f / (1.0f + std::exp(-l[e]));
      c[e] = s[e] + b[e];
    }
    if (G > 1) {
      // Group score: the sum of the group's two best biased scores; keep the
      // topk_group best groups and drop every expert outside them.
      for (int g = 0; g < G; g++) {
        float m1 = -INFINITY, m2 = -INFINITY;
        for (int e = g * per; e < (g + 1) * per; e++) {
          float v = c[e];
          if (v > m1) { m2 = m1; m1 = v; }
          else if (v > m2) m2 = v;
        }
        m.gscore[size_t(g)] = per >= 2 ? m1 + m2 : m1;
      }
      std::iota(m.order.begin(), m.order.begin() + G, 0);
      std::stable_sort(m.order.begin(), m.order.begin() + G,
                       [&](int a, int bb) { return m.gscore[size_t(a)] > m.gscore[size_t(bb)]; });
      std::fill(m.keep.begin(), m.keep.end(), 0);
      for (int i = 0; i < p.topk_group; i++) m.keep[size_t(m.order[size_t(i)])] = 1;
      for (int e = 0; e < E; e++)
        if (!m.keep[size_t(e / per)]) c[e] = -INFINITY;
    }
    std::iota(m.order.begin(), m.order.begin() + E, 0);
    std::partial_sort(m.order.begin(), m.order.begin() + K, m.order.begin() + E,
                      [&](int a, int bb) { return c[a] > c[bb] || (c[a] == c[bb] && a < bb); });
    float sum = 0;
    for (int k = 0; k < K; k++) sum += s[m.order[size_t(k)]];
    float norm = p.norm_topk_prob ? 1.0f / (sum + 1e-20f) : 1.0f;
    for (int k = 0; k < K; k++) {
      int e = m.order[size_t(k)];
      ids.ptr<int32_t>()[t * K + k] = e;
      weights.ptr<float>()[t * K + k] = s[e] * norm * p.routed_scaling_factor;
    }
  }
}

namespace {
// Column-block width: at least kNR, halved until there are `per_thread`
// items per thread.
int64_t block_width(int64_t n, int threads, int64_t widest, int per_thread) {
  int64_t nb = widest;
  while (nb > cpu::kNR && (n + nb - 1) / nb < int64_t(threads) * per_thread) nb /= 2;
  return nb;
}
}  // namespace

void CpuBackend::moe_experts(const Tensor& x, const Tensor& ids, const Tensor& weights, const Tensor& gate_up,
                             const Tensor& down, int expert_begin, Tensor& out) {
  const int64_t T = x.dim(0), H = x.dim(1), K = ids.dim(1);
  const int E = int(gate_up.dim(0));
  const int64_t I = down.dim(2);
  MIMO_ASSERT(gate_up.dim(1) == 2 * I && gate_up.dim(2) == H && down.dim(1) == H);
  const cpu::WeightView gu_all = weight_view(gate_up), dn_all = weight_view(down);
  auto& m = moe_;

  // Routed (token, weight) pairs bucketed by local expert, in token order.
  const int32_t* id = ids.ptr<int32_t>();
  const float* wt = weights.ptr<float>();
  m.cnt.assign(size_t(E), 0);
  for (int64_t i = 0; i < T * K; i++) {
    int e = id[i] - expert_begin;
    if (e >= 0 && e < E) m.cnt[size_t(e)]++;
  }
  m.off.resize(size_t(E) + 1);
  m.off[0] = 0;
  for (int e = 0; e < E; e++) m.off[size_t(e) + 1] = m.off[size_t(e)] + m.cnt[size_t(e)];
  const int64_t P = m.off[size_t(E)];
  m.tok.resize(size_t(P));
  m.wt.resize(size_t(P));
  m.active.clear();
  m.xoff.resize(size_t(E));
  m.aoff.resize(size_t(E));
  m.poff.resize(size_t(E));
  std::vector<int32_t>& fill = m.cnt;  // reused as the per-expert cursor
  int64_t xsize = 0, asize = 0, psize = 0;
  bool any_gemm = false, any_packed_act = false;
  for (int e = 0; e < E; e++) {
    int64_t n = m.cnt[size_t(e)];
    if (n == 0) continue;
    m.active.push_back(e);
    // Rows of a GEMM expert (any expert, with AMX weights) are stored packed
    // for its first product, and its activations packed again for the
    // second; others stay row-major.
    any_gemm |= cpu::use_gemm(n);
    const bool p2 = cpu::packs_x(dn_all, n);
    any_packed_act |= p2;
    m.xoff[size_t(e)] = xsize;
    m.aoff[size_t(e)] = asize;
    m.poff[size_t(e)] = psize;
    xsize += cpu::packs_x(gu_all, n) ? cpu::packed_x_floats(gu_all, n, H) : n * H;
    asize += n * I;
    psize += p2 ? cpu::packed_x_floats(dn_all, n, I) : 0;
  }
  std::fill(fill.begin(), fill.end(), 0);
  for (int64_t i = 0; i < T * K; i++) {
    int e = id[i] - expert_begin;
    if (e < 0 || e >= E) continue;
    int64_t j = m.off[size_t(e)] + fill[size_t(e)]++;
    m.tok[size_t(j)] = int32_t(i / K);
    m.wt[size_t(j)] = wt[i];
  }
  // From here on m.cnt holds the counts again (fill counted them back up).
  float* xs = m.x.get(size_t(std::max<int64_t>(xsize, 1)));
  float* acts = m.act.get(size_t(std::max<int64_t>(asize, 1)));
  float* packs = m.packed_act.get(size_t(std::max<int64_t>(psize, 1)));
  const float* xp = x.ptr<float>();
  float* op = out.ptr<float>();
  const int nt = pool_.size();

  if (P == 0) {
    std::memset(op, 0, out.nbytes());
    return;
  }

  // 0. Gather each expert's rows (packed for GEMM experts); a decode step's
  // few rows are not worth a fork.
  const int64_t gather_grain = P * H < (int64_t(1) << 16) ? int64_t(m.active.size()) : 1;
  pool_.parallel_for(int64_t(m.active.size()), gather_grain, [&](int64_t b, int64_t e_) {
    for (int64_t a = b; a < e_; a++) {
      int e = m.active[size_t(a)];
      int64_t n = m.cnt[size_t(e)];
      const int32_t* rows = m.tok.data() + m.off[size_t(e)];
      float* dst = xs + m.xoff[size_t(e)];
      if (cpu::packs_x(gu_all, n))
        cpu::pack_x_rows(gu_all, xp, H, rows, n, H, dst);
      else
        for (int64_t i = 0; i < n; i++) std::memcpy(dst + i * H, xp + int64_t(rows[i]) * H, size_t(H) * sizeof(float));
    }
  });

  // Items per thread: ~3 balance the GEMM work of a prefill; a decode step
  // streams weights, and wider blocks keep each stream long (every item
  // starts a new stream per expert: 128 KB blocks ran ~9% slower than 256 KB+
  // on Zen 3), so one item per thread: bench-0.5b's experts on the Intel
  // machine (2 threads, DRAM) at 1 / 4 / 16 tokens took 2% / 5% / 5% less
  // than with 2 items per thread, and 4 per thread 9% more at 16 tokens.
  const int per_thread = any_gemm ? 3 : 1;

  // 1. act = silu(gate) * up, by column blocks of I across all experts.
  const int64_t nb1 = block_width(I, nt, any_gemm ? 128 : 256, per_thread);
  pool_.run_chunks((I + nb1 - 1) / nb1, [&](int64_t cb) {
    const int64_t n0 = cb * nb1, n1 = std::min(I, n0 + nb1), w = n1 - n0;
    thread_local cpu::FloatBuffer tbuf;
    for (int e : m.active) {
      const int64_t n = m.cnt[size_t(e)];
      float* gt = tbuf.get(size_t(n * w * 2));  // gate | up
      float* ut = gt + n * w;
      const float* xe = xs + m.xoff[size_t(e)];
      const cpu::WeightView wv = gu_all.rows_from(int64_t(e) * 2 * I);
      cpu::matmul_range(xe, H, xe, n, H, wv, n0, n1, gt - n0, w);
      cpu::matmul_range(xe, H, xe, n, H, wv, I + n0, I + n1, ut - (I + n0), w);
      float* ae = acts + m.aoff[size_t(e)];
      for (int64_t i = 0; i < n; i++) cpu::silu_mul_row(gt + i * w, ut + i * w, ae + i * I + n0, w);
    }
  });
  // 1b. Pack the activations of GEMM (or AMX) experts for the down product.
  if (any_packed_act)
    pool_.parallel_for(int64_t(m.active.size()), 1, [&](int64_t b, int64_t e_) {
      for (int64_t a = b; a < e_; a++) {
        int e = m.active[size_t(a)];
        int64_t n = m.cnt[size_t(e)];
        if (cpu::packs_x(dn_all, n)) cpu::pack_x(dn_all, acts + m.aoff[size_t(e)], I, n, I, packs + m.poff[size_t(e)]);
      }
    });

  // 2. out = sum_k w_tk * act Wd^T, by column blocks of H across all experts.
  const int64_t nb2 = block_width(H, nt, any_gemm ? 128 : 512, per_thread);
  pool_.run_chunks((H + nb2 - 1) / nb2, [&](int64_t cb) {
    const int64_t h0 = cb * nb2, h1 = std::min(H, h0 + nb2), w = h1 - h0;
    thread_local cpu::FloatBuffer tbuf;
    for (int64_t t = 0; t < T; t++) std::memset(op + t * H + h0, 0, size_t(w) * sizeof(float));
    for (int e : m.active) {
      const int64_t n = m.cnt[size_t(e)], o = m.off[size_t(e)];
      float* yt = tbuf.get(size_t(n * w));
      const float* ae = cpu::packs_x(dn_all, n) ? packs + m.poff[size_t(e)] : acts + m.aoff[size_t(e)];
      const cpu::WeightView wv = dn_all.rows_from(int64_t(e) * H);
      cpu::matmul_range(ae, I, ae, n, I, wv, h0, h1, yt - h0, w);
      for (int64_t i = 0; i < n; i++) {
        float* dst = op + int64_t(m.tok[size_t(o + i)]) * H + h0;
        cpu::axpy(m.wt[size_t(o + i)], yt + i * w, dst, w);
      }
    }
  });
}

}  // namespace mimo
