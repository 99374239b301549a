// What this machine can do, measured in-process, so a benchmark can say how
// close a run came to the hardware: streaming read bandwidth (every pool
// thread reads its own share of a buffer far larger than the last-level
// cache) and peak fp32 FLOP/s (a register-only FMA loop on every thread, and
// the backend's own GEMM on a large square problem).
#pragma once

#include <cstddef>
#include <cstdint>

namespace mimo {
class Backend;
class ThreadPool;
}

namespace mimo::bench {

// Best of `reps` passes of a multi-threaded read of `bytes`; bytes/s (1e9 = GB/s).
double read_bandwidth(ThreadPool& pool, size_t bytes = size_t(1) << 30, int reps = 5);

// FLOP/s of independent FMA chains kept in registers on every pool thread:
// the ceiling no kernel can pass. 0 when the CPU has no AVX2+FMA.
double fma_peak_flops(ThreadPool& pool, double seconds = 0.3);

// Bytes/s of a device-to-device copy through backend.convert (same dtype),
// counting bytes read plus bytes written, best of `reps`: the bandwidth
// roofline of a GPU, measured the way its vendor quotes it.
double copy_bandwidth(Backend& backend, size_t bytes = size_t(1) << 30, int reps = 5);

// FLOP/s of backend.linear on x[n, n] @ w[n, n]^T, w fp32 or bf16 (as
// prepare_weight lays a model's weights out), whichever is faster (on a CPU
// with AMX the bf16 one: its tile path), best of `reps`.
double gemm_flops(Backend& backend, int64_t n = 1536, int reps = 3);

namespace avx2 {
// Sum of n floats (n a multiple of 64) with independent accumulators.
float sum_stream(const float* p, size_t n);
// Runs `iters` rounds of 10 independent 8-wide FMA chains; returns a value
// that depends on them so the compiler keeps the loop.
float fma_loop(int64_t iters);
}  // namespace avx2

namespace avx512 {
constexpr int kFmaChains = 12;
// Runs `iters` rounds of kFmaChains independent 16-wide FMA chains.
float fma_loop(int64_t iters);
}  // namespace avx512

}  // namespace mimo::bench
