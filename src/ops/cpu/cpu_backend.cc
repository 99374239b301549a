#include "ops/cpu/cpu_backend.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

#include <sys/mman.h>
#include <unistd.h>

#include "core/error.h"
#include "core/thread_pool.h"
#include "ops/cpu/kernels.h"
#include "ops/sampling.h"

namespace mimo {

std::unique_ptr<Backend> make_cpu_backend() { return std::make_unique<CpuBackend>(); }

CpuBackend::CpuBackend() : pool_(ThreadPool::global()) {
  // MIMOSERVE_CPU_ISA caps the kernels' instruction set once per process
  // (a bad value throws here, and again at the next backend).
  static std::once_flag isa_once;
  std::call_once(isa_once, cpu::apply_cpu_isa_env);
  if (const char* v = std::getenv("MIMOSERVE_CPU_ROW_TILES"); v && *v) {
    const std::string s(v);
    if (s != "0" && s != "1")
      fail("MIMOSERVE_CPU_ROW_TILES={}: expected 1 (always row tiles) or 0 (row-major weights); unset: row tiles "
           "with the AVX-512 kernels",
           s);
    row_tiles_ = s == "1" ? RowTiles::On : RowTiles::Off;
  }
}

Tensor CpuBackend::prepare_weight(const Tensor& w) const {
  if (w.device() != Device::CPU || w.layout() != Tensor::Layout::RowMajor || (w.ndim() != 2 && w.ndim() != 3) ||
      w.numel() == 0)
    return w;
  const int64_t K = w.dim(-1), N = w.numel() / K;  // a stack's matrices are whole tiles each
  const size_t es = dtype_size(w.dtype());
  // bf16 matrices go into AMX tiles whenever the AMX path runs (32 rows: a
  // stacked gate_up splits at its middle on a tile).
  if (cpu::cpu_features().amx && w.dtype() == DType::BF16 && w.dim(-2) % 32 == 0 && K % 32 == 0) {
    Tensor t = Tensor::empty(w.shape(), w.dtype(), true);
    const uint16_t* src = w.ptr<uint16_t>();
    uint16_t* dst = t.ptr<uint16_t>();
    for (int64_t n = 0; n < N; n++)
      for (int64_t k = 0; k < K; k++) dst[cpu::amx_offset(n, k, K)] = src[n * K + k];
    return t.with_layout(Tensor::Layout::AmxTiles);
  }
  const bool want = row_tiles_ == RowTiles::On || (row_tiles_ == RowTiles::Auto && cpu::cpu_features().avx512);
  const bool ok = want && (w.dtype() == DType::F32 || w.dtype() == DType::BF16) && w.dim(-2) % cpu::kTileRows == 0 &&
                  K % 8 == 0 && K * int64_t(es) <= cpu::kTiledMaxRowBytes;
  if (!ok) return w;
  const size_t run = 8 * es;
  Tensor t = Tensor::empty(w.shape(), w.dtype(), true);
  const char* src = static_cast<const char*>(w.data());
  char* dst = static_cast<char*>(t.data());
  for (int64_t n = 0; n < N; n++)
    for (int64_t k = 0; k < K; k += 8)
      std::memcpy(dst + size_t(cpu::tiled_row_offset(n, K) + k / 8 * cpu::kTiledRunStep) * es,
                  src + size_t(n * K + k) * es, run);
  return t.with_layout(Tensor::Layout::RowTiles);
}

std::string CpuBackend::name() const { return fmt::format("cpu ({} threads, {})", pool_.size(), cpu::cpu_isa_name()); }

Tensor CpuBackend::alloc(std::vector<int64_t> shape, DType dtype) { return Tensor::empty(std::move(shape), dtype); }
Tensor CpuBackend::alloc_streamed(std::vector<int64_t> shape, DType dtype) {
  Tensor t = Tensor::empty(std::move(shape), dtype, true);
  // Fault every page in now, across the pool. Left to first use, the pages
  // of a KV pool came in 2 MiB at a time for every layer, head and K/V at
  // once whenever the slots in use crossed into a new page (every 8192
  // slots at 256 bytes per head): ~110 pages in one step on bench-0.5b, a
  // 20-30 ms stall at ~10 GB/s of page clearing (and the first request took
  // 0.7 s instead of 0.2 on a VM whose memory the host had not backed yet).
  // Now the engine pays it at start (and checks first that the pool fits in
  // the memory available: populating one that does not wakes the OOM
  // killer). MADV_POPULATE_WRITE (Linux 5.14) faults pages in without
  // writing them; older kernels refuse it, and a memset does the same.
  char* p = static_cast<char*>(t.data());
  const int64_t bytes = t.nbytes(), chunk = int64_t(2) << 20;
  const uintptr_t page = uintptr_t(sysconf(_SC_PAGESIZE));
  pool_.parallel_for((bytes + chunk - 1) / chunk, 1, [&](int64_t b, int64_t e) {
    char* from = p + b * chunk;
    const size_t len = size_t(std::min(bytes, e * chunk) - b * chunk);
    // madvise wants a page-aligned start (small pools are not 2 MiB aligned).
    const uintptr_t at = reinterpret_cast<uintptr_t>(from), lo = at / page * page;
    if (madvise(reinterpret_cast<void*>(lo), len + (at - lo), MADV_POPULATE_WRITE) != 0) std::memset(from, 0, len);
  });
  return t;
}
void CpuBackend::zero_(Tensor& t) { std::memset(t.data(), 0, t.nbytes()); }
void CpuBackend::copy_from_host(Tensor& dst, const void* src) { std::memcpy(dst.data(), src, dst.nbytes()); }
void CpuBackend::copy_to_host(void* dst, const Tensor& src) { std::memcpy(dst, src.data(), src.nbytes()); }

void CpuBackend::embedding(const Tensor& ids, const Tensor& table, Tensor& out) {
  int64_t T = ids.numel(), H = table.dim(1), V = table.dim(0);
  const int32_t* id = ids.ptr<int32_t>();
  float* o = out.ptr<float>();
  for (int64_t t = 0; t < T; t++) {
    MIMO_CHECK(id[t] >= 0 && id[t] < V, "token id {} is outside the vocabulary [0, {})", id[t], V);
    if (table.dtype() == DType::BF16) {
      cpu::to_f32_row(table.ptr<uint16_t>() + int64_t(id[t]) * H, o + t * H, H);
    } else {
      std::memcpy(o + t * H, table.ptr<float>() + int64_t(id[t]) * H, size_t(H) * 4);
    }
  }
}

void CpuBackend::rms_norm(const Tensor& x, const Tensor& w, float eps, Tensor& out) {
  int64_t H = x.dim(-1), T = x.numel() / H;
  const float* xp = x.ptr<float>();
  float* op = out.ptr<float>();
  const bool wb = w.dtype() == DType::BF16;
  pool_.parallel_for(T, std::max<int64_t>(1, 16384 / H), [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; t++) cpu::rms_norm_row(xp + t * H, w.data(), wb, eps, op + t * H, H);
  });
}

cpu::WeightView weight_view(const Tensor& w) {
  cpu::WeightView v;
  v.data = w.data();
  v.ld = w.dim(-1);
  v.tiled = w.layout() == Tensor::Layout::RowTiles;
  v.amx = w.layout() == Tensor::Layout::AmxTiles;
  switch (w.dtype()) {
    case DType::F32: v.kind = cpu::WeightView::Kind::F32; break;
    case DType::BF16: v.kind = cpu::WeightView::Kind::BF16; break;
    case DType::F8E4M3:
      MIMO_ASSERT(w.scales() && w.scale_block() % 8 == 0, "FP8 weight {} needs block scales in blocks of 8k",
                  w.shape_str());
      v.kind = cpu::WeightView::Kind::FP8;
      v.scales = w.scales()->ptr<float>();
      v.scale_ld = w.scales()->dim(-1);
      v.block = w.scale_block();
      break;
    default: MIMO_ASSERT(false, "weight dtype {}", dtype_name(w.dtype()));
  }
  return v;
}

void CpuBackend::linear(const Tensor& x, const Tensor& w, Tensor& out) {
  int64_t K = x.dim(-1), M = x.numel() / K, N = w.dim(0);
  MIMO_ASSERT(w.dim(1) == K && out.numel() == M * N, "linear x{} w{} out{}", x.shape_str(), w.shape_str(),
              out.shape_str());
  cpu::matmul(pool_, x.ptr<float>(), K, M, K, weight_view(w), N, out.ptr<float>(), N, pack_);
}

void CpuBackend::add_(Tensor& x, const Tensor& y) {
  float* a = x.ptr<float>();
  const float* b = y.ptr<float>();
  int64_t n = x.numel();
  pool_.parallel_for(n, 1 << 16, [&](int64_t s, int64_t e) { cpu::add_row(a + s, b + s, e - s); });
}

const CpuBackend::RopeTable& CpuBackend::rope_table(const int32_t* pos, int64_t T, int rot_dim, double theta) {
  for (const RopeTable& r : ropes_)
    if (r.theta == theta && r.rot_dim == rot_dim && int64_t(r.pos.size()) == T &&
        std::equal(r.pos.begin(), r.pos.end(), pos))
      return r;
  // Layers of one kind share theta and positions: compute the table once per
  // step and kind instead of once per call and row.
  RopeTable& r = ropes_[rope_next_];
  rope_next_ = (rope_next_ + 1) % 4;
  const int half = rot_dim / 2;
  r.theta = theta;
  r.rot_dim = rot_dim;
  r.pos.assign(pos, pos + T);
  r.cs.resize(size_t(T) * size_t(half));
  r.sn.resize(size_t(T) * size_t(half));
  // inv_freq as transformers computes it: fp32 base ** (2i / d), then 1 / that.
  float inv[512];
  MIMO_ASSERT(half <= 512, "rotary dim {} too large", rot_dim);
  for (int i = 0; i < half; i++) inv[i] = 1.0f / std::pow(float(theta), float(2 * i) / float(rot_dim));
  pool_.parallel_for(T, 64, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; t++)
      for (int i = 0; i < half; i++) {
        float ang = float(pos[t]) * inv[i];
        r.cs[size_t(t * half + i)] = std::cos(ang);
        r.sn[size_t(t * half + i)] = std::sin(ang);
      }
  });
  return r;
}

void CpuBackend::rope_(Tensor& x, const Tensor& positions, int rot_dim, double theta) {
  int64_t T = x.dim(0), H = x.dim(1), D = x.dim(2);
  const int half = rot_dim / 2;
  if (half == 0 || T == 0) return;
  const RopeTable& r = rope_table(positions.ptr<int32_t>(), T, rot_dim, theta);
  float* xp = x.ptr<float>();
  pool_.parallel_for(T, std::max<int64_t>(1, 4096 / (H * half)), [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; t++)
      for (int64_t h = 0; h < H; h++)
        cpu::rope_row(xp + (t * H + h) * D, r.cs.data() + t * half, r.sn.data() + t * half, half);
  });
}

void CpuBackend::store_kv(const Tensor& k, const Tensor& v, float v_scale, const AttnMeta& meta, Tensor& k_cache,
                          Tensor& v_cache) {
  // Caches are [nkv, slots, D]: head h of token t goes to row (h, slot).
  const int64_t T = k.dim(0), nkv = k_cache.dim(0), slots = k_cache.dim(1), D = k_cache.dim(2), Dv = v_cache.dim(2);
  MIMO_ASSERT(k.numel() == T * nkv * D && v.numel() == T * nkv * Dv, "store_kv k{} v{} into {} / {}", k.shape_str(),
              v.shape_str(), k_cache.shape_str(), v_cache.shape_str());
  const int32_t* s = meta.out_slots.ptr<int32_t>();
  const DType dt = k_cache.dtype();
  MIMO_ASSERT(v_cache.dtype() == dt);
  for (int64_t t = 0; t < T; t++) {
    MIMO_ASSERT(s[t] >= 0 && s[t] < slots, "kv slot {} outside [0, {})", s[t], slots);
    for (int64_t h = 0; h < nkv; h++) {
      const float* kr = k.ptr<float>() + (t * nkv + h) * D;
      const float* vr = v.ptr<float>() + (t * nkv + h) * Dv;
      const int64_t krow = (h * slots + s[t]) * D, vrow = (h * slots + s[t]) * Dv;
      if (dt == DType::BF16) {
        cpu::to_bf16_row(kr, 1.0f, k_cache.ptr<uint16_t>() + krow, D);
        cpu::to_bf16_row(vr, v_scale, v_cache.ptr<uint16_t>() + vrow, Dv);
      } else if (dt == DType::F8E4M3) {
        cpu::to_fp8_row(kr, 1.0f, k_cache.ptr<uint8_t>() + krow, D);
        cpu::to_fp8_row(vr, v_scale, v_cache.ptr<uint8_t>() + vrow, Dv);
      } else {
        std::memcpy(k_cache.ptr<float>() + krow, kr, size_t(D) * 4);
        float* vd = v_cache.ptr<float>() + vrow;
        for (int64_t i = 0; i < Dv; i++) vd[i] = vr[i] * v_scale;
      }
    }
  }
}

void CpuBackend::silu_mul(const Tensor& gate_up, Tensor& out) {
  int64_t I = out.dim(-1), T = out.numel() / I;
  const float* g = gate_up.ptr<float>();
  float* o = out.ptr<float>();
  pool_.parallel_for(T, std::max<int64_t>(1, 8192 / I), [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; t++) cpu::silu_mul_row(g + t * 2 * I, g + t * 2 * I + I, o + t * I, I);
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
  for (int64_t r = 0; r < R; r++) out.ptr<int32_t>()[r] = argmax_row(x.ptr<float>() + r * V, V);
}

void CpuBackend::sample(const Tensor& logits, const Tensor& params, const Tensor& drafts, const Tensor& u,
                        Tensor& out) {
  const int64_t V = logits.dim(-1), R = logits.numel() / V;
  MIMO_ASSERT(params.numel() == 4 * R && drafts.numel() == R && u.numel() == 2 * R && out.numel() == R);
  // Rows in parallel: a sampled row is a few passes over the vocabulary.
  pool_.run_chunks(R, [&](int64_t r) {
    const float* pr = params.ptr<float>() + 4 * r;
    SampleParams sp;
    sp.temperature = pr[0], sp.top_p = pr[1], sp.top_k = int(pr[2]), sp.min_p = pr[3];
    const float* ur = u.ptr<float>() + 2 * r;
    out.ptr<int32_t>()[r] = verify_row(logits.ptr<float>() + r * V, V, sp, drafts.ptr<int32_t>()[r], ur[0], ur[1]);
  });
}

void CpuBackend::convert(const Tensor& src, Tensor& dst) {
  int64_t n = src.numel();
  MIMO_ASSERT(dst.numel() == n);
  if (src.dtype() == dst.dtype()) {
    std::memcpy(dst.data(), src.data(), src.nbytes());
  } else if (src.dtype() == DType::F32 && dst.dtype() == DType::BF16) {
    cpu::to_bf16_row(src.ptr<float>(), 1.0f, dst.ptr<uint16_t>(), n);
  } else if (src.dtype() == DType::BF16 && dst.dtype() == DType::F32) {
    cpu::to_f32_row(src.ptr<uint16_t>(), dst.ptr<float>(), n);
  } else {
    MIMO_ASSERT(false, "convert {} -> {}", dtype_name(src.dtype()), dtype_name(dst.dtype()));
  }
}

}  // namespace mimo
