// CudaBackend: memory, streams, cuBLAS, and the host side of every op
// (shape checks, launch configuration). The kernels live in the .cu files.
#include "ops/cuda/cuda_backend.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdlib>
#include <cstring>

#include "core/error.h"
#include "ops/cuda/cuda_kernels.h"

namespace mimo {

namespace {

// Whether this thread is capturing a graph on a CudaBackend: a CUDA call
// that fails then throws (the model abandons the capture and runs the step
// op by op) instead of aborting.
thread_local bool t_capturing = false;

void cuda_failed(const char* what, cudaError_t e) {
  const std::string msg = fmt::format("{} failed: {} ({})", what, cudaGetErrorName(e), cudaGetErrorString(e));
  if (t_capturing) throw Error(msg + " during a graph capture");
  MIMO_ASSERT(false, "{}", msg);
}

// CUDA API failures that are not the caller's input are bugs or a broken
// device: abort with the call and the error (throw inside a graph capture).
#define CUDA_OK(call)                             \
  do {                                            \
    cudaError_t e_ = (call);                      \
    if (e_ != cudaSuccess) cuda_failed(#call, e_); \
  } while (0)

#define CUBLAS_OK(call)                                                                \
  do {                                                                                 \
    cublasStatus_t s_ = (call);                                                        \
    MIMO_ASSERT(s_ == CUBLAS_STATUS_SUCCESS, "{} failed: {}", #call, cublasGetStatusName(s_)); \
  } while (0)

constexpr size_t kBlasWorkspace = 32u << 20;  // cuBLAS's recommended size on Hopper

bool is_bf16(const Tensor& t) { return t.dtype() == DType::BF16; }

// An FP8 weight and its per-row block scales as the kernels take them.
cuda::Fp8Rows fp8_rows(const Tensor& w) {
  MIMO_ASSERT(w.scales() && w.scales()->device() == Device::CUDA && w.scale_block() % 8 == 0,
              "FP8 weight {} needs device block scales in blocks of 8k", w.shape_str());
  return {w.ptr<uint8_t>(), w.scales()->ptr<float>(), w.scales()->dim(-1), w.scale_block()};
}

void expect_cuda(const Tensor& t, const char* what) {
  MIMO_ASSERT(t.device() == Device::CUDA, "{}: tensor {} is on the {}, not the GPU", what, t.shape_str(),
              device_name(t.device()));
}

}  // namespace

std::unique_ptr<Backend> make_cuda_backend() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
    cudaGetLastError();  // clear the sticky "no device" error
    return nullptr;
  }
  return std::make_unique<CudaBackend>(0);
}

CudaBackend::CudaBackend(int device) : device_(device) {
  CUDA_OK(cudaSetDevice(device_));
  cudaDeviceProp prop;
  CUDA_OK(cudaGetDeviceProperties(&prop, device_));
  num_sms_ = prop.multiProcessorCount;
  cudaError_t probe = cuda::probe_kernels();
  if (probe != cudaSuccess) {
    cudaGetLastError();
    fail("this build has no CUDA kernels for {} (compute capability {}.{}): {}; rebuild with "
         "-DCMAKE_CUDA_ARCHITECTURES={}{}",
         prop.name, prop.major, prop.minor, cudaGetErrorString(probe), prop.major, prop.minor);
  }
  name_ = fmt::format("cuda:{} ({}, sm_{}{}, {} SMs, {:.1f} GiB)", device_, prop.name, prop.major, prop.minor,
                      num_sms_, double(prop.totalGlobalMem) / double(1ull << 30));
  cudaStream_t s;
  CUDA_OK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  stream_ = s;
  cublasHandle_t h;
  CUBLAS_OK(cublasCreate(&h));
  blas_ = h;
  CUBLAS_OK(cublasSetStream(h, s));
  // An explicit workspace keeps cuBLAS from allocating inside a step (and is
  // what graph capture needs later).
  CUDA_OK(cudaMalloc(&blas_workspace_, kBlasWorkspace));
  CUBLAS_OK(cublasSetWorkspace(h, blas_workspace_, kBlasWorkspace));
  cuda::attention_prepare();
  CUDA_OK(cudaGetLastError());
  const char* env = std::getenv("MIMOSERVE_CUDA_SYNC");
  sync_each_op_ = env && std::strcmp(env, "0") != 0;
}

CudaBackend::~CudaBackend() {
  // Tensors may outlive the backend (their deleters only cudaFree), but the
  // stream and handle go with it.
  cudaStreamSynchronize(stream_);
  inv_freq_.clear();
  if (blas_) cublasDestroy(blas_);
  if (blas_workspace_) cudaFree(blas_workspace_);
  if (scratch_) cudaFree(scratch_);
  for (void* p : retired_scratch_) cudaFree(p);
  if (stream_) cudaStreamDestroy(stream_);
}

void CudaBackend::synchronize() { CUDA_OK(cudaStreamSynchronize(stream_)); }

void CudaBackend::after_launch(const char* op) {
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) cuda_failed(fmt::format("CUDA {}: launch", op).c_str(), e);
  if (sync_each_op_ && !capturing_) {
    e = cudaStreamSynchronize(stream_);
    MIMO_ASSERT(e == cudaSuccess, "CUDA {}: kernel failed: {}", op, cudaGetErrorString(e));
  }
}

void* CudaBackend::scratch(size_t bytes) {
  if (bytes <= scratch_bytes_) return scratch_;
  MIMO_ASSERT(!capturing_, "CUDA scratch would grow to {} bytes inside a graph capture (run the step once first)",
              bytes);
  // Work already queued may still read the old block.
  CUDA_OK(cudaStreamSynchronize(stream_));
  if (scratch_ && captured_) retired_scratch_.push_back(scratch_);
  else if (scratch_) CUDA_OK(cudaFree(scratch_));
  scratch_ = nullptr;
  size_t want = bytes + bytes / 4;
  cudaError_t e = cudaMalloc(&scratch_, want);
  if (e != cudaSuccess) {
    cudaGetLastError();
    scratch_bytes_ = 0;
    fail("CUDA out of memory: cannot allocate {} bytes of scratch", want);
  }
  scratch_bytes_ = want;
  return scratch_;
}

Tensor CudaBackend::alloc(std::vector<int64_t> shape, DType dtype) {
  int64_t n = 1;
  for (auto s : shape) n *= s;
  // At least one 256-byte unit, so every tensor has a real, aligned address.
  size_t bytes = std::max<size_t>(256, (size_t(n) * dtype_size(dtype) + 255) / 256 * 256);
  void* p = nullptr;
  cudaError_t e = cudaMalloc(&p, bytes);
  if (e != cudaSuccess) {
    cudaGetLastError();
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    fail("CUDA out of memory allocating {} bytes for a tensor of shape {} ({} MiB free of {} MiB)", bytes,
         Tensor::from_storage(shape, dtype, Device::CUDA, nullptr, nullptr).shape_str(), free_b >> 20,
         total_b >> 20);
  }
  // cudaFree waits for the device, so freeing while work is queued is safe.
  std::shared_ptr<void> storage(p, [](void* q) { cudaFree(q); });
  return Tensor::from_storage(std::move(shape), dtype, Device::CUDA, std::move(storage), p);
}

void CudaBackend::zero_(Tensor& t) {
  expect_cuda(t, "zero_");
  CUDA_OK(cudaMemsetAsync(t.data(), 0, t.nbytes(), stream_));
}

void CudaBackend::copy_from_host(Tensor& dst, const void* src) {
  expect_cuda(dst, "copy_from_host");
  MIMO_ASSERT(!capturing_, "copy_from_host inside a graph capture");
  // From pageable memory the call returns once src has been staged, so the
  // caller may reuse src right away.
  CUDA_OK(cudaMemcpyAsync(dst.data(), src, dst.nbytes(), cudaMemcpyHostToDevice, stream_));
}

void CudaBackend::copy_to_host(void* dst, const Tensor& src) {
  expect_cuda(src, "copy_to_host");
  MIMO_ASSERT(!capturing_, "copy_to_host inside a graph capture");
  CUDA_OK(cudaMemcpyAsync(dst, src.data(), src.nbytes(), cudaMemcpyDeviceToHost, stream_));
  CUDA_OK(cudaStreamSynchronize(stream_));
}

void CudaBackend::embedding(const Tensor& ids, const Tensor& table, Tensor& out) {
  int64_t T = ids.numel(), V = table.dim(0), H = table.dim(1);
  MIMO_ASSERT(out.numel() == T * H && out.dtype() == DType::F32 && ids.dtype() == DType::I32);
  cuda::embedding(ids.ptr<int32_t>(), T, table.data(), is_bf16(table), V, H, out.ptr<float>(), stream_);
  after_launch("embedding");
}

void CudaBackend::rms_norm(const Tensor& x, const Tensor& w, float eps, Tensor& out) {
  int64_t H = x.dim(-1), T = x.numel() / H;
  MIMO_ASSERT(w.numel() == H && out.numel() == x.numel());
  cuda::rms_norm(x.ptr<float>(), w.data(), is_bf16(w), eps, T, H, out.ptr<float>(), stream_);
  after_launch("rms_norm");
}

void CudaBackend::linear(const Tensor& x, const Tensor& w, Tensor& out) {
  int64_t K = x.dim(-1), M = x.numel() / K, N = w.dim(0);
  MIMO_ASSERT(w.dim(1) == K && out.numel() == M * N && x.dtype() == DType::F32 && out.dtype() == DType::F32,
              "linear x{} w{} out{}", x.shape_str(), w.shape_str(), out.shape_str());
  if (M == 0 || N == 0) return;
  if (K == 0) return zero_(out);
  const float one = 1.0f, zero = 0.0f;
  // Row-major out[M, N] = x[M, K] w[N, K]^T is column-major out^T = w^T x^T:
  // cuBLAS sees w as a K x N matrix (op T) and x as K x M.
  if (w.dtype() == DType::F8E4M3) {
    const cuda::Fp8Rows f = fp8_rows(w);
    if (M <= cuda::kGemvMaxM) {
      cuda::gemv_fp8(x.ptr<float>(), M, K, f, N, out.ptr<float>(), stream_);
      return after_launch("linear (fp8 gemv)");
    }
    // Tensor cores: the activations and a slab of weight rows at a time
    // (fp8 * scale) in bf16, ~32 MB of weights per product.
    const int64_t slab = std::min<int64_t>(N, std::max<int64_t>(64, (int64_t(32) << 20) / (2 * K)));
    const size_t xbytes = (size_t(M * K) * 2 + 255) / 256 * 256;
    char* base = static_cast<char*>(scratch(xbytes + size_t(slab * K) * 2));
    auto* xb = reinterpret_cast<uint16_t*>(base);
    auto* wb = reinterpret_cast<uint16_t*>(base + xbytes);
    cuda::f32_to_bf16(x.ptr<float>(), M * K, xb, stream_);
    after_launch("linear (convert)");
    for (int64_t n0 = 0; n0 < N; n0 += slab) {
      const int64_t n1 = std::min(N, n0 + slab);
      cuda::fp8_to_bf16(f, n0, n1, K, wb, stream_);
      after_launch("linear (fp8 -> bf16)");
      CUBLAS_OK(cublasGemmEx(blas_, CUBLAS_OP_T, CUBLAS_OP_N, int(n1 - n0), int(M), int(K), &one, wb, CUDA_R_16BF,
                             int(K), xb, CUDA_R_16BF, int(K), &zero, out.ptr<float>() + n0, CUDA_R_32F, int(N),
                             CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    }
  } else if (is_bf16(w)) {
    if (M <= cuda::kGemvMaxM) {
      cuda::gemv_bf16(x.ptr<float>(), M, K, w.ptr<uint16_t>(), N, out.ptr<float>(), stream_);
      return after_launch("linear (gemv)");
    }
    // Tensor cores need both operands in bf16: round the activations (the
    // documented tolerance of this path), accumulate in fp32.
    auto* xb = static_cast<uint16_t*>(scratch(size_t(M * K) * 2));
    cuda::f32_to_bf16(x.ptr<float>(), M * K, xb, stream_);
    after_launch("linear (convert)");
    CUBLAS_OK(cublasGemmEx(blas_, CUBLAS_OP_T, CUBLAS_OP_N, int(N), int(M), int(K), &one, w.data(), CUDA_R_16BF,
                           int(K), xb, CUDA_R_16BF, int(K), &zero, out.data(), CUDA_R_32F, int(N),
                           CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
  } else {
    // F32 weights must give fp32 results (the golden test's 1e-4): the
    // pedantic compute type rules out TF32 even under NVIDIA_TF32_OVERRIDE.
    MIMO_ASSERT(w.dtype() == DType::F32);
    CUBLAS_OK(cublasGemmEx(blas_, CUBLAS_OP_T, CUBLAS_OP_N, int(N), int(M), int(K), &one, w.data(), CUDA_R_32F,
                           int(K), x.data(), CUDA_R_32F, int(K), &zero, out.data(), CUDA_R_32F, int(N),
                           CUBLAS_COMPUTE_32F_PEDANTIC, CUBLAS_GEMM_DEFAULT));
  }
  after_launch("linear (cublas)");
}

void CudaBackend::add_(Tensor& x, const Tensor& y) {
  MIMO_ASSERT(x.numel() == y.numel());
  cuda::add(x.ptr<float>(), y.ptr<float>(), x.numel(), stream_);
  after_launch("add_");
}

const float* CudaBackend::inv_freq(int rot_dim, double theta) {
  auto key = std::make_pair(rot_dim, theta);
  auto it = inv_freq_.find(key);
  if (it != inv_freq_.end()) return it->second.ptr<float>();
  MIMO_ASSERT(!capturing_, "RoPE table ({}, {}) first needed inside a graph capture (run the step once first)",
              rot_dim, theta);
  int half = rot_dim / 2;
  // The same expression as the CPU backend (transformers' fp32 inv_freq).
  std::vector<float> inv(size_t(std::max(half, 1)));
  for (int i = 0; i < half; i++) inv[size_t(i)] = 1.0f / std::pow(float(theta), float(2 * i) / float(rot_dim));
  Tensor t = alloc({int64_t(inv.size())}, DType::F32);
  CUDA_OK(cudaMemcpyAsync(t.data(), inv.data(), inv.size() * 4, cudaMemcpyHostToDevice, stream_));
  CUDA_OK(cudaStreamSynchronize(stream_));  // `inv` dies here; this happens once per (rot_dim, theta)
  return inv_freq_.emplace(key, std::move(t)).first->second.ptr<float>();
}

void CudaBackend::rope_(Tensor& x, const Tensor& positions, int rot_dim, double theta) {
  int64_t T = x.dim(0), H = x.dim(1), D = x.dim(2);
  MIMO_ASSERT(rot_dim <= D && rot_dim % 2 == 0 && positions.numel() == T);
  if (rot_dim == 0 || T == 0) return;
  const float* inv = inv_freq(rot_dim, theta);
  cuda::rope(x.ptr<float>(), positions.ptr<int32_t>(), inv, T, H, D, rot_dim, stream_);
  after_launch("rope_");
}

void CudaBackend::store_kv(const Tensor& k, const Tensor& v, float v_scale, const AttnMeta& meta, Tensor& k_cache,
                           Tensor& v_cache) {
  int64_t T = k.dim(0);
  if (T == 0) return;
  // Caches are [nkv, slots, D | Dv] (kv_cache.h).
  const int64_t nkv = k_cache.dim(0), slots = k_cache.dim(1), D = k_cache.dim(2), Dv = v_cache.dim(2);
  MIMO_ASSERT(k.numel() == T * nkv * D && v.numel() == T * nkv * Dv && v_cache.dim(1) == slots &&
              k_cache.dtype() == v_cache.dtype());
  cuda::store_kv(k.ptr<float>(), v.ptr<float>(), v_scale, meta.out_slots.ptr<int32_t>(), T, nkv, D, Dv, slots,
                 k_cache.data(), v_cache.data(), is_bf16(k_cache), stream_);
  after_launch("store_kv");
}

void CudaBackend::attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const Tensor& sinks,
                            const AttnMeta& meta, const AttnParams& p, Tensor& out) {
  cuda::AttnArgs a;
  a.T = int(q.dim(0));
  a.H = int(q.dim(1));
  a.D = int(q.dim(2));
  a.nkv = int(k_cache.dim(0));  // caches are [nkv, slots, D | Dv]
  a.n_slots = k_cache.dim(1);
  a.Dv = int(v_cache.dim(2));
  MIMO_ASSERT(a.H % a.nkv == 0 && k_cache.dim(2) == a.D && out.dim(2) == a.Dv && k_cache.dtype() == v_cache.dtype());
  MIMO_CHECK(a.D <= cuda::kAttnMaxHeadDim && a.Dv <= cuda::kAttnMaxHeadDim,
             "CUDA attention supports head dims up to {}, got q/k {} and v {}", cuda::kAttnMaxHeadDim, a.D, a.Dv);
  if (a.T == 0 || meta.num_seqs == 0) return;
  a.q = q.ptr<float>();
  a.k_cache = k_cache.data();
  a.v_cache = v_cache.data();
  a.kv_bf16 = is_bf16(k_cache);
  a.sinks = sinks.numel() > 0 && sinks.data() ? sinks.ptr<float>() : nullptr;
  a.positions = meta.positions.ptr<int32_t>();
  a.q_start = meta.q_start.ptr<int32_t>();
  a.kv_len = meta.kv_len.ptr<int32_t>();
  a.table_start = meta.table_start.ptr<int32_t>();
  a.table = meta.table.ptr<int32_t>();
  a.num_seqs = meta.num_seqs;
  // The bounds only shape the launch; when a caller leaves them unset, T and
  // the table length are safe upper bounds.
  a.max_q_len = meta.max_q_len > 0 ? meta.max_q_len : a.T;
  a.max_kv_len = meta.max_kv_len > 0 ? meta.max_kv_len : int(meta.table.numel());
  a.window = p.window;
  a.scale = p.scale;
  a.out = out.ptr<float>();
  a.nsplit = cuda::attention_splits(a);
  if (a.nsplit > 1) {
    size_t acc = size_t(a.nsplit) * size_t(a.T) * size_t(a.H) * size_t(a.Dv);
    size_t ml = size_t(a.nsplit) * size_t(a.T) * size_t(a.H) * 2;
    char* base = static_cast<char*>(scratch((acc + ml) * 4 + 256));
    a.part_acc = reinterpret_cast<float*>(base);
    a.part_ml = reinterpret_cast<float*>(base + (acc * 4 + 255) / 256 * 256);
  }
  cuda::attention(a, stream_);
  after_launch("attention");
}

void CudaBackend::silu_mul(const Tensor& gate_up, Tensor& out) {
  int64_t I = out.dim(-1), T = out.numel() / I;
  MIMO_ASSERT(gate_up.numel() == 2 * T * I);
  cuda::silu_mul(gate_up.ptr<float>(), T, I, out.ptr<float>(), nullptr, stream_);
  after_launch("silu_mul");
}

void CudaBackend::moe_route(const Tensor& logits, const Tensor& bias, const MoEParams& p, Tensor& ids,
                            Tensor& weights) {
  int64_t T = logits.dim(0);
  int E = int(logits.dim(1)), G = std::max(1, p.n_group);
  MIMO_CHECK(p.top_k >= 1 && p.top_k <= E && E % G == 0 && p.topk_group >= 1 && p.topk_group <= G &&
                 p.top_k <= p.topk_group * (E / G),
             "MoE routing: top_k {} of {} experts in {} groups (keeping {}) is not possible", p.top_k, E, G,
             p.topk_group);
  MIMO_ASSERT(ids.numel() == T * p.top_k && weights.numel() == T * p.top_k && bias.numel() == E);
  cuda::moe_route(logits.ptr<float>(), bias.ptr<float>(), T, E, p.top_k, G, p.topk_group, p.norm_topk_prob,
                  p.routed_scaling_factor, ids.ptr<int32_t>(), weights.ptr<float>(), stream_);
  after_launch("moe_route");
}

void CudaBackend::moe_experts(const Tensor& x, const Tensor& ids, const Tensor& weights, const Tensor& gate_up,
                              const Tensor& down, int expert_begin, Tensor& out) {
  cuda::MoEArgs a;
  a.T = x.dim(0);
  a.H = x.dim(1);
  a.K = int(ids.dim(1));
  a.E = int(gate_up.dim(0));
  a.I = down.dim(2);
  MIMO_ASSERT(gate_up.dim(1) == 2 * a.I && gate_up.dim(2) == a.H && down.dim(1) == a.H &&
              gate_up.dtype() == down.dtype() && out.numel() == a.T * a.H);
  if (a.T == 0) return;
  a.x = x.ptr<float>();
  a.ids = ids.ptr<int32_t>();
  a.weights = weights.ptr<float>();
  a.gate_up = gate_up.data();
  a.down = down.data();
  a.bf16 = is_bf16(gate_up);
  if (gate_up.dtype() == DType::F8E4M3) {
    MIMO_ASSERT(gate_up.scales() && down.scales() && gate_up.scale_block() == down.scale_block(),
                "FP8 experts need block scales of one block size");
    a.fp8 = true;
    a.gate_up_scales = gate_up.scales()->ptr<float>();
    a.down_scales = down.scales()->ptr<float>();
    a.block = gate_up.scale_block();
  }
  a.expert_begin = expert_begin;
  a.out = out.ptr<float>();
  void* s = scratch(cuda::moe_scratch_bytes(a));
  cuda::moe_experts(a, s, stream_);
  after_launch("moe_experts");
}

void CudaBackend::gather_rows(const Tensor& x, const Tensor& rows, Tensor& out) {
  int64_t R = rows.numel(), n = x.dim(0), C = n ? x.numel() / n : 0;
  MIMO_ASSERT(out.numel() == R * C && out.dtype() == x.dtype());
  cuda::gather_rows(x.data(), n, C * int64_t(dtype_size(x.dtype())), rows.ptr<int32_t>(), R, out.data(), stream_);
  after_launch("gather_rows");
}

void CudaBackend::argmax(const Tensor& x, Tensor& out) {
  int64_t V = x.dim(-1), R = x.numel() / V;
  MIMO_ASSERT(out.numel() == R && out.dtype() == DType::I32 && x.dtype() == DType::F32);
  cuda::argmax(x.ptr<float>(), R, V, out.ptr<int32_t>(), stream_);
  after_launch("argmax");
}

void CudaBackend::sample(const Tensor& logits, const Tensor& params, const Tensor& drafts, const Tensor& u,
                         Tensor& out) {
  const int64_t V = logits.dim(-1), R = logits.numel() / V;
  MIMO_ASSERT(logits.dtype() == DType::F32 && params.numel() == 4 * R && drafts.numel() == R && u.numel() == 2 * R &&
              out.numel() == R && out.dtype() == DType::I32);
  cuda::sample(logits.ptr<float>(), R, V, params.ptr<float>(), drafts.ptr<int32_t>(), u.ptr<float>(),
               out.ptr<int32_t>(), stream_);
  after_launch("sample");
}

void CudaBackend::convert(const Tensor& src, Tensor& dst) {
  int64_t n = src.numel();
  MIMO_ASSERT(dst.numel() == n);
  if (src.dtype() == dst.dtype()) {
    CUDA_OK(cudaMemcpyAsync(dst.data(), src.data(), src.nbytes(), cudaMemcpyDeviceToDevice, stream_));
    return;
  }
  if (src.dtype() == DType::F32 && dst.dtype() == DType::BF16)
    cuda::f32_to_bf16(src.ptr<float>(), n, dst.ptr<uint16_t>(), stream_);
  else if (src.dtype() == DType::BF16 && dst.dtype() == DType::F32)
    cuda::bf16_to_f32(src.ptr<uint16_t>(), n, dst.ptr<float>(), stream_);
  else
    MIMO_ASSERT(false, "convert {} -> {}", dtype_name(src.dtype()), dtype_name(dst.dtype()));
  after_launch("convert");
}

namespace {

struct CudaGraph final : OpGraph {
  cudaGraphExec_t exec = nullptr;
  ~CudaGraph() override {
    if (exec) cudaGraphExecDestroy(exec);
  }
};

}  // namespace

void CudaBackend::begin_capture() {
  MIMO_ASSERT(!capturing_, "nested graph capture");
  CUDA_OK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
  capturing_ = true;
  captured_ = true;
  t_capturing = true;
}

std::unique_ptr<OpGraph> CudaBackend::end_capture() {
  MIMO_ASSERT(capturing_, "end_capture without begin_capture");
  // The stream leaves capture mode whatever happens; a failure here throws
  // like any failure inside the capture (t_capturing is still set), and
  // abort_capture() then only clears the flag.
  cudaGraph_t graph = nullptr;
  cudaError_t e = cudaStreamEndCapture(stream_, &graph);
  capturing_ = false;
  auto g = std::make_unique<CudaGraph>();
  if (e == cudaSuccess) {
    e = cudaGraphInstantiate(&g->exec, graph, 0);
    cudaGraphDestroy(graph);
  }
  if (e != cudaSuccess) {
    cudaGetLastError();
    cuda_failed("ending the graph capture", e);
  }
  t_capturing = false;
  return g;
}

void CudaBackend::abort_capture() {
  t_capturing = false;
  if (!capturing_) return;  // end_capture already left capture mode, then failed
  capturing_ = false;
  // The capture may already be invalidated; whatever it holds is dropped.
  cudaGraph_t graph = nullptr;
  cudaStreamEndCapture(stream_, &graph);
  if (graph) cudaGraphDestroy(graph);
  cudaGetLastError();
}

void CudaBackend::replay(OpGraph& graph) {
  MIMO_ASSERT(!capturing_, "replay inside a graph capture");
  auto* g = dynamic_cast<CudaGraph*>(&graph);
  MIMO_ASSERT(g && g->exec, "replay of a graph this backend did not capture");
  CUDA_OK(cudaGraphLaunch(g->exec, stream_));
  after_launch("graph replay");
}

}  // namespace mimo
