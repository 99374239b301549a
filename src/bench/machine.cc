#include "bench/machine.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "core/dtype.h"
#include "core/host_alloc.h"
#include "core/thread_pool.h"
#include "ops/backend.h"
#include "ops/cpu/kernels.h"

namespace mimo::bench {

namespace {
double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
std::atomic<float> g_sink{0};  // keeps results alive
}  // namespace

double read_bandwidth(ThreadPool& pool, size_t bytes, int reps) {
  const size_t n = bytes / sizeof(float) / 4096 * 4096;
  // Allocated as the loader allocates weights (huge pages where allowed),
  // so the probe and the decode steps it is compared with stream the same
  // kind of memory.
  std::unique_ptr<float, decltype(&std::free)> buf(static_cast<float*>(host_alloc(n * sizeof(float), true)), &std::free);
  float* p = buf.get();
  const int nt = pool.size();
  // Each thread touches (and later reads) the same share, so pages are
  // faulted in before timing starts and land near the thread that reads them.
  auto share = [&](int tid, size_t& b, size_t& e) {
    b = n / 4096 * size_t(tid) / size_t(nt) * 4096;
    e = n / 4096 * size_t(tid + 1) / size_t(nt) * 4096;
  };
  pool.run([&](int tid, int) {
    size_t b, e;
    share(tid, b, e);
    for (size_t i = b; i < e; i++) p[i] = float(i & 7);
  });
  const bool simd = cpu::cpu_features().avx2_fma;
  double best = 0;
  for (int r = 0; r < reps; r++) {
    double t0 = now();
    pool.run([&](int tid, int) {
      size_t b, e;
      share(tid, b, e);
      float s = 0;
      if (simd) {
        s = avx2::sum_stream(p + b, e - b);
      } else {
        float acc[8] = {};
        for (size_t i = b; i < e; i += 8)
          for (int j = 0; j < 8; j++) acc[j] += p[i + size_t(j)];
        for (float v : acc) s += v;
      }
      g_sink.store(s, std::memory_order_relaxed);
    });
    best = std::max(best, double(n * sizeof(float)) / (now() - t0));
  }
  return best;
}

double fma_peak_flops(ThreadPool& pool, double seconds) {
  if (!cpu::cpu_features().avx2_fma) return 0;
  // The widest FMA the kernels use: 16 lanes with AVX-512, else 8.
  const bool wide = cpu::cpu_features().avx512;
  auto loop = [wide](int64_t n) { return wide ? avx512::fma_loop(n) : avx2::fma_loop(n); };
  const double flops_per_iter = wide ? avx512::kFmaChains * 32.0 : 10 * 16.0;
  // Calibrate the iteration count on one thread, then run it everywhere.
  int64_t iters = 1 << 20;
  double t0 = now();
  g_sink.store(loop(iters));
  double dt = now() - t0;
  iters = std::max<int64_t>(iters, int64_t(double(iters) * seconds / std::max(dt, 1e-6)));
  double best = 0;
  for (int r = 0; r < 3; r++) {
    t0 = now();
    pool.run([&](int, int) { g_sink.store(loop(iters), std::memory_order_relaxed); });
    best = std::max(best, double(iters) * flops_per_iter * pool.size() / (now() - t0));
  }
  return best;
}

double copy_bandwidth(Backend& be, size_t bytes, int reps) {
  const int64_t n = int64_t(bytes / sizeof(float));
  Tensor a = be.alloc({n}, DType::F32), b = be.alloc({n}, DType::F32);
  be.zero_(a);
  be.convert(a, b);  // warm-up
  float one = 0;
  be.copy_to_host(&one, b.slice_rows(0, 1));
  double best = 0;
  for (int r = 0; r < reps; r++) {
    double t0 = now();
    be.convert(a, b);
    be.copy_to_host(&one, b.slice_rows(0, 1));  // waits for the device
    best = std::max(best, 2.0 * double(n) * sizeof(float) / (now() - t0));
  }
  return best;
}

namespace {
// x [n, n] times w^T with w fp32 or bf16 (laid out by prepare_weight as a
// model's weights are), best of `reps`.
double gemm_flops_with(Backend& be, int64_t n, int reps, DType wdt) {
  std::mt19937 g(7);
  std::uniform_real_distribution<float> d(-1, 1);
  Tensor x = Tensor::empty({n, n}, DType::F32), w = Tensor::empty({n, n}, wdt);
  for (int64_t i = 0; i < n * n; i++) {
    x.ptr<float>()[i] = d(g);
    if (wdt == DType::BF16) w.ptr<uint16_t>()[i] = f32_to_bf16(d(g));
    else w.ptr<float>()[i] = d(g);
  }
  Tensor xd = be.upload(x), wd = be.prepare_weight(be.upload(w)), out = be.alloc({n, n}, DType::F32);
  be.linear(xd, wd, out);  // warm-up
  double best = 0;
  for (int r = 0; r < reps; r++) {
    double t0 = now();
    be.linear(xd, wd, out);
    std::vector<float> row(static_cast<size_t>(n));
    be.copy_to_host(row.data(), out.slice_rows(0, 1));  // waits for the device
    best = std::max(best, 2.0 * double(n) * double(n) * double(n) / (now() - t0));
  }
  return best;
}
}  // namespace

double gemm_flops(Backend& be, int64_t n, int reps) {
  return std::max(gemm_flops_with(be, n, reps, DType::F32), gemm_flops_with(be, n, reps, DType::BF16));
}

}  // namespace mimo::bench
