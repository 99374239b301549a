// The AMX path (linear_amx.cc): bf16 weights in AMX tiles against fp32 x
// split into bf16 hi + lo. Its sums are not the AVX2 order, so these tests
// compare with an fp64 product at a tolerance, and check the property the
// engine relies on bit for bit: a row's result does not depend on M or on
// where the row sits. Skipped on CPUs (or kernels) without AMX.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "core/dtype.h"
#include "core/tensor.h"
#include "ops/backend.h"
#include "ops/cpu/kernels.h"
#include "ops/ops_test_util.h"

namespace mimo {
namespace {

using test::randn;
Tensor bf16(const Tensor& t) { return test::as(t, DType::BF16); }

class Amx : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!cpu::cpu_features().amx) GTEST_SKIP() << "no AMX-BF16 on this CPU (or Linux did not grant its state)";
  }
};

// x . w within 2^-16 of the sum of |x w| (x carried to ~2^-17 by hi + lo,
// products exact, fp32 sums), for M across the 16-row blocks and the
// 256-row chunks, N across the 32-row pairs, K from one tile to many.
TEST_F(Amx, LinearMatchesTheFp64Product) {
  auto be = make_cpu_backend();
  std::mt19937 g(71);
  auto check = [&](int64_t M, int64_t N, int64_t K) {
    Tensor x = randn({M, K}, g), w = bf16(randn({N, K}, g));
    Tensor tw = be->prepare_weight(w);
    ASSERT_EQ(tw.layout(), Tensor::Layout::AmxTiles) << N << "x" << K;
    Tensor out = be->alloc({M, N}, DType::F32);
    be->linear(x, tw, out);
    for (int64_t m = 0; m < M; m++)
      for (int64_t n = 0; n < N; n++) {
        double r = 0, mag = 0;
        for (int64_t k = 0; k < K; k++) {
          double p = double(x.ptr<float>()[m * K + k]) * bf16_to_f32(w.ptr<uint16_t>()[n * K + k]);
          r += p;
          mag += std::fabs(p);
        }
        ASSERT_NEAR(out.ptr<float>()[m * N + n], r, mag * 1.5e-5 + 1e-6) << M << "x" << N << "x" << K << " at " << m
                                                                        << "," << n;
      }
  };
  for (int64_t M : {1, 2, 15, 16, 17, 31, 33, 48}) check(M, 96, 64);
  for (int64_t N : {32, 64, 160}) check(5, N, 32);
  for (int64_t K : {32, 96, 1024}) check(20, 64, K);
  check(300, 64, 128);  // two chunks of rows, the second partial
  check(3, 2048, 512);  // several chunks of weights per thread
}

// Row m of a product is the same bits whatever M is: alone, in a batch,
// past the first chunk of 256 rows.
TEST_F(Amx, RowsAreBatchInvariant) {
  auto be = make_cpu_backend();
  std::mt19937 g(72);
  const int64_t N = 96, K = 256, M = 300;
  Tensor x = randn({M, K}, g), tw = be->prepare_weight(bf16(randn({N, K}, g)));
  Tensor all = be->alloc({M, N}, DType::F32);
  be->linear(x, tw, all);
  for (int64_t m : {int64_t(0), int64_t(7), int64_t(16), int64_t(255), int64_t(299)})
    for (int64_t rows : {1, 4, 17}) {
      const int64_t r0 = std::min(m, M - rows);
      Tensor part = x.slice_rows(r0, r0 + rows), out = be->alloc({rows, N}, DType::F32);
      be->linear(part, tw, out);
      ASSERT_EQ(std::memcmp(out.ptr<float>(), all.ptr<float>() + r0 * N, size_t(rows * N) * 4), 0)
          << "rows " << r0 << ".." << r0 + rows;
    }
}

// Experts on AMX weights: close to the row-major product (each product
// within ~4e-6 of its |x w| sum, carried through SwiGLU and the down
// product: up to ~2e-4 of the output here), and a token's output the same
// bits alone as in a batch of 200 (60+ rows per expert).
TEST_F(Amx, MoeExpertsMatchAndAreBatchInvariant) {
  auto be = make_cpu_backend();
  std::mt19937 g(73);
  const int64_t H = 64, I = 32, K = 3, T = 200;
  const int E = 6;
  Tensor x = randn({T, H}, g), gu = bf16(randn({E, 2 * I, H}, g, 0.3f)), dn = bf16(randn({E, H, I}, g, 0.3f));
  Tensor ids = Tensor::empty({T, K}, DType::I32), wts = randn({T, K}, g);
  for (int64_t t = 0; t < T; t++)
    for (int64_t k = 0; k < K; k++) ids.ptr<int32_t>()[t * K + k] = int32_t((t + k * 2) % E);
  Tensor tgu = be->prepare_weight(gu), tdn = be->prepare_weight(dn);
  ASSERT_EQ(tgu.layout(), Tensor::Layout::AmxTiles);
  ASSERT_EQ(tdn.layout(), Tensor::Layout::AmxTiles);
  Tensor amx = be->alloc({T, H}, DType::F32), ref = be->alloc({T, H}, DType::F32);
  be->moe_experts(x, ids, wts, tgu, tdn, 0, amx);
  be->moe_experts(x, ids, wts, gu, dn, 0, ref);  // row-major: the AVX-512 / AVX2 kernels
  for (int64_t i = 0; i < T * H; i++)
    ASSERT_NEAR(amx.ptr<float>()[i], ref.ptr<float>()[i], 5e-4 * (1 + std::fabs(ref.ptr<float>()[i]))) << i;
  for (int64_t t : {0, 77, 199}) {
    Tensor one = be->alloc({1, H}, DType::F32);
    be->moe_experts(x.slice_rows(t, t + 1), ids.slice_rows(t, t + 1), wts.slice_rows(t, t + 1), tgu, tdn, 0, one);
    ASSERT_EQ(std::memcmp(one.ptr<float>(), amx.ptr<float>() + t * H, size_t(H) * 4), 0) << "token " << t;
  }
}

// Only bf16 matrices with rows and depth in 32s go into AMX tiles, and only
// while the AMX path runs; the others keep the AVX-512 layouts.
TEST_F(Amx, TilesOnlyWhereTheyFit) {
  auto be = make_cpu_backend();
  std::mt19937 g(74);
  EXPECT_EQ(be->prepare_weight(bf16(randn({64, 64}, g))).layout(), Tensor::Layout::AmxTiles);
  EXPECT_EQ(be->prepare_weight(bf16(randn({3, 64, 96}, g))).layout(), Tensor::Layout::AmxTiles);
  EXPECT_EQ(be->prepare_weight(bf16(randn({48, 64}, g))).layout(), Tensor::Layout::RowTiles);  // rows not 32k
  EXPECT_EQ(be->prepare_weight(bf16(randn({64, 40}, g))).layout(), Tensor::Layout::RowTiles);  // depth not 32k
  EXPECT_EQ(be->prepare_weight(randn({64, 64}, g)).layout(), Tensor::Layout::RowTiles);        // fp32
  cpu::CpuFeatures f = cpu::cpu_features();
  f.amx = false;
  cpu::override_cpu_features(&f);
  EXPECT_EQ(be->prepare_weight(bf16(randn({64, 64}, g))).layout(), Tensor::Layout::RowTiles);
  cpu::override_cpu_features(nullptr);
  EXPECT_STREQ(cpu::cpu_isa_name(), "amx");
}

}  // namespace
}  // namespace mimo
