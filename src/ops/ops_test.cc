// CPU ops against naive double-precision references on random inputs of
// many shapes (odd sizes exercise the SIMD tails).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include <cmath>
#include <random>

#include "core/thread_pool.h"
#include "ops/backend.h"
#include "ops/cpu/kernels.h"
#include "ops/ops_test_util.h"

namespace mimo {
namespace {

using test::as;
using test::at;
using test::randn;

TEST(Ops, LinearMatchesReferenceOnManyShapes) {
  auto be = make_cpu_backend();
  std::mt19937 g(1);
  for (int64_t M : {1, 2, 3, 4, 7, 33})
    for (int64_t N : {1, 5, 8, 31})
      for (int64_t K : {1, 7, 8, 16, 37, 130})
        for (bool bf : {false, true}) {
          Tensor x = randn({M, K}, g), w = randn({N, K}, g);
          if (bf) w = as(w, DType::BF16);
          Tensor out = be->alloc({M, N}, DType::F32);
          be->linear(x, w, out);
          for (int64_t m = 0; m < M; m++)
            for (int64_t n = 0; n < N; n++) {
              double r = 0;
              for (int64_t k = 0; k < K; k++) r += double(x.ptr<float>()[m * K + k]) * at(w, n * K + k);
              ASSERT_NEAR(out.ptr<float>()[m * N + n], r, 1e-4 * (1 + std::sqrt(double(K))))
                  << M << "x" << N << "x" << K << " bf16=" << bf;
            }
        }
}

// Batch invariance: the engine promises that a request's outputs do not
// depend on what else is in the batch, so every row of a linear must be
// bitwise identical whatever M is and wherever the row sits.
TEST(Ops, LinearIsBatchInvariant) {
  auto be = make_cpu_backend();
  std::mt19937 g(5);
  for (bool bf : {false, true})
    for (int64_t K : {64, 130, 1024}) {
      const int64_t N = 72;
      Tensor w = randn({N, K}, g);
      if (bf) w = as(w, DType::BF16);
      Tensor x = randn({67, K}, g);
      Tensor all = be->alloc({67, N}, DType::F32);
      be->linear(x, w, all);
      for (int64_t M : {1, 2, 5, 16}) {
        for (int64_t r0 : {int64_t(0), int64_t(67 - M)}) {
          Tensor part = be->alloc({M, N}, DType::F32);
          be->linear(x.slice_rows(r0, r0 + M), w, part);
          for (int64_t i = 0; i < M * N; i++)
            ASSERT_EQ(part.ptr<float>()[i], all.ptr<float>()[r0 * N + i]) << "M=" << M << " K=" << K << " bf16=" << bf;
        }
      }
    }
}

TEST(Ops, PortableAndSimdKernelsAgree) {
  if (!cpu::cpu_features().avx2_fma) GTEST_SKIP() << "this CPU has no AVX2+FMA; only the portable kernel runs";
  std::mt19937 g(2);
  Tensor x = randn({5, 77}, g), w = randn({9, 77}, g);
  std::vector<float> a(45), b(45);
  cpu::avx2::linear_f32(x.ptr<float>(), 77, w.ptr<float>(), 77, a.data(), 9, 5, 0, 9, 77);
  for (int m = 0; m < 5; m++)
    for (int n = 0; n < 9; n++) {
      float s = 0;
      for (int k = 0; k < 77; k++) s += x.ptr<float>()[m * 77 + k] * w.ptr<float>()[n * 77 + k];
      b[size_t(m * 9 + n)] = s;
    }
  for (size_t i = 0; i < a.size(); i++) EXPECT_NEAR(a[i], b[i], 1e-4);
}

// Naive attention over a contiguous per-sequence cache, in double.
void naive_attention(const Tensor& q, const std::vector<std::vector<float>>& K, const std::vector<std::vector<float>>& V,
                     int nkv, int D, int Dv, int pos, int window, const float* sinks, float scale, float* out) {
  int H = int(q.dim(1)), G = H / nkv;
  for (int h = 0; h < H; h++) {
    int kh = h / G;
    std::vector<double> s;
    int lo = window > 0 ? std::max(0, pos - window + 1) : 0;
    for (int j = lo; j <= pos; j++) {
      double d = 0;
      for (int i = 0; i < D; i++) d += double(q.ptr<float>()[h * D + i]) * K[size_t(j)][size_t(kh * D + i)];
      s.push_back(d * scale);
    }
    double m = -1e300;
    for (double x : s) m = std::max(m, x);
    if (sinks) m = std::max(m, double(sinks[h]));
    double l = sinks ? std::exp(sinks[h] - m) : 0;
    for (double& x : s) l += (x = std::exp(x - m));
    for (int d = 0; d < Dv; d++) {
      double acc = 0;
      for (size_t j = 0; j < s.size(); j++) acc += s[j] * V[size_t(lo) + j][size_t(kh * Dv + d)];
      out[h * Dv + d] = float(acc / l);
    }
  }
}

TEST(Ops, AttentionWindowsSinksGqaAndScatteredSlots) {
  auto be = make_cpu_backend();
  std::mt19937 g(3);
  const int H = 8, nkv = 2, D = 24, Dv = 16, L = 40, slots = 64;
  for (int window : {0, 1, 5})
    for (bool with_sink : {false, true})
      for (DType kvdt : {DType::F32, DType::BF16}) {
        // One sequence; its positions live at scattered slots (paged layout).
        std::vector<int32_t> table(L);
        for (int j = 0; j < L; j++) table[size_t(j)] = (j * 37 + 5) % slots;
        Tensor kc = be->alloc({nkv, slots, D}, kvdt), vc = be->alloc({nkv, slots, Dv}, kvdt);
        std::vector<std::vector<float>> K(L), V(L);
        Tensor kall = randn({L, nkv, D}, g), vall = randn({L, nkv, Dv}, g);
        AttnMeta meta;
        std::vector<int32_t> pos(L), qs = {0, L}, kvl = {L}, ts = {0};
        for (int j = 0; j < L; j++) pos[size_t(j)] = j;
        meta.positions = Tensor::wrap({L}, DType::I32, pos.data());
        meta.q_start = Tensor::wrap({2}, DType::I32, qs.data());
        meta.kv_len = Tensor::wrap({1}, DType::I32, kvl.data());
        meta.table_start = Tensor::wrap({1}, DType::I32, ts.data());
        meta.table = Tensor::wrap({L}, DType::I32, table.data());
        meta.out_slots = Tensor::wrap({L}, DType::I32, table.data());
        meta.num_seqs = 1;
        const float vscale = 0.5f;
        be->store_kv(kall, vall, vscale, meta, kc, vc);
        for (int j = 0; j < L; j++) {
          for (int i = 0; i < nkv * D; i++) {
            float v = kall.ptr<float>()[j * nkv * D + i];
            K[size_t(j)].push_back(kvdt == DType::BF16 ? bf16_to_f32(f32_to_bf16(v)) : v);
          }
          for (int i = 0; i < nkv * Dv; i++) {
            float v = vall.ptr<float>()[j * nkv * Dv + i] * vscale;
            V[size_t(j)].push_back(kvdt == DType::BF16 ? bf16_to_f32(f32_to_bf16(v)) : v);
          }
        }
        Tensor q = randn({L, H, D}, g), sinks = randn({H}, g), out = be->alloc({L, H, Dv}, DType::F32);
        AttnParams p{window, 0.3f};
        be->attention(q, kc, vc, with_sink ? sinks : Tensor(), meta, p, out);
        std::vector<float> ref(size_t(H * Dv));
        for (int r = 0; r < L; r++) {
          naive_attention(q.slice_rows(r, r + 1).view({1, H, D}), K, V, nkv, D, Dv, r, window,
                          with_sink ? sinks.ptr<float>() : nullptr, 0.3f, ref.data());
          for (int i = 0; i < H * Dv; i++)
            ASSERT_NEAR(out.ptr<float>()[r * H * Dv + i], ref[size_t(i)], 1e-4)
                << "window " << window << " sink " << with_sink << " row " << r;
        }
      }
}

TEST(Ops, MoeRouteGroupLimitedTopK) {
  auto be = make_cpu_backend();
  // 8 experts in 4 groups of 2; biased scores make group 3 and 1 best.
  std::vector<float> logits = {-2.0f, -1.5f, 2.0f, 2.0f, -1.0f, -1.0f, 3.0f, -5.0f};
  std::vector<float> bias = {0, 0, 0, 0, 0, 0, 0, 0};
  Tensor l = Tensor::wrap({1, 8}, DType::F32, logits.data()), b = Tensor::wrap({8}, DType::F32, bias.data());
  Tensor ids = be->alloc({1, 3}, DType::I32), w = be->alloc({1, 3}, DType::F32);
  MoEParams p{3, 4, 2, true, 2.0f};
  be->moe_route(l, b, p, ids, w);
  // Group sums: g0 = s(-2)+s(-1.5), g1 = 2*s(2), g2 = 2*s(-1), g3 = s(3)+s(-5). Keep g1, g3 -> experts 2,3,6,7.
  std::vector<int> got = {ids.ptr<int32_t>()[0], ids.ptr<int32_t>()[1], ids.ptr<int32_t>()[2]};
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, (std::vector<int>{2, 3, 6}));
  auto sig = [](float x) { return 1.0f / (1.0f + std::exp(-x)); };
  float sum = sig(2) + sig(2) + sig(3);
  for (int k = 0; k < 3; k++) {
    int e = ids.ptr<int32_t>()[k];
    EXPECT_NEAR(w.ptr<float>()[k], sig(logits[size_t(e)]) / sum * 2.0f, 1e-6);
  }
}

TEST(ThreadPool, ParallelForCoversEveryIndexOnce) {
  ThreadPool pool(3);
  for (int64_t n : {0, 1, 2, 3, 10, 1000}) {
    std::vector<int> hits(size_t(n), 0);
    pool.parallel_for(n, 1, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; i++) hits[size_t(i)]++;
    });
    for (int h : hits) EXPECT_EQ(h, 1);
  }
  std::atomic<int> calls{0};
  for (int i = 0; i < 2000; i++) pool.run([&](int, int) { calls++; });
  EXPECT_EQ(calls.load(), 6000);
}

// Back-to-back jobs of different sizes: every chunk of every job runs once,
// with an index the job has. A worker late from a job could once claim a
// chunk past its end when the next job was larger and run the next job's fn
// with it, counting one done too many: run_chunks then spun forever (seen in
// EngineTest during ctest; within seconds here). A hang is
// reported and ends the process.
TEST(ThreadPool, JobsOfChangingSizeNeverLeakChunks) {
  ThreadPool pool(3);
  std::atomic<bool> finished{false};
  std::thread watchdog([&] {
    for (int i = 0; i < 1200 && !finished; i++) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (!finished) {
      std::fprintf(stderr, "ThreadPool.JobsOfChangingSizeNeverLeakChunks: run_chunks hung\n");
      std::_Exit(1);
    }
  });
  std::vector<std::atomic<int>> hits(256);
  int64_t wrong = 0;
  for (int j = 0; j < 400000; j++) {  // the old race hung about every other 100000 jobs on 2 cores
    const int64_t n = j % 2 ? 2 : 3 + j % 200;
    for (int64_t i = 0; i < n; i++) hits[size_t(i)] = 0;
    std::atomic<int> outside{0};
    pool.run_chunks(n, [&](int64_t c) {
      if (c < 0 || c >= n) outside++;
      else hits[size_t(c)]++;
    });
    for (int64_t i = 0; i < n; i++) wrong += hits[size_t(i)] != 1;
    wrong += outside;
  }
  finished = true;
  watchdog.join();
  EXPECT_EQ(wrong, 0);
}

TEST(DType, Conversions) {
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(1.5f)), 1.5f);
  EXPECT_EQ(f32_to_bf16(1.0f + 1.0f / 256), f32_to_bf16(1.0f));  // ties to even
  for (float f : {0.0f, 1.0f, -2.5f, 65504.0f, 6.1035156e-05f, 5.9604645e-08f})
    EXPECT_EQ(f16_to_f32(f32_to_f16(f)), f) << f;
}

}  // namespace
}  // namespace mimo
