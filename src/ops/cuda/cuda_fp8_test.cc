// FP8 E4M3 weights with per-row block scales on the GPU against the CPU
// backend (which forms each weight as fp8 * scale in fp32). The gemv-style
// kernels (up to 64 rows; experts up to 256 routed rows) sum those fp32
// weights with fp32 activations, so they match the CPU to summation-order
// rounding. The tensor-core paths stage fp8 * scale as bf16, so the experts
// must equal, bit for bit, the bf16 path run on the bf16-rounded weights
// (and dense products, cuBLAS per slab, equal it to rounding).
#include <cstring>
#include <tuple>

#include "ops/cuda/cuda_test_util.h"

namespace mimo::cudatest {
namespace {

class CudaFp8 : public CudaParity {};

TEST_F(CudaFp8, LinearGemvAndTensorCores) {
  Rng r(21);
  struct Shape { int64_t M, N, K; int block; };
  for (Shape s : {Shape{1, 129, 256, 128}, {4, 1536, 4096, 128}, {13, 64, 200, 64}, {64, 7, 4096, 128},
                  {1, 33, 7, 8}, {65, 129, 256, 128}, {130, 12288, 4096, 128}}) {
    Tensor x = rand_host({s.M, s.K}, r), w = rand_fp8_host({s.N, s.K}, r, 1.0f / std::sqrt(float(s.K)), s.block);
    Tensor got = G().alloc({s.M, s.N}, DType::F32);
    G().linear(up(x), up(w), got);
    const std::string what = "fp8 linear " + std::to_string(s.M) + "x" + std::to_string(s.N) + "x" + std::to_string(s.K);
    if (s.M <= 64) {
      Tensor want = Tensor::empty({s.M, s.N}, DType::F32);
      C().linear(x, w, want);
      expect_close(down(got), want, 1e-5 * std::sqrt(double(s.K)), 1e-4, what);
    } else {
      // Tensor cores over slabs of bf16 weight rows (12288 rows at K 4096:
      // three slabs): one bf16 product on the rounded weights, up to the
      // order cuBLAS picks for each shape.
      Tensor ref = G().alloc({s.M, s.N}, DType::F32);
      G().linear(up(x), up(fp8_as_bf16(w)), ref);
      expect_close(down(got), down(ref), 1e-5 * std::sqrt(double(s.K)), 1e-5, what + " ~ bf16 product on the rounded weights");
    }
  }
}

TEST_F(CudaFp8, MoeExpertsDecodeAndPrefill) {
  Rng r(22);
  for (auto [T, H, I] : {std::tuple<int64_t, int64_t, int64_t>{1, 4096, 256}, {24, 4096, 256}, {200, 512, 128}}) {
    const int E = 32, K = 8;
    Tensor x = rand_host({T, H}, r);
    Tensor gu = rand_fp8_host({E, 2 * I, H}, r, 1.0f / std::sqrt(float(H)), 128);
    Tensor dn = rand_fp8_host({E, H, I}, r, 1.0f / std::sqrt(float(I)), 128);
    std::vector<int32_t> ids;
    Tensor w = Tensor::empty({T, K}, DType::F32);
    for (int64_t t = 0; t < T; t++)
      for (int k = 0; k < K; k++) {
        ids.push_back(int32_t((t * 7 + k * 5) % E));
        w.ptr<float>()[t * K + k] = 0.1f + 0.1f * float(k);
      }
    Tensor idt = i32_host(ids).view({T, K});
    Tensor got = poisoned({T, H}, DType::F32);
    G().moe_experts(up(x), up(idt), up(w), up(gu), up(dn), 0, got);
    const std::string what = "fp8 moe_experts T=" + std::to_string(T);
    if (T * K <= 256) {
      Tensor want = Tensor::empty({T, H}, DType::F32);
      C().moe_experts(x, idt, w, gu, dn, 0, want);
      expect_close(down(got), want, 1e-4, 1e-4, what);
    } else {
      Tensor ref = poisoned({T, H}, DType::F32);
      G().moe_experts(up(x), up(idt), up(w), up(fp8_as_bf16(gu)), up(fp8_as_bf16(dn)), 0, ref);
      expect_bits_equal(down(got), down(ref), what + " = bf16 experts on the rounded weights");
    }
  }
}

}  // namespace
}  // namespace mimo::cudatest
