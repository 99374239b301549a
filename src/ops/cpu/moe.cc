// MoE on the CPU: routing per token, then experts computed over the tokens
// routed to them (gather, gate_up GEMM, SwiGLU, down GEMM, weighted scatter).
#include <algorithm>
#include <cstring>
#include <cmath>
#include <numeric>
#include <vector>

#include "core/error.h"
#include "core/thread_pool.h"
#include "ops/cpu/cpu_backend.h"
#include "ops/cpu/kernels.h"

namespace mimo {

void CpuBackend::moe_route(const Tensor& logits, const Tensor& bias, const MoEParams& p, Tensor& ids,
                           Tensor& weights) {
  const int64_t T = logits.dim(0);
  const int E = int(logits.dim(1)), K = p.top_k, G = p.n_group, per = E / G;
  const float* b = bias.ptr<float>();
  std::vector<float> s(static_cast<size_t>(E)), c(static_cast<size_t>(E)), gscore(static_cast<size_t>(G));
  std::vector<int> order(size_t(std::max(E, G)));
  for (int64_t t = 0; t < T; t++) {
    const float* l = logits.ptr<float>() + t * E;
    for (int e = 0; e < E; e++) {
      s[size_t(e)] = 1.0f / (1.0f + std::exp(-l[e]));
      c[size_t(e)] = s[size_t(e)] + b[e];
    }
    if (G > 1) {
      // Group score: the sum of the group's two best biased scores; keep the
      // topk_group best groups and drop every expert outside them.
      for (int g = 0; g < G; g++) {
        float m1 = -INFINITY, m2 = -INFINITY;
        for (int e = g * per; e < (g + 1) * per; e++) {
          float v = c[size_t(e)];
          if (v > m1) { m2 = m1; m1 = v; }
          else if (v > m2) m2 = v;
        }
        gscore[size_t(g)] = per >= 2 ? m1 + m2 : m1;
      }
      std::iota(order.begin(), order.begin() + G, 0);
      std::stable_sort(order.begin(), order.begin() + G,
                       [&](int a, int bb) { return gscore[size_t(a)] > gscore[size_t(bb)]; });
      std::vector<bool> keep(size_t(G), false);
      for (int i = 0; i < p.topk_group; i++) keep[size_t(order[size_t(i)])] = true;
      for (int e = 0; e < E; e++)
        if (!keep[size_t(e / per)]) c[size_t(e)] = -INFINITY;
    }
    std::iota(order.begin(), order.begin() + E, 0);
    std::partial_sort(order.begin(), order.begin() + K, order.begin() + E,
                      [&](int a, int bb) { return c[size_t(a)] > c[size_t(bb)] || (c[size_t(a)] == c[size_t(bb)] && a < bb); });
    float sum = 0;
    for (int k = 0; k < K; k++) sum += s[size_t(order[size_t(k)])];
    float norm = p.norm_topk_prob ? 1.0f / (sum + 1e-20f) : 1.0f;
    for (int k = 0; k < K; k++) {
      int e = order[size_t(k)];
      ids.ptr<int32_t>()[t * K + k] = e;
      weights.ptr<float>()[t * K + k] = s[size_t(e)] * norm * p.routed_scaling_factor;
    }
  }
}

void CpuBackend::moe_experts(const Tensor& x, const Tensor& ids, const Tensor& weights, const Tensor& gate_up,
                             const Tensor& down, int expert_begin, Tensor& out) {
  const int64_t T = x.dim(0), H = x.dim(1), K = ids.dim(1);
  const int E = int(gate_up.dim(0));
  const int64_t I = down.dim(2);
  MIMO_ASSERT(gate_up.dim(1) == 2 * I && gate_up.dim(2) == H && down.dim(1) == H);
  // Tokens per local expert, in token order.
  std::vector<std::vector<std::pair<int32_t, float>>> routed(static_cast<size_t>(E));
  for (int64_t t = 0; t < T; t++)
    for (int64_t k = 0; k < K; k++) {
      int e = ids.ptr<int32_t>()[t * K + k] - expert_begin;
      if (e >= 0 && e < E) routed[size_t(e)].push_back({int32_t(t), weights.ptr<float>()[t * K + k]});
    }
  std::memset(out.data(), 0, out.nbytes());
  size_t es = dtype_size(gate_up.dtype());
  for (int e = 0; e < E; e++) {
    auto& toks = routed[size_t(e)];
    if (toks.empty()) continue;
    int64_t n = int64_t(toks.size());
    Tensor xe = Tensor::empty({n, H}, DType::F32), gu = Tensor::empty({n, 2 * I}, DType::F32),
           act = Tensor::empty({n, I}, DType::F32), y = Tensor::empty({n, H}, DType::F32);
    for (int64_t i = 0; i < n; i++)
      std::memcpy(xe.ptr<float>() + i * H, x.ptr<float>() + int64_t(toks[size_t(i)].first) * H, size_t(H) * 4);
    Tensor wgu = Tensor::wrap({2 * I, H}, gate_up.dtype(),
                              const_cast<char*>(static_cast<const char*>(gate_up.data())) + size_t(e) * size_t(2 * I * H) * es);
    Tensor wd = Tensor::wrap({H, I}, down.dtype(),
                             const_cast<char*>(static_cast<const char*>(down.data())) + size_t(e) * size_t(H * I) * es);
    linear(xe, wgu, gu);
    silu_mul(gu, act);
    linear(act, wd, y);
    for (int64_t i = 0; i < n; i++) {
      float w = toks[size_t(i)].second;
      float* o = out.ptr<float>() + int64_t(toks[size_t(i)].first) * H;
      const float* yr = y.ptr<float>() + i * H;
      for (int64_t h = 0; h < H; h++) o[h] += w * yr[h];
    }
  }
}

}  // namespace mimo
