// Host emulation of the CUDA thread model for checking kernel logic: one
// std::thread per CUDA thread, blocks run one at a time (so `static` works as
// __shared__), std::barrier for __syncthreads/__syncwarp, shuffles through a
// per-warp exchange buffer, WMMA as full 16x16 matrices per lane.
#pragma once
#include <algorithm>
#include <atomic>
#include <barrier>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __restrict__
#define __shared__ static
#define __align__(n)

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {}
};
struct uint4 { uint32_t x, y, z, w; };
struct uint2 { uint32_t x, y; };
struct float4 { float x, y, z, w; };
struct CUstream_st;
typedef CUstream_st* cudaStream_t;
enum cudaError_t { cudaSuccess = 0, cudaErrorNoKernelImageForDevice = 209 };
struct cudaFuncAttributes { int dummy; };
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize };
template <class F> cudaError_t cudaFuncSetAttribute(F, cudaFuncAttribute, int) { return cudaSuccess; }
template <class F> cudaError_t cudaFuncGetAttributes(cudaFuncAttributes*, F) { return cudaSuccess; }
inline cudaError_t cudaMemsetAsync(void* p, int v, size_t n, cudaStream_t) { std::memset(p, v, n); return cudaSuccess; }

namespace emu {
struct Block {
  int n;
  std::barrier<> bar;
  std::vector<std::unique_ptr<std::barrier<>>> warp_bar;
  std::vector<uint64_t> xch;
  std::vector<char> dyn;
  Block(int n_, size_t smem) : n(n_), bar(n_), xch(size_t(n_)), dyn(smem + 64, char(0x5a)) {
    for (int w = 0; w < (n + 31) / 32; w++) warp_bar.emplace_back(new std::barrier<>(std::min(32, n - 32 * w)));
  }
};
inline thread_local Block* cur = nullptr;
inline thread_local int tid_flat = 0;
}  // namespace emu
inline thread_local dim3 threadIdx, blockIdx;
inline dim3 blockDim, gridDim;

inline void __syncthreads() { emu::cur->bar.arrive_and_wait(); }
inline void __syncwarp(unsigned = 0xffffffffu) { emu::cur->warp_bar[size_t(emu::tid_flat / 32)]->arrive_and_wait(); }
template <class T> T emu_xch(T v, int src_lane_fn_dummy, int src) {
  auto* b = emu::cur;
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof(T));
  b->xch[size_t(emu::tid_flat)] = bits;
  __syncwarp();
  uint64_t o = b->xch[size_t((emu::tid_flat / 32) * 32 + src)];
  __syncwarp();
  T r;
  std::memcpy(&r, &o, sizeof(T));
  return r;
}
template <class T> T __shfl_xor_sync(unsigned, T v, int o) { return emu_xch(v, 0, (emu::tid_flat % 32) ^ o); }
template <class T> T __shfl_up_sync(unsigned, T v, int o) {
  int lane = emu::tid_flat % 32;
  T r = emu_xch(v, 0, lane >= o ? lane - o : lane);
  return r;
}
inline int __reduce_min_sync(unsigned, int v) {
  for (int o = 16; o > 0; o >>= 1) v = std::min(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
inline int __reduce_max_sync(unsigned, int v) {
  for (int o = 16; o > 0; o >>= 1) v = std::max(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
inline float __uint_as_float(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }
inline uint32_t __float_as_uint(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }
inline float __int_as_float(int u) { float f; std::memcpy(&f, &u, 4); return f; }
template <class T> T __ldg(const T* p) { return *p; }
inline int atomicAdd(int* p, int v) { return std::atomic_ref<int>(*p).fetch_add(v); }
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline long min(long a, long b) { return a < b ? a : b; }
inline long max(long a, long b) { return a > b ? a : b; }
#include <math.h>

namespace emu {
inline void* dyn_smem() { return cur->dyn.data(); }
template <class K, class... A>
void launch(dim3 g, dim3 b, size_t smem, K kernel, A... args) {
  gridDim = g;
  blockDim = b;
  int n = int(b.x * b.y * b.z);
  for (unsigned z = 0; z < g.z; z++)
    for (unsigned y = 0; y < g.y; y++)
      for (unsigned x = 0; x < g.x; x++) {
        Block blk(n, smem);
        std::vector<std::thread> ts;
        for (int t = 0; t < n; t++)
          ts.emplace_back([&, t] {
            cur = &blk;
            tid_flat = t;
            threadIdx = dim3(unsigned(t) % b.x, (unsigned(t) / b.x) % b.y, unsigned(t) / (b.x * b.y));
            blockIdx = dim3(x, y, z);
            kernel(args...);
            blk.bar.arrive_and_drop();
            blk.warp_bar[size_t(t / 32)]->arrive_and_drop();
          });
        for (auto& th : ts) th.join();
      }
}
}  // namespace emu

struct __nv_bfloat16 { uint16_t x; };
namespace nvcuda { namespace wmma {
struct row_major {}; struct col_major {}; struct matrix_a {}; struct matrix_b {}; struct accumulator {};
enum layout_t { mem_row_major, mem_col_major };
template <class Use, int M, int N, int K, class T, class L = void> struct fragment { float v[16][16]; };
template <class F> void fill_fragment(F& f, float x) { for (auto& r : f.v) for (auto& e : r) e = x; }
inline float bf(const __nv_bfloat16* p) { return __uint_as_float(uint32_t(p->x) << 16); }
inline void load_matrix_sync(fragment<matrix_a, 16, 16, 16, __nv_bfloat16, row_major>& f, const __nv_bfloat16* p, unsigned ld) {
  for (int r = 0; r < 16; r++) for (int c = 0; c < 16; c++) f.v[r][c] = bf(p + r * ld + c);
}
inline void load_matrix_sync(fragment<matrix_b, 16, 16, 16, __nv_bfloat16, col_major>& f, const __nv_bfloat16* p, unsigned ld) {
  for (int k = 0; k < 16; k++) for (int n = 0; n < 16; n++) f.v[k][n] = bf(p + n * ld + k);
}
template <class A, class B, class C>
void mma_sync(C& d, const A& a, const B& b, const C& c) {
  C t;
  for (int i = 0; i < 16; i++) for (int j = 0; j < 16; j++) {
    float s = c.v[i][j];
    for (int k = 0; k < 16; k++) s += a.v[i][k] * b.v[k][j];
    t.v[i][j] = s;
  }
  d = t;
}
template <class F> void store_matrix_sync(float* p, const F& f, unsigned ld, layout_t) {
  if (emu::tid_flat % 32) return;
  for (int r = 0; r < 16; r++) for (int c = 0; c < 16; c++) p[r * ld + c] = f.v[r][c];
}
}}  // namespace nvcuda::wmma
