// Memory-bound kernels of the CUDA backend: embedding, RMSNorm, add, RoPE,
// KV store, SwiGLU, row gather, argmax and dtype conversion. Each is one pass
// over its data with coalesced accesses; the arithmetic mirrors the CPU
// backend (fp32 throughout, same bf16 rounding) so the two agree to rounding.
#include "ops/cuda/cuda_common.cuh"
#include "ops/cuda/cuda_kernels.h"

namespace mimo::cuda {

namespace {

constexpr int kThreads = 256;

// Grid-stride launches: enough blocks to fill any current GPU several times
// over, never more than the work needs.
inline unsigned grid_for(int64_t n) {
  int64_t b = ceil_div(n, kThreads);
  if (b > 8192) b = 8192;
  return unsigned(b < 1 ? 1 : b);
}

template <typename W>
__global__ void embedding_kernel(const int32_t* ids, const W* table, int64_t V, int64_t H, float* out) {
  int64_t t = blockIdx.x;
  int32_t id = ids[t];
  bool ok = id >= 0 && id < V;
  for (int64_t h = threadIdx.x; h < H; h += blockDim.x)
    out[t * H + h] = ok ? load_f32(table, int64_t(id) * H + h) : 0.0f;
}

template <typename W>
__global__ void rms_norm_kernel(const float* x, const W* w, float eps, int64_t H, float* out) {
  __shared__ float red[32];
  const float* r = x + int64_t(blockIdx.x) * H;
  float ss = 0;
  for (int64_t h = threadIdx.x; h < H; h += blockDim.x) ss += r[h] * r[h];
  ss = block_sum(ss, red);
  // 1 / sqrt rather than rsqrtf: the CPU computes it this way and rsqrtf is
  // not correctly rounded.
  float inv = 1.0f / sqrtf(ss / float(H) + eps);
  float* o = out + int64_t(blockIdx.x) * H;
  for (int64_t h = threadIdx.x; h < H; h += blockDim.x) o[h] = load_f32(w, h) * (r[h] * inv);
}

__global__ void add_kernel(float* x, const float* y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    x[i] += y[i];
}

// One thread per (token, head, rotated pair).
__global__ void rope_kernel(float* x, const int32_t* pos, const float* inv_freq, int64_t T, int64_t H, int64_t D,
                            int half) {
  int64_t n = T * H * half;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t j = i % half, th = i / half, t = th / H;
    float ang = float(pos[t]) * inv_freq[j];
    float c = cosf(ang), s = sinf(ang);
    float* r = x + th * D;
    float a = r[j], b = r[j + half];
    r[j] = a * c - b * s;
    r[j + half] = b * c + a * s;
  }
}

template <typename C>
__device__ __forceinline__ void put(C* p, int64_t i, float v);
template <> __device__ __forceinline__ void put<float>(float* p, int64_t i, float v) { p[i] = v; }
template <> __device__ __forceinline__ void put<uint16_t>(uint16_t* p, int64_t i, float v) {
  p[i] = f32_to_bf16_bits(v);
}

// Caches are [nkv, n_slots, D | Dv]: element c of token t's K row (head
// c / D) goes to row (head, slot).
template <typename C>
__global__ void store_kv_kernel(const float* k, const float* v, float v_scale, const int32_t* slots, int64_t T,
                                int64_t nkv, int64_t D, int64_t Dv, int64_t n_slots, C* kc, C* vc) {
  const int64_t kw = nkv * D, vw = nkv * Dv, w = kw + vw, n = T * w;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t t = i / w, c = i % w;
    int64_t s = slots[t];
    if (s < 0 || s >= n_slots) continue;  // the host validated slots; never write out of bounds
    if (c < kw) {
      put(kc, (c / D * n_slots + s) * D + c % D, k[t * kw + c]);
    } else {
      c -= kw;
      put(vc, (c / Dv * n_slots + s) * Dv + c % Dv, v[t * vw + c] * v_scale);
    }
  }
}

__global__ void silu_mul_kernel(const float* gu, int64_t T, int64_t I, float* out, const int32_t* rows_dev) {
  int64_t rows = rows_dev ? int64_t(*rows_dev) : T;
  int64_t n = rows * I;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t t = i / I, c = i % I;
    float a = gu[t * 2 * I + c], u = gu[t * 2 * I + I + c];
    out[i] = a / (1.0f + expf(-a)) * u;
  }
}

template <typename U>
__global__ void gather_kernel(const U* x, int64_t n_rows, int64_t row_elems, const int32_t* rows, U* out) {
  int64_t r = blockIdx.x;
  int64_t src = rows[r];
  if (src < 0 || src >= n_rows) return;
  for (int64_t i = threadIdx.x; i < row_elems; i += blockDim.x) out[r * row_elems + i] = x[src * row_elems + i];
}

__global__ void argmax_kernel(const float* x, int64_t V, int32_t* out) {
  __shared__ float sv[32];
  __shared__ int si[32];
  const float* r = x + int64_t(blockIdx.x) * V;
  float bv = -INFINITY;
  int bi = 0x7fffffff;
  // Each thread scans increasing indices, so '>' keeps its first maximum.
  for (int64_t i = threadIdx.x; i < V; i += blockDim.x) {
    float v = r[i];
    if (v > bv || bi == 0x7fffffff) {
      bv = v;
      bi = int(i);
    }
  }
  bi = block_argmax(bv, bi, sv, si);
  if (threadIdx.x == 0) out[blockIdx.x] = bi;
}

__global__ void f32_to_bf16_kernel(const float* x, int64_t n, uint16_t* out) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = f32_to_bf16_bits(x[i]);
}

__global__ void bf16_to_f32_kernel(const uint16_t* x, int64_t n, float* out) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = bf16_bits_to_f32(x[i]);
}

}  // namespace

cudaError_t probe_kernels() {
  cudaFuncAttributes attr;
  return cudaFuncGetAttributes(&attr, add_kernel);
}

void embedding(const int32_t* ids, int64_t T, const void* table, bool bf16, int64_t V, int64_t H, float* out,
               cudaStream_t s) {
  if (T == 0) return;
  if (bf16)
    embedding_kernel<<<unsigned(T), kThreads, 0, s>>>(ids, static_cast<const uint16_t*>(table), V, H, out);
  else
    embedding_kernel<<<unsigned(T), kThreads, 0, s>>>(ids, static_cast<const float*>(table), V, H, out);
}

void rms_norm(const float* x, const void* w, bool w_bf16, float eps, int64_t T, int64_t H, float* out,
              cudaStream_t s) {
  if (T == 0) return;
  // Small rows (the test model's 64) waste most of a 256-thread block.
  int threads = H >= 1024 ? 512 : H >= 256 ? 256 : 64;
  if (w_bf16)
    rms_norm_kernel<<<unsigned(T), threads, 0, s>>>(x, static_cast<const uint16_t*>(w), eps, H, out);
  else
    rms_norm_kernel<<<unsigned(T), threads, 0, s>>>(x, static_cast<const float*>(w), eps, H, out);
}

void add(float* x, const float* y, int64_t n, cudaStream_t s) {
  if (n > 0) add_kernel<<<grid_for(n), kThreads, 0, s>>>(x, y, n);
}

void rope(float* x, const int32_t* pos, const float* inv_freq, int64_t T, int64_t H, int64_t D, int rot_dim,
          cudaStream_t s) {
  int half = rot_dim / 2;
  int64_t n = T * H * half;
  if (n > 0) rope_kernel<<<grid_for(n), kThreads, 0, s>>>(x, pos, inv_freq, T, H, D, half);
}

void store_kv(const float* k, const float* v, float v_scale, const int32_t* slots, int64_t T, int64_t nkv, int64_t D,
              int64_t Dv, int64_t n_slots, void* kc, void* vc, bool bf16, cudaStream_t s) {
  int64_t n = T * nkv * (D + Dv);
  if (n == 0) return;
  if (bf16)
    store_kv_kernel<<<grid_for(n), kThreads, 0, s>>>(k, v, v_scale, slots, T, nkv, D, Dv, n_slots,
                                                     static_cast<uint16_t*>(kc), static_cast<uint16_t*>(vc));
  else
    store_kv_kernel<<<grid_for(n), kThreads, 0, s>>>(k, v, v_scale, slots, T, nkv, D, Dv, n_slots,
                                                     static_cast<float*>(kc), static_cast<float*>(vc));
}

void silu_mul(const float* gu, int64_t T, int64_t I, float* out, const int32_t* rows_dev, cudaStream_t s) {
  int64_t n = T * I;
  if (n > 0) silu_mul_kernel<<<grid_for(n), kThreads, 0, s>>>(gu, T, I, out, rows_dev);
}

void gather_rows(const void* x, int64_t n_rows, int64_t row_bytes, const int32_t* rows, int64_t R, void* out,
                 cudaStream_t s) {
  if (R == 0 || row_bytes == 0) return;
  // Widest element that divides the row and both base pointers.
  auto aligned = [&](int64_t a) {
    return row_bytes % a == 0 && reinterpret_cast<uintptr_t>(x) % a == 0 && reinterpret_cast<uintptr_t>(out) % a == 0;
  };
  if (aligned(16))
    gather_kernel<<<unsigned(R), 128, 0, s>>>(static_cast<const uint4*>(x), n_rows, row_bytes / 16, rows,
                                              static_cast<uint4*>(out));
  else if (aligned(4))
    gather_kernel<<<unsigned(R), 128, 0, s>>>(static_cast<const uint32_t*>(x), n_rows, row_bytes / 4, rows,
                                              static_cast<uint32_t*>(out));
  else
    gather_kernel<<<unsigned(R), 128, 0, s>>>(static_cast<const uint8_t*>(x), n_rows, row_bytes, rows,
                                              static_cast<uint8_t*>(out));
}

void argmax(const float* x, int64_t R, int64_t V, int32_t* out, cudaStream_t s) {
  if (R > 0) argmax_kernel<<<unsigned(R), 1024, 0, s>>>(x, V, out);
}

void f32_to_bf16(const float* x, int64_t n, uint16_t* out, cudaStream_t s) {
  if (n > 0) f32_to_bf16_kernel<<<grid_for(n), kThreads, 0, s>>>(x, n, out);
}

void bf16_to_f32(const uint16_t* x, int64_t n, float* out, cudaStream_t s) {
  if (n > 0) bf16_to_f32_kernel<<<grid_for(n), kThreads, 0, s>>>(x, n, out);
}

}  // namespace mimo::cuda
