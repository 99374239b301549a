#include "ops/cpu/cpu_backend.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/thread_pool.h"
#include "ops/cpu/kernels.h"

namespace mimo {

std::unique_ptr<Backend> make_cpu_backend() { return std::make_unique<CpuBackend>(); }

CpuBackend::CpuBackend() : pool_(ThreadPool::global()) {}

std::string CpuBackend::name() const {
  return fmt::format("cpu ({} threads, {})", pool_.size(), cpu::cpu_features().avx2_fma ? "avx2+fma" : "portable");
}

Tensor CpuBackend::alloc(std::vector<int64_t> shape, DType dtype) { return Tensor::empty(std::move(shape), dtype); }
void CpuBackend::zero_(Tensor& t) { std::memset(t.data(), 0, t.nbytes()); }
void CpuBackend::copy_from_host(Tensor& dst, const void* src) { std::memcpy(dst.data(), src, dst.nbytes()); }
void CpuBackend::copy_to_host(void* dst, const Tensor& src) { std::memcpy(dst, src.data(), src.nbytes()); }

namespace {
inline float get(const Tensor& t, int64_t i) {
  return t.dtype() == DType::BF16 ? bf16_to_f32(t.ptr<uint16_t>()[i]) : t.ptr<float>()[i];
}
}  // namespace

void CpuBackend::embedding(const Tensor& ids, const Tensor& table, Tensor& out) {
  int64_t T = ids.numel(), H = table.dim(1), V = table.dim(0);
  const int32_t* id = ids.ptr<int32_t>();
  float* o = out.ptr<float>();
  for (int64_t t = 0; t < T; t++) {
    MIMO_CHECK(id[t] >= 0 && id[t] < V, "token id {} is outside the vocabulary [0, {})", id[t], V);
    if (table.dtype() == DType::BF16) {
      const uint16_t* r = table.ptr<uint16_t>() + int64_t(id[t]) * H;
      for (int64_t h = 0; h < H; h++) o[t * H + h] = bf16_to_f32(r[h]);
    } else {
      std::memcpy(o + t * H, table.ptr<float>() + int64_t(id[t]) * H, size_t(H) * 4);
    }
  }
}

void CpuBackend::rms_norm(const Tensor& x, const Tensor& w, float eps, Tensor& out) {
  int64_t H = x.dim(-1), T = x.numel() / H;
  const float* xp = x.ptr<float>();
  float* op = out.ptr<float>();
  pool_.parallel_for(T, 16, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; t++) {
      const float* r = xp + t * H;
      float ss = 0;
      for (int64_t h = 0; h < H; h++) ss += r[h] * r[h];
      float inv = 1.0f / std::sqrt(ss / float(H) + eps);
      for (int64_t h = 0; h < H; h++) op[t * H + h] = get(w, h) * (r[h] * inv);
    }
  });
}

void CpuBackend::linear(const Tensor& x, const Tensor& w, Tensor& out) {
  int64_t K = x.dim(-1), M = x.numel() / K, N = w.dim(0);
  MIMO_ASSERT(w.dim(1) == K && out.numel() == M * N, "linear x{} w{} out{}", x.shape_str(), w.shape_str(),
              out.shape_str());
  // Split output columns across threads; each thread streams its own rows of w.
  int64_t grain = std::max<int64_t>(4, (1 << 14) / std::max<int64_t>(1, K * M));
  pool_.parallel_for((N + 3) / 4, grain, [&](int64_t b, int64_t e) {
    int64_t n0 = b * 4, n1 = std::min(N, e * 4);
    if (w.dtype() == DType::BF16)
      cpu::linear_bf16(x.ptr<float>(), K, w.ptr<uint16_t>(), K, out.ptr<float>(), N, M, n0, n1, K);
    else
      cpu::linear_f32(x.ptr<float>(), K, w.ptr<float>(), K, out.ptr<float>(), N, M, n0, n1, K);
  });
}

void CpuBackend::add_(Tensor& x, const Tensor& y) {
  float* a = x.ptr<float>();
  const float* b = y.ptr<float>();
  int64_t n = x.numel();
  for (int64_t i = 0; i < n; i++) a[i] += b[i];
}

void CpuBackend::rope_(Tensor& x, const Tensor& positions, int rot_dim, double theta) {
  int64_t T = x.dim(0), H = x.dim(1), D = x.dim(2);
  int half = rot_dim / 2;
  // inv_freq as transformers computes it: fp32 base ** (2i / d), then 1 / that.
  std::vector<float> inv(static_cast<size_t>(half));
  for (int i = 0; i < half; i++) inv[size_t(i)] = 1.0f / std::pow(float(theta), float(2 * i) / float(rot_dim));
  const int32_t* pos = positions.ptr<int32_t>();
  float* xp = x.ptr<float>();
  pool_.parallel_for(T, 8, [&](int64_t b, int64_t e) {
    std::vector<float> cs(static_cast<size_t>(half)), sn(static_cast<size_t>(half));
    for (int64_t t = b; t < e; t++) {
      for (int i = 0; i < half; i++) {
        float ang = float(pos[t]) * inv[size_t(i)];
        cs[size_t(i)] = std::cos(ang);
        sn[size_t(i)] = std::sin(ang);
      }
      for (int64_t h = 0; h < H; h++) {
        float* r = xp + (t * H + h) * D;
        for (int i = 0; i < half; i++) {
          float a = r[i], c = r[i + half];
          r[i] = a * cs[size_t(i)] - c * sn[size_t(i)];
          r[i + half] = c * cs[size_t(i)] + a * sn[size_t(i)];
        }
      }
    }
  });
}

void CpuBackend::store_kv(const Tensor& k, const Tensor& v, float v_scale, const AttnMeta& meta, Tensor& k_cache,
                          Tensor& v_cache) {
  int64_t T = k.dim(0), kw = k.numel() / T, vw = v.numel() / T;
  int64_t slots = k_cache.dim(0);
  const int32_t* s = meta.out_slots.ptr<int32_t>();
  for (int64_t t = 0; t < T; t++) {
    MIMO_ASSERT(s[t] >= 0 && s[t] < slots, "kv slot {} outside [0, {})", s[t], slots);
    const float* kr = k.ptr<float>() + t * kw;
    const float* vr = v.ptr<float>() + t * vw;
    if (k_cache.dtype() == DType::BF16) {
      uint16_t* kd = k_cache.ptr<uint16_t>() + int64_t(s[t]) * kw;
      uint16_t* vd = v_cache.ptr<uint16_t>() + int64_t(s[t]) * vw;
      for (int64_t i = 0; i < kw; i++) kd[i] = f32_to_bf16(kr[i]);
      for (int64_t i = 0; i < vw; i++) vd[i] = f32_to_bf16(vr[i] * v_scale);
    } else {
      std::memcpy(k_cache.ptr<float>() + int64_t(s[t]) * kw, kr, size_t(kw) * 4);
      float* vd = v_cache.ptr<float>() + int64_t(s[t]) * vw;
      for (int64_t i = 0; i < vw; i++) vd[i] = vr[i] * v_scale;
    }
  }
}

void CpuBackend::silu_mul(const Tensor& gate_up, Tensor& out) {
  int64_t I = out.dim(-1), T = out.numel() / I;
  const float* g = gate_up.ptr<float>();
  float* o = out.ptr<float>();
  pool_.parallel_for(T, 4, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; t++)
      for (int64_t i = 0; i < I; i++) {
        float a = g[t * 2 * I + i], u = g[t * 2 * I + I + i];
        o[t * I + i] = a / (1.0f + std::exp(-a)) * u;
      }
  });
}

void CpuBackend::gather_rows(const Tensor& x, const Tensor& rows, Tensor& out) {
  int64_t C = x.numel() / x.dim(0), R = rows.numel();
  size_t es = dtype_size(x.dtype());
  for (int64_t r = 0; r < R; r++) {
    int32_t src = rows.ptr<int32_t>()[r];
    MIMO_ASSERT(src >= 0 && src < x.dim(0));
    std::memcpy(static_cast<char*>(out.data()) + size_t(r * C) * es,
                static_cast<const char*>(x.data()) + size_t(int64_t(src) * C) * es, size_t(C) * es);
  }
}

void CpuBackend::argmax(const Tensor& x, Tensor& out) {
  int64_t V = x.dim(-1), R = x.numel() / V;
  for (int64_t r = 0; r < R; r++) {
    const float* p = x.ptr<float>() + r * V;
    int64_t best = 0;
    for (int64_t i = 1; i < V; i++)
      if (p[i] > p[best]) best = i;
    out.ptr<int32_t>()[r] = int32_t(best);
  }
}

void CpuBackend::convert(const Tensor& src, Tensor& dst) {
  int64_t n = src.numel();
  MIMO_ASSERT(dst.numel() == n);
  if (src.dtype() == dst.dtype()) {
    std::memcpy(dst.data(), src.data(), src.nbytes());
  } else if (src.dtype() == DType::F32 && dst.dtype() == DType::BF16) {
    for (int64_t i = 0; i < n; i++) dst.ptr<uint16_t>()[i] = f32_to_bf16(src.ptr<float>()[i]);
  } else if (src.dtype() == DType::BF16 && dst.dtype() == DType::F32) {
    for (int64_t i = 0; i < n; i++) dst.ptr<float>()[i] = bf16_to_f32(src.ptr<uint16_t>()[i]);
  } else {
    MIMO_ASSERT(false, "convert {} -> {}", dtype_name(src.dtype()), dtype_name(dst.dtype()));
  }
}

}  // namespace mimo
