// FP8 E4M3 weights with per-row block scales on the CPU: every kernel (the
// dot-product tiles for few rows, the packed GEMM for many, the portable
// path, MoE experts) must give exactly the fp32 result with the dequantised
// matrix, since each forms the fp32 weight fp8 * scale with one rounding
// and then sums in the backend's one order.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "ops/backend.h"
#include "ops/cpu/cpu_paths_test.h"
#include "ops/cpu/kernels.h"

namespace mimo {
namespace {

struct Fp8Weights {
  Tensor q;    // F8E4M3 with scales attached
  Tensor f32;  // the same weights dequantised: lut[q] * s
};

// Random codes (every finite one, subnormals and -0 included) and scales
// spanning several orders of magnitude, in blocks of `block` columns.
Fp8Weights random_fp8(std::vector<int64_t> shape, int block, std::mt19937& g) {
  const int64_t K = shape.back(), rows = Tensor::empty(shape, DType::U8).numel() / K, kb = (K + block - 1) / block;
  std::vector<int64_t> sshape = shape;
  sshape.back() = kb;
  Tensor q = Tensor::empty(shape, DType::F8E4M3), s = Tensor::empty(sshape, DType::F32);
  Tensor f = Tensor::empty(shape, DType::F32);
  std::uniform_int_distribution<int> code(0, 255);
  std::uniform_real_distribution<float> expo(-12.0f, 2.0f);
  for (int64_t i = 0; i < rows * kb; i++) s.ptr<float>()[i] = std::exp2(expo(g)) * (i % 7 == 3 ? -1.0f : 1.0f);
  const float* lut = fp8e4m3_table();
  for (int64_t r = 0; r < rows; r++)
    for (int64_t k = 0; k < K; k++) {
      int c;
      do c = code(g); while ((c & 0x7f) == 0x7f);  // no NaN codes
      q.ptr<uint8_t>()[r * K + k] = uint8_t(c);
      f.ptr<float>()[r * K + k] = lut[c] * s.ptr<float>()[r * kb + k / block];
    }
  return {q.with_scales(s, block), f};
}

Tensor randn(std::vector<int64_t> shape, std::mt19937& g) {
  Tensor t = Tensor::empty(std::move(shape), DType::F32);
  std::normal_distribution<float> d(0, 1);
  for (int64_t i = 0; i < t.numel(); i++) t.ptr<float>()[i] = d(g);
  return t;
}

bool same_bits(const Tensor& a, const Tensor& b) { return std::memcmp(a.data(), b.data(), a.nbytes()) == 0; }


TEST_P(Paths, Fp8DequantRowMatchesTheTable) {
  std::mt19937 g(1);
  for (int64_t K : {8, 13, 128, 300}) {
    Fp8Weights w = random_fp8({5, K}, 64, g);
    cpu::Fp8Matrix m{w.q.ptr<uint8_t>(), K, w.q.scales()->ptr<float>(), w.q.scales()->dim(-1), 64};
    std::vector<float> row(static_cast<size_t>(K), 0.0f);
    for (int64_t n = 0; n < 5; n++) {
      cpu::dequant_fp8_row(m, n, K, row.data());
      ASSERT_EQ(std::memcmp(row.data(), w.f32.ptr<float>() + n * K, size_t(K) * 4), 0) << "K=" << K << " row " << n;
    }
  }
}

// Few rows (the dot-product tiles, contiguous or not), many rows (the packed
// GEMM, with depth blocking past K = 4096), K off the blocks and off 8.
TEST_P(Paths, Fp8LinearEqualsTheDequantisedProduct) {
  auto be = make_cpu_backend();
  std::mt19937 g(2);
  struct Shape { int64_t M, N, K; int block; };
  for (Shape s : {Shape{1, 37, 128, 128}, {2, 40, 1024, 128}, {3, 33, 200, 128}, {4, 19, 1031, 64}, {5, 24, 512, 128},
                  {7, 17, 64, 8}, {16, 50, 1024, 128}, {39, 21, 136, 16}, {40, 33, 1024, 128}, {64, 18, 4100, 128}}) {
    Fp8Weights w = random_fp8({s.N, s.K}, s.block, g);
    Tensor x = randn({s.M, s.K}, g), a = be->alloc({s.M, s.N}, DType::F32), b = be->alloc({s.M, s.N}, DType::F32);
    be->linear(x, w.q, a);
    be->linear(x, w.f32, b);
    ASSERT_TRUE(same_bits(a, b)) << s.M << "x" << s.N << "x" << s.K << " block " << s.block;
    // A row slice (its scales slice alike) is the same rows of the product.
    Tensor part = be->alloc({s.M, s.N - 5}, DType::F32), ref = be->alloc({s.M, s.N - 5}, DType::F32);
    be->linear(x, w.q.slice_rows(5, s.N), part);
    be->linear(x, w.f32.slice_rows(5, s.N), ref);
    ASSERT_TRUE(same_bits(part, ref)) << "row slice of " << s.M << "x" << s.N << "x" << s.K;
  }
}

// Routed experts with FP8 gate_up and down: equal to the fp32 experts, for a
// decode-sized batch (dot-product kernels) and a prefill-sized one (GEMM).
TEST_P(Paths, Fp8MoeExpertsEqualTheDequantisedExperts) {
  auto be = make_cpu_backend();
  std::mt19937 g(3);
  const int E = 6, K = 2;
  const int64_t H = 256, I = 128;
  Fp8Weights gu = random_fp8({E, 2 * I, H}, 128, g), dn = random_fp8({E, H, I}, 128, g);
  for (int64_t T : {3, 90}) {
    Tensor x = randn({T, H}, g), ids = Tensor::empty({T, K}, DType::I32), wts = Tensor::empty({T, K}, DType::F32);
    for (int64_t t = 0; t < T; t++)
      for (int k = 0; k < K; k++) {
        ids.ptr<int32_t>()[t * K + k] = int32_t((t * 5 + k * 3 + (t > 40 ? 1 : 0)) % E);
        wts.ptr<float>()[t * K + k] = 0.25f + 0.5f * float(k);
      }
    Tensor a = be->alloc({T, H}, DType::F32), b = be->alloc({T, H}, DType::F32);
    be->moe_experts(x, ids, wts, gu.q, dn.q, 0, a);
    be->moe_experts(x, ids, wts, gu.f32, dn.f32, 0, b);
    ASSERT_TRUE(same_bits(a, b)) << "T=" << T;
  }
}

}  // namespace
}  // namespace mimo
