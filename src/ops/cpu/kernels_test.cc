// CPU kernels against naive double-precision references, on both the AVX2
// and the portable path (forced through override_cpu_features), plus the
// batch-invariance promise: a row's result is bit-identical whatever else
// is computed with it (other rows, other sequences, prefill or decode,
// chunked or not).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>

#include "core/error.h"
#include "core/thread_pool.h"
#include "ops/backend.h"
#include "ops/cpu/cpu_paths_test.h"
#include "ops/cpu/kernels.h"
#include "ops/ops_test_util.h"

namespace mimo {
namespace {

using test::as;
using test::at;
using test::randn;
using test::widened;
bool same_bits(const float* a, const float* b, int64_t n) { return std::memcmp(a, b, size_t(n) * sizeof(float)) == 0; }

// Each Paths test body runs on the AVX-512, the AVX2 and the portable path.
INSTANTIATE_TEST_SUITE_P(Cpu, Paths, ::testing::Values(CpuPath::Avx512, CpuPath::Avx2, CpuPath::Portable),
                         [](const auto& i) { return cpu_path_name(i.param); });

void expect_linear_matches(Backend& be, int64_t M, int64_t N, int64_t K, DType wdt, std::mt19937& g) {
  Tensor x = randn({M, K}, g), w = as(randn({N, K}, g), wdt), out = be.alloc({M, N}, DType::F32);
  be.linear(x, w, out);
  for (int64_t m = 0; m < M; m++)
    for (int64_t n = 0; n < N; n++) {
      double r = 0, mag = 0;
      for (int64_t k = 0; k < K; k++) {
        double p = double(x.ptr<float>()[m * K + k]) * at(w, n * K + k);
        r += p;
        mag += std::fabs(p);
      }
      ASSERT_NEAR(out.ptr<float>()[m * N + n], r, 1e-6 * mag + 1e-6)
          << M << "x" << N << "x" << K << " " << dtype_name(wdt) << " at " << m << "," << n;
    }
}

TEST_P(Paths, LinearAllSmallAndGemmShapes) {
  auto be = make_cpu_backend();
  std::mt19937 g(11);
  for (DType dt : {DType::F32, DType::BF16}) {
    for (int64_t M = 1; M <= 70; M += (M < 12 ? 1 : 7)) expect_linear_matches(*be, M, 37, 45, dt, g);
    for (int64_t K : {1, 5, 8, 9, 63, 129, 1031}) expect_linear_matches(*be, 47, 33, K, dt, g);
    for (int64_t N : {1, 15, 16, 17, 130}) expect_linear_matches(*be, 41, N, 77, dt, g);
  }
  // Deep enough for the GEMM's depth blocking (K > 4096).
  expect_linear_matches(*be, 45, 18, 4100, DType::BF16, g);
}

// Every row of a product is bit-identical whatever M is and wherever the
// row sits: the small-M and the GEMM kernel sum in one order.
// One row against contiguous weights takes the linear-prefetch GEMV
// (rows of up to 2 KB), strided weights the row-by-row one: bit-identical
// results, over ranges that start and end off the 8-row tiles.
TEST(Kernels, DecodeGemvPathsAgree) {
  if (!cpu::cpu_features().avx2_fma) GTEST_SKIP() << "this CPU has no AVX2+FMA";
  std::mt19937 g(21);
  for (int64_t K : {8, 100, 512, 1024, 1031, 2048}) {
    const int64_t N = 77, ld = K + 8;
    Tensor wc = as(randn({N, K}, g), DType::BF16), x = randn({4, K}, g);
    std::vector<uint16_t> ws(size_t(N * ld), 0);
    for (int64_t n = 0; n < N; n++)
      std::memcpy(ws.data() + n * ld, wc.ptr<uint16_t>() + n * K, size_t(K) * sizeof(uint16_t));
    // Contiguous rows take the linear-prefetch tiles (K <= 1024), strided
    // ones tile(): the same sums, bit for bit, for 1 to 4 rows of x.
    for (int64_t M = 1; M <= 4; M++)
      for (auto [n0, n1] : {std::pair<int64_t, int64_t>{0, N}, {3, 61}, {8, 16}, {70, 77}}) {
        std::vector<float> a(size_t(M * N), 0.0f), b(size_t(M * N), 0.0f);
        cpu::avx2::linear_bf16(x.ptr<float>(), K, wc.ptr<uint16_t>(), K, a.data(), N, M, n0, n1, K);
        cpu::avx2::linear_bf16(x.ptr<float>(), K, ws.data(), ld, b.data(), N, M, n0, n1, K);
        ASSERT_TRUE(same_bits(a.data(), b.data(), M * N)) << "K=" << K << " M=" << M << " rows " << n0 << ".." << n1;
        for (int64_t m = 0; m < M; m++)
          for (int64_t n = n0; n < n1; n++) {
            double ref = 0;
            for (int64_t k = 0; k < K; k++) ref += double(x.ptr<float>()[m * K + k]) * at(wc, n * K + k);
            ASSERT_NEAR(a[size_t(m * N + n)], ref, 1e-4 * (1 + std::fabs(ref)) * std::sqrt(double(K)))
                << "K=" << K << " M=" << M << " n=" << n;
          }
      }
  }
}

// The AVX-512 dot-product kernels sum every output in the AVX2 kernels'
// order, so their results are the same bits: fp32, bf16 and FP8 weights,
// 1-40 rows of x (one group, several groups over column slabs), depths with
// and without a tail, contiguous and strided rows (the linear prefetch and
// the next-rows one), ranges that start and end off every tile width.
TEST(Kernels, Avx512LinearEqualsAvx2BitForBit) {
  if (!cpu::cpu_features().avx512) GTEST_SKIP() << "no AVX-512 (F, BW, DQ, VL) on this CPU";
  std::mt19937 g(31);
  std::uniform_int_distribution<int> byte(0, 255);
  for (int64_t K : {1, 5, 8, 9, 64, 100, 512, 1031, 2048}) {
    const int64_t N = 53, block = 16;
    for (int64_t ld : {K, K + 8}) {
      Tensor wf = randn({N, ld}, g), x = randn({40, K}, g);
      Tensor wb = as(wf, DType::BF16);
      std::vector<uint8_t> q(size_t(N * ld));
      for (auto& b : q) b = uint8_t(byte(g)) & 0xF7;  // no NaN codes (0x7f, 0xff)
      const int64_t nblk = (K + block - 1) / block;
      std::vector<float> sc(size_t(N * nblk));
      for (auto& v : sc) v = std::ldexp(1.0f + float(byte(g)) / 256.0f, byte(g) % 9 - 4);
      const cpu::Fp8Matrix w8{q.data(), ld, sc.data(), nblk, block};
      for (int64_t M : {1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 16, 17, 24, 40})
        for (auto [n0, n1] : {std::pair<int64_t, int64_t>{0, N}, {3, 50}, {1, 2}, {45, 53}}) {
          for (int kind = 0; kind < 3; kind++) {
            std::vector<float> a(size_t(M * N), 0.0f), b(size_t(M * N), 0.0f);
            if (kind == 0) {
              cpu::avx2::linear_f32(x.ptr<float>(), K, wf.ptr<float>(), ld, a.data(), N, M, n0, n1, K);
              cpu::avx512::linear_f32(x.ptr<float>(), K, wf.ptr<float>(), ld, b.data(), N, M, n0, n1, K);
            } else if (kind == 1) {
              cpu::avx2::linear_bf16(x.ptr<float>(), K, wb.ptr<uint16_t>(), ld, a.data(), N, M, n0, n1, K);
              cpu::avx512::linear_bf16(x.ptr<float>(), K, wb.ptr<uint16_t>(), ld, b.data(), N, M, n0, n1, K);
            } else {
              cpu::avx2::linear_fp8(x.ptr<float>(), K, w8, a.data(), N, M, n0, n1, K);
              cpu::avx512::linear_fp8(x.ptr<float>(), K, w8, b.data(), N, M, n0, n1, K);
            }
            ASSERT_TRUE(same_bits(a.data(), b.data(), M * N))
                << "kind " << kind << " K=" << K << " ld=" << ld << " M=" << M << " rows " << n0 << ".." << n1;
          }
        }
    }
  }
}

// The packed GEMM (M >= kGemmMinM on AVX2, kGemmMinMAvx512 on AVX-512) gives the same bits on the AVX-512 path
// as on the AVX2 one: panel counts odd and even, edge columns, depth tails
// and the depth blocking (K > 4096), fp32 / bf16 weights, through the
// backend (packing, work split and all).
TEST(Kernels, Avx512GemmEqualsAvx2BitForBit) {
  if (!cpu::cpu_features().avx512) GTEST_SKIP() << "no AVX-512 (F, BW, DQ, VL) on this CPU";
  auto be = make_cpu_backend();
  std::mt19937 g(32);
  struct Shape { int64_t M, N, K; };
  for (DType dt : {DType::F32, DType::BF16})
    for (Shape sh : {Shape{0, 16, 8}, {1, 17, 77}, {7, 48, 1031}, {20, 130, 512}, {0, 33, 4100}, {3, 5, 3}}) {
      sh.M += cpu::kGemmMinMAvx512;  // rows the AVX-512 path runs through its GEMM
      Tensor w = as(randn({sh.N, sh.K}, g), dt), x = randn({sh.M, sh.K}, g);
      Tensor a = be->alloc({sh.M, sh.N}, DType::F32), b = be->alloc({sh.M, sh.N}, DType::F32);
      use_cpu_path(CpuPath::Avx2);
      be->linear(x, w, a);
      use_cpu_path(CpuPath::Avx512);
      be->linear(x, w, b);
      cpu::override_cpu_features(nullptr);
      ASSERT_TRUE(same_bits(a.ptr<float>(), b.ptr<float>(), sh.M * sh.N))
          << dtype_name(dt) << " " << sh.M << "x" << sh.N << "x" << sh.K;
    }
}

// MIMOSERVE_CPU_ISA caps the path (never widens it); a bad value names itself.
TEST(Kernels, CpuIsaEnvironmentCapsThePath) {
  const cpu::CpuFeatures detected = cpu::cpu_features();
  setenv("MIMOSERVE_CPU_ISA", "avx9", 1);
  try {
    cpu::apply_cpu_isa_env();
    ADD_FAILURE() << "an unknown instruction set was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("MIMOSERVE_CPU_ISA=avx9"), std::string::npos) << e.what();
  }
  setenv("MIMOSERVE_CPU_ISA", "avx2", 1);
  cpu::apply_cpu_isa_env();
  EXPECT_FALSE(cpu::cpu_features().avx512);
  EXPECT_FALSE(cpu::cpu_features().amx);
  EXPECT_EQ(cpu::cpu_features().avx2_fma, detected.avx2_fma);
  setenv("MIMOSERVE_CPU_ISA", "portable", 1);
  cpu::apply_cpu_isa_env();
  EXPECT_FALSE(cpu::cpu_features().avx2_fma);
  EXPECT_STREQ(cpu::cpu_isa_name(), "portable");
  setenv("MIMOSERVE_CPU_ISA", "avx512", 1);
  cpu::apply_cpu_isa_env();
  EXPECT_EQ(cpu::cpu_features().avx512, detected.avx512);
  EXPECT_FALSE(cpu::cpu_features().amx);
  setenv("MIMOSERVE_CPU_ISA", "amx", 1);
  cpu::apply_cpu_isa_env();
  EXPECT_EQ(cpu::cpu_features().amx, detected.amx);
  EXPECT_STREQ(cpu::cpu_isa_name(), detected.amx ? "amx" : detected.avx512 ? "avx512" : "avx2+fma");
  unsetenv("MIMOSERVE_CPU_ISA");
  cpu::override_cpu_features(nullptr);
}

TEST(Kernels, LinearBatchInvarianceAcrossKernels) {
  auto be = make_cpu_backend();
  std::mt19937 g(12);
  for (DType dt : {DType::F32, DType::BF16})
    for (int64_t K : {3, 8, 100, 512, 1031, 4100}) {
      const int64_t N = 35, R = 83;
      Tensor w = as(randn({N, K}, g), dt), x = randn({R, K}, g);
      Tensor all = be->alloc({R, N}, DType::F32);
      be->linear(x, w, all);
      for (int64_t M : {1, 2, 3, 4, 5, 7, 8, 13, 39, 40, 41, 64, 79, 80}) {
        const int64_t r0 = (M * 7) % (R - M + 1);
        Tensor part = be->alloc({M, N}, DType::F32);
        be->linear(x.slice_rows(r0, r0 + M), w, part);
        ASSERT_TRUE(same_bits(part.ptr<float>(), all.ptr<float>() + r0 * N, M * N))
            << "M=" << M << " K=" << K << " " << dtype_name(dt);
      }
    }
}

// ---- attention ------------------------------------------------------------

struct Seq {
  int start = 0, n = 0;         // positions [start, start + n) are this step's rows
  std::vector<int32_t> slots;   // slot of every position 0 .. start + n - 1
};

// Attention of the rows of `seqs` (each sequence's rows contiguous), with
// keys/values already in the caches at the sequences' slots.
Tensor run_attention(Backend& be, const std::vector<Seq>& seqs, const Tensor& q_all, const std::vector<int64_t>& q_row,
                     const Tensor& kc, const Tensor& vc, const Tensor& sinks, int window, float scale) {
  const int64_t H = q_all.dim(1), D = q_all.dim(2), Dv = vc.dim(2);
  std::vector<int32_t> pos, qs = {0}, kvl, ts, table;
  for (auto& s : seqs) {
    for (int i = 0; i < s.n; i++) pos.push_back(s.start + i);
    qs.push_back(qs.back() + s.n);
    kvl.push_back(s.start + s.n);
    ts.push_back(int32_t(table.size()));
    table.insert(table.end(), s.slots.begin(), s.slots.begin() + s.start + s.n);
  }
  const int64_t T = int64_t(pos.size());
  Tensor q = Tensor::empty({T, H, D}, DType::F32);
  for (int64_t r = 0; r < T; r++)
    std::memcpy(q.ptr<float>() + r * H * D, q_all.ptr<float>() + q_row[size_t(r)] * H * D, size_t(H * D) * 4);
  AttnMeta m;
  m.positions = Tensor::wrap({T}, DType::I32, pos.data());
  m.q_start = Tensor::wrap({int64_t(qs.size())}, DType::I32, qs.data());
  m.kv_len = Tensor::wrap({int64_t(kvl.size())}, DType::I32, kvl.data());
  m.table_start = Tensor::wrap({int64_t(ts.size())}, DType::I32, ts.data());
  m.table = Tensor::wrap({int64_t(table.size())}, DType::I32, table.data());
  m.out_slots = m.table;  // unused by attention
  m.num_seqs = int(seqs.size());
  Tensor out = be.alloc({T, H, Dv}, DType::F32);
  be.attention(q, kc, vc, sinks, m, AttnParams{window, scale}, out);
  return out;
}

struct AttnCase {
  int H, nkv, D, Dv, L, window;
  bool sink;
  DType kv;
};

class AttentionPaths : public Paths {};
INSTANTIATE_TEST_SUITE_P(Cpu, AttentionPaths, ::testing::Values(CpuPath::Avx512, CpuPath::Avx2, CpuPath::Portable),
                         [](const auto& i) { return cpu_path_name(i.param); });

TEST_P(AttentionPaths, LongContextsWindowsGqaOddDims) {
  auto be = make_cpu_backend();
  std::mt19937 g(21);
  const std::vector<AttnCase> cases = {
      {8, 2, 24, 16, 150, 0, false, DType::BF16}, {8, 8, 36, 20, 200, 70, true, DType::F32},
      {16, 4, 128, 128, 140, 0, true, DType::BF16}, {4, 1, 13, 16, 97, 64, true, DType::F32},
      {6, 3, 40, 32, 130, 1, false, DType::BF16}, {16, 4, 128, 128, 140, 0, true, DType::F8E4M3},
      {8, 8, 36, 20, 200, 70, true, DType::F8E4M3}};
  for (const AttnCase& c : cases) {
    const int slots = c.L + 17;
    Tensor kf = randn({c.L, c.nkv, c.D}, g), vf = randn({c.L, c.nkv, c.Dv}, g);
    Tensor kc = be->alloc({c.nkv, slots, c.D}, c.kv), vc = be->alloc({c.nkv, slots, c.Dv}, c.kv);
    Seq s;
    s.start = 0;
    s.n = c.L;
    std::vector<int32_t> perm(static_cast<size_t>(slots));  // scattered, distinct slots (a paged layout)
    for (int j = 0; j < slots; j++) perm[size_t(j)] = j;
    std::shuffle(perm.begin(), perm.end(), g);
    s.slots.assign(perm.begin(), perm.begin() + c.L);
    Tensor kq = as(kf, c.kv), vq = as(vf, c.kv);  // cache rows in order of position
    const size_t es = dtype_size(c.kv);
    for (int j = 0; j < c.L; j++)  // caches are [nkv, slots, D]
      for (int h = 0; h < c.nkv; h++) {
        const size_t row = size_t(h) * size_t(slots) + size_t(s.slots[size_t(j)]);
        std::memcpy(static_cast<char*>(kc.data()) + row * c.D * es,
                    static_cast<char*>(kq.data()) + (size_t(j) * c.nkv + h) * c.D * es, size_t(c.D) * es);
        std::memcpy(static_cast<char*>(vc.data()) + row * c.Dv * es,
                    static_cast<char*>(vq.data()) + (size_t(j) * c.nkv + h) * c.Dv * es, size_t(c.Dv) * es);
      }
    Tensor q = randn({c.L, c.H, c.D}, g), sinks = randn({c.H}, g);
    std::vector<int64_t> rows(static_cast<size_t>(c.L));
    for (int i = 0; i < c.L; i++) rows[size_t(i)] = i;
    const float scale = 1.0f / std::sqrt(float(c.D));
    Tensor out = run_attention(*be, {s}, q, rows, kc, vc, c.sink ? sinks : Tensor(), c.window, scale);
    const int G = c.H / c.nkv;
    for (int r = 0; r < c.L; r += 3)
      for (int h = 0; h < c.H; h++) {
        const int kh = h / G, lo = c.window > 0 ? std::max(0, r - c.window + 1) : 0;
        std::vector<double> sc;
        double mx = c.sink ? sinks.ptr<float>()[h] : -1e300;
        for (int j = lo; j <= r; j++) {
          double d = 0;
          for (int i = 0; i < c.D; i++) d += double(q.ptr<float>()[(r * c.H + h) * c.D + i]) * at(kq, (j * c.nkv + kh) * c.D + i);
          sc.push_back(d * scale);
          mx = std::max(mx, sc.back());
        }
        double l = c.sink ? std::exp(sinks.ptr<float>()[h] - mx) : 0;
        for (double& x : sc) l += (x = std::exp(x - mx));
        for (int d = 0; d < c.Dv; d++) {
          double acc = 0;
          for (size_t j = 0; j < sc.size(); j++) acc += sc[j] * at(vq, ((lo + int(j)) * c.nkv + kh) * c.Dv + d);
          ASSERT_NEAR(out.ptr<float>()[(r * c.H + h) * c.Dv + d], acc / l, 2e-5)
              << "H" << c.H << " nkv" << c.nkv << " D" << c.D << " L" << c.L << " window " << c.window << " row " << r;
        }
      }
  }
}

// A row's attention output is bit-identical whether it is computed in one
// prefill, in chunks, one decode row at a time, or next to other sequences:
// on each path (on AVX-512 every call reads K and V straight from the cache;
// on AVX2 decode rows do and prefill chunks pack them). Shapes: 4, 2 and 6
// queries per kv head, a depth with a tail (D % 8), Dv of 16 and 48.
TEST_P(AttentionPaths, BatchInvariance) {
  auto be = make_cpu_backend();
  std::mt19937 g(22);
  struct Shape { int H, nkv, D, Dv; };
  for (Shape sh : {Shape{8, 2, 64, 32}, {8, 4, 36, 16}, {12, 2, 20, 48}})
  for (int window : {0, 50})
    for (DType dt : {DType::BF16, DType::F32, DType::F8E4M3}) {
      const int H = sh.H, nkv = sh.nkv, D = sh.D, Dv = sh.Dv, L = 180, slots = 2 * L;
      Tensor kc = as(randn({nkv, slots, D}, g), dt), vc = as(randn({nkv, slots, Dv}, g), dt);
      Tensor q = randn({2 * L, H, D}, g), sinks = randn({H}, g);
      Seq a, b;
      for (int j = 0; j < L; j++) a.slots.push_back(2 * j), b.slots.push_back(2 * j + 1);
      std::vector<int64_t> rows;
      for (int i = 0; i < L; i++) rows.push_back(i);
      a.n = L;
      Tensor whole = run_attention(*be, {a}, q, rows, kc, vc, sinks, window, 0.125f);
      const int64_t rw = int64_t(H) * Dv;
      // Chunks of 37 rows, each next to a decode row of another sequence.
      for (int s0 = 0; s0 < L; s0 += 37) {
        Seq c = a, o = b;
        c.start = s0, c.n = std::min(37, L - s0);
        o.start = 100, o.n = 1;
        std::vector<int64_t> rr = {L + 100};  // the other sequence's row comes first
        for (int i = 0; i < c.n; i++) rr.push_back(s0 + i);
        Tensor part = run_attention(*be, {o, c}, q, rr, kc, vc, sinks, window, 0.125f);
        ASSERT_TRUE(same_bits(part.ptr<float>() + rw, whole.ptr<float>() + s0 * rw, c.n * rw))
            << "chunk at " << s0 << " window " << window << " H" << H << " nkv" << nkv;
      }
      // Row by row (decode).
      for (int r = 0; r < L; r += 13) {
        Seq c = a;
        c.start = r, c.n = 1;
        Tensor one = run_attention(*be, {c}, q, {int64_t(r)}, kc, vc, sinks, window, 0.125f);
        ASSERT_TRUE(same_bits(one.ptr<float>(), whole.ptr<float>() + r * rw, rw))
            << "row " << r << " window " << window << " H" << H << " nkv" << nkv << " D" << D;
      }
    }
}

// --kv-cache-dtype fp8_e4m3: an FP8 cache gives the bits of an fp32 cache
// holding the same (FP8) values, on every path, for decode rows, a verify's
// rows and a prefill (the loads widen exactly; the arithmetic is the same).
TEST_P(AttentionPaths, Fp8CacheGivesTheBitsOfItsValuesInFp32) {
  auto be = make_cpu_backend();
  std::mt19937 g(23);
  const int H = 16, nkv = 4, D = 128, Dv = 128, L = 150, slots = 160;
  Tensor k8 = as(randn({nkv, slots, D}, g), DType::F8E4M3), v8 = as(randn({nkv, slots, Dv}, g), DType::F8E4M3);
  Tensor kf = widened(k8), vf = widened(v8);
  Tensor q = randn({L, H, D}, g), sinks = randn({H}, g);
  Seq a;
  for (int j = 0; j < L; j++) a.slots.push_back((j * 7) % slots);
  a.n = L;
  std::vector<int64_t> rows;
  for (int i = 0; i < L; i++) rows.push_back(i);
  for (int window : {0, 40}) {
    Tensor want = run_attention(*be, {a}, q, rows, kf, vf, sinks, window, 0.09f);
    Tensor got = run_attention(*be, {a}, q, rows, k8, v8, sinks, window, 0.09f);
    ASSERT_TRUE(same_bits(got.ptr<float>(), want.ptr<float>(), want.numel())) << "prefill, window " << window;
    for (int r : {0, 63, 64, 149}) {  // decode rows
      Seq c = a;
      c.start = r, c.n = 1;
      Tensor one = run_attention(*be, {c}, q, {int64_t(r)}, k8, v8, sinks, window, 0.09f);
      ASSERT_TRUE(same_bits(one.ptr<float>(), want.ptr<float>() + int64_t(r) * H * Dv, int64_t(H) * Dv))
          << "row " << r << " window " << window;
    }
    Seq c = a;  // a verify's 4 rows
    c.start = 100, c.n = 4;
    Tensor four = run_attention(*be, {c}, q, {100, 101, 102, 103}, k8, v8, sinks, window, 0.09f);
    ASSERT_TRUE(same_bits(four.ptr<float>(), want.ptr<float>() + int64_t(100) * H * Dv, int64_t(4) * H * Dv));
  }
}

// The AVX-512 path gives the AVX2 one's bits (every shape above, bf16 and
// fp32 caches): decode rows (1-6 query vectors, direct on both), a verify's
// 4 rows (8-16 vectors: direct slivers on both) and a whole prefill (items
// of up to 48 vectors: direct slivers with AVX-512, packed panels with
// AVX2).
TEST(Kernels, Avx512AttentionEqualsAvx2BitForBit) {
  if (!cpu::cpu_features().avx512) GTEST_SKIP() << "no AVX-512 (F, BW, DQ, VL) on this CPU";
  auto be = make_cpu_backend();
  std::mt19937 g(23);
  struct Shape { int H, nkv, D, Dv; };
  for (Shape sh : {Shape{8, 2, 64, 32}, {8, 4, 36, 16}, {12, 2, 20, 48}, {16, 4, 128, 128}, {4, 4, 13, 16}})
    for (int window : {0, 50})
      for (DType dt : {DType::BF16, DType::F32, DType::F8E4M3}) {
        const int L = 300, slots = 2 * L;
        Tensor kc = as(randn({sh.nkv, slots, sh.D}, g), dt), vc = as(randn({sh.nkv, slots, sh.Dv}, g), dt);
        Tensor q = randn({L, sh.H, sh.D}, g), sinks = randn({sh.H}, g);
        Seq a;
        for (int j = 0; j < L; j++) a.slots.push_back((j * 7) % slots);
        for (int r : {0, 1, 63, 64, 65, 150, 299}) {
          Seq c = a;
          c.start = r, c.n = 1;
          use_cpu_path(CpuPath::Avx2);
          Tensor x = run_attention(*be, {c}, q, {int64_t(r)}, kc, vc, sinks, window, 0.125f);
          use_cpu_path(CpuPath::Avx512);
          Tensor y = run_attention(*be, {c}, q, {int64_t(r)}, kc, vc, sinks, window, 0.125f);
          cpu::override_cpu_features(nullptr);
          ASSERT_TRUE(same_bits(x.ptr<float>(), y.ptr<float>(), int64_t(sh.H) * sh.Dv))
              << "row " << r << " window " << window << " H" << sh.H << " nkv" << sh.nkv << " D" << sh.D;
        }
        for (auto [start, n] : {std::pair<int, int>{200, 4}, {0, L}}) {
          Seq c = a;
          c.start = start, c.n = n;
          std::vector<int64_t> rows;
          for (int i = 0; i < n; i++) rows.push_back(start + i);
          use_cpu_path(CpuPath::Avx2);
          Tensor x = run_attention(*be, {c}, q, rows, kc, vc, sinks, window, 0.125f);
          use_cpu_path(CpuPath::Avx512);
          Tensor y = run_attention(*be, {c}, q, rows, kc, vc, sinks, window, 0.125f);
          cpu::override_cpu_features(nullptr);
          ASSERT_TRUE(same_bits(x.ptr<float>(), y.ptr<float>(), int64_t(n) * sh.H * sh.Dv))
              << n << " rows from " << start << " window " << window << " H" << sh.H << " nkv" << sh.nkv;
        }
      }
}

TEST(Kernels, ExpIsAccurateOverItsRange) {
  if (!cpu::cpu_features().avx2_fma) GTEST_SKIP() << "no AVX2+FMA on this CPU";
  std::vector<float> x;
  for (float v = -100.0f; v < 89.0f; v += 0.37f) x.push_back(v);
  x.push_back(-INFINITY);
  x.push_back(0.0f);
  std::vector<float> y(x.size());
  cpu::avx2::exp_row(x.data(), y.data(), int64_t(x.size()));
  for (size_t i = 0; i < x.size(); i++) {
    double want = x[i] < -87.3f ? 0.0 : std::exp(double(x[i]));
    ASSERT_NEAR(y[i], want, 4e-7 * want + 1e-37) << x[i];
  }
}

// ---- MoE experts ----------------------------------------------------------

struct MoeSetup {
  int64_t T, H = 44, I = 24, K = 3;
  int E_total = 10, E_local = 6, begin = 2;
  Tensor x, ids, wts, gu, dn;
};

MoeSetup make_moe(int64_t T, DType dt, std::mt19937& g, int64_t H = 44) {
  MoeSetup m;
  m.T = T;
  m.H = H;
  m.x = randn({T, m.H}, g);
  m.gu = as(randn({m.E_local, 2 * m.I, m.H}, g, 0.3f), dt);
  m.dn = as(randn({m.E_local, m.H, m.I}, g, 0.3f), dt);
  m.ids = Tensor::empty({T, m.K}, DType::I32);
  m.wts = randn({T, m.K}, g);
  for (int64_t t = 0; t < T; t++) {
    std::vector<int> e(static_cast<size_t>(m.E_total));
    for (int i = 0; i < m.E_total; i++) e[size_t(i)] = i;
    std::shuffle(e.begin(), e.end(), g);
    for (int64_t k = 0; k < m.K; k++) m.ids.ptr<int32_t>()[t * m.K + k] = e[size_t(k)];
  }
  return m;
}

TEST_P(Paths, MoeExpertsMatchReference) {
  auto be = make_cpu_backend();
  std::mt19937 g(31);
  for (DType dt : {DType::F32, DType::BF16})
    for (int64_t T : {1, 5, 60, 200}) {  // 200 tokens: ~60 rows per expert, the GEMM path
      MoeSetup m = make_moe(T, dt, g);
      Tensor out = be->alloc({T, m.H}, DType::F32);
      be->moe_experts(m.x, m.ids, m.wts, m.gu, m.dn, m.begin, out);
      for (int64_t t = 0; t < T; t++) {
        std::vector<double> ref(size_t(m.H), 0.0);
        for (int64_t k = 0; k < m.K; k++) {
          int e = m.ids.ptr<int32_t>()[t * m.K + k] - m.begin;
          if (e < 0 || e >= m.E_local) continue;
          std::vector<double> act(static_cast<size_t>(m.I));
          for (int64_t i = 0; i < m.I; i++) {
            double gt = 0, up = 0;
            for (int64_t h = 0; h < m.H; h++) {
              gt += double(m.x.ptr<float>()[t * m.H + h]) * at(m.gu, (e * 2 * m.I + i) * m.H + h);
              up += double(m.x.ptr<float>()[t * m.H + h]) * at(m.gu, (e * 2 * m.I + m.I + i) * m.H + h);
            }
            act[size_t(i)] = gt / (1 + std::exp(-gt)) * up;
          }
          for (int64_t h = 0; h < m.H; h++) {
            double y = 0;
            for (int64_t i = 0; i < m.I; i++) y += act[size_t(i)] * at(m.dn, (e * m.H + h) * m.I + i);
            ref[size_t(h)] += m.wts.ptr<float>()[t * m.K + k] * y;
          }
        }
        for (int64_t h = 0; h < m.H; h++)
          ASSERT_NEAR(out.ptr<float>()[t * m.H + h], ref[size_t(h)], 1e-4 * (1 + std::fabs(ref[size_t(h)])))
              << "T=" << T << " " << dtype_name(dt) << " token " << t;
      }
    }
}

// A backend whose prepare_weight tiles whatever fits, on every path.
std::unique_ptr<Backend> tiling_backend() {
  setenv("MIMOSERVE_CPU_ROW_TILES", "1", 1);
  auto be = make_cpu_backend();
  unsetenv("MIMOSERVE_CPU_ROW_TILES");
  return be;
}

// Weights in row tiles (CpuBackend::prepare_weight: rows of up to 2 KB)
// give every bit the row-major ones give: small M (the dot-product tiles,
// 16-row tile passes for one row, slabs past 8 rows) and the GEMM (panels
// packed from tiles), fp32 and bf16; the experts too.
TEST_P(Paths, RowTiledWeightsGiveTheRowMajorBits) {
  auto be = tiling_backend();
  std::mt19937 g(41);
  auto same = [&](int64_t M, int64_t N, int64_t K, DType dt) {
    Tensor x = randn({M, K}, g), w = as(randn({N, K}, g), dt);
    Tensor tw = be->prepare_weight(w);
    ASSERT_TRUE(tw.layout() == Tensor::Layout::RowTiles) << N << "x" << K;
    ASSERT_EQ(tw.shape(), w.shape());
    Tensor a = be->alloc({M, N}, DType::F32), b = be->alloc({M, N}, DType::F32);
    be->linear(x, w, a);
    be->linear(x, tw, b);
    ASSERT_TRUE(same_bits(a.ptr<float>(), b.ptr<float>(), M * N))
        << M << "x" << N << "x" << K << " " << dtype_name(dt);
  };
  for (DType dt : {DType::F32, DType::BF16}) {
    const int64_t deepest = 2048 / int64_t(dtype_size(dt));
    for (int64_t M : {1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 40, 63, 64, 70, 80, 90})
      for (int64_t N : {8, 24, 136}) same(M, N, deepest, dt);
    for (int64_t K : {8, 64, 200}) {
      same(1, 40, K, dt);
      same(12, 40, K, dt);
    }
  }
  same(1, 4096, 512, DType::BF16);  // several chunks per thread
  for (DType dt : {DType::F32, DType::BF16})
    for (int64_t T : {1, 5, 60, 200}) {
      MoeSetup m = make_moe(T, dt, g, 48);  // whole tiles: 48 = 2 I rows and 48 deep
      Tensor tgu = be->prepare_weight(m.gu), tdn = be->prepare_weight(m.dn);
      ASSERT_TRUE(tgu.layout() == Tensor::Layout::RowTiles && tdn.layout() == Tensor::Layout::RowTiles);
      Tensor a = be->alloc({T, m.H}, DType::F32), b = be->alloc({T, m.H}, DType::F32);
      be->moe_experts(m.x, m.ids, m.wts, m.gu, m.dn, m.begin, a);
      be->moe_experts(m.x, m.ids, m.wts, tgu, tdn, m.begin, b);
      ASSERT_TRUE(same_bits(a.ptr<float>(), b.ptr<float>(), T * m.H)) << "T=" << T << " " << dtype_name(dt);
    }
}

// Only fp32/bf16 matrices whose rows and depth are whole tiles get them; by
// default only when the AVX-512 kernels run; MIMOSERVE_CPU_ROW_TILES=0 keeps
// every weight row-major, and a bad value fails naming the variable.
TEST(Kernels, RowTilesOnlyWhereTheyFit) {
  auto be = tiling_backend();
  std::mt19937 g(42);
  EXPECT_FALSE(be->prepare_weight(as(randn({12, 64}, g), DType::BF16)).layout() == Tensor::Layout::RowTiles);  // rows not 8k
  EXPECT_FALSE(be->prepare_weight(as(randn({16, 60}, g), DType::BF16)).layout() == Tensor::Layout::RowTiles);  // depth not 8k
  EXPECT_FALSE(be->prepare_weight(as(randn({16, 1032}, g), DType::BF16)).layout() == Tensor::Layout::RowTiles);  // rows over 2 KB
  EXPECT_FALSE(be->prepare_weight(randn({16, 520}, g)).layout() == Tensor::Layout::RowTiles);
  EXPECT_TRUE(be->prepare_weight(randn({16, 512}, g)).layout() == Tensor::Layout::RowTiles);
  EXPECT_TRUE(be->prepare_weight(as(randn({16, 1024}, g), DType::BF16)).layout() == Tensor::Layout::RowTiles);
  EXPECT_FALSE(be->prepare_weight(randn({64}, g)).layout() == Tensor::Layout::RowTiles);
  Tensor ids = Tensor::empty({16, 8}, DType::I32);
  EXPECT_FALSE(be->prepare_weight(ids).layout() == Tensor::Layout::RowTiles);
  Tensor tiled = be->prepare_weight(randn({16, 64}, g));
  EXPECT_TRUE(tiled.layout() == Tensor::Layout::RowTiles);
  EXPECT_TRUE(be->prepare_weight(tiled).layout() == Tensor::Layout::RowTiles);  // already tiled: as is
  EXPECT_EQ(be->prepare_weight(tiled).data(), tiled.data());
  EXPECT_EQ(make_cpu_backend()->prepare_weight(randn({16, 64}, g)).layout() == Tensor::Layout::RowTiles, cpu::cpu_features().avx512);
  cpu::CpuFeatures avx2 = cpu::cpu_features();
  avx2.avx512 = false;
  cpu::override_cpu_features(&avx2);
  EXPECT_FALSE(make_cpu_backend()->prepare_weight(randn({16, 64}, g)).layout() == Tensor::Layout::RowTiles);
  cpu::override_cpu_features(nullptr);
  setenv("MIMOSERVE_CPU_ROW_TILES", "0", 1);
  EXPECT_FALSE(make_cpu_backend()->prepare_weight(randn({16, 64}, g)).layout() == Tensor::Layout::RowTiles);
  setenv("MIMOSERVE_CPU_ROW_TILES", "yes", 1);
  try {
    make_cpu_backend();
    ADD_FAILURE() << "a bad MIMOSERVE_CPU_ROW_TILES was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("MIMOSERVE_CPU_ROW_TILES=yes"), std::string::npos) << e.what();
  }
  unsetenv("MIMOSERVE_CPU_ROW_TILES");
}

// A token's MoE output does not depend on which other tokens share its
// experts (an expert with many rows runs the GEMM, one with few the
// weight-streaming kernel).
TEST(Kernels, MoeBatchInvariance) {
  auto be = make_cpu_backend();
  std::mt19937 g(32);
  for (DType dt : {DType::F32, DType::BF16}) {
    MoeSetup m = make_moe(240, dt, g);
    Tensor all = be->alloc({m.T, m.H}, DType::F32);
    be->moe_experts(m.x, m.ids, m.wts, m.gu, m.dn, m.begin, all);
    for (int64_t t0 : {0, 17, 239})
      for (int64_t n : {1, 2, 9}) {
        if (t0 + n > m.T) continue;
        Tensor part = be->alloc({n, m.H}, DType::F32);
        be->moe_experts(m.x.slice_rows(t0, t0 + n), m.ids.slice_rows(t0, t0 + n), m.wts.slice_rows(t0, t0 + n), m.gu,
                        m.dn, m.begin, part);
        ASSERT_TRUE(same_bits(part.ptr<float>(), all.ptr<float>() + t0 * m.H, n * m.H)) << t0 << "+" << n;
      }
  }
}

// ---- element-wise ops -----------------------------------------------------

TEST_P(Paths, RowOpsMatchReference) {
  auto be = make_cpu_backend();
  std::mt19937 g(41);
  for (int64_t H : {1, 7, 8, 37, 1024})
    for (DType wdt : {DType::F32, DType::BF16}) {
      const int64_t T = 5;
      Tensor x = randn({T, H}, g, 3.0f), w = as(randn({H}, g), wdt), out = be->alloc({T, H}, DType::F32);
      be->rms_norm(x, w, 1e-5f, out);
      for (int64_t t = 0; t < T; t++) {
        double ss = 0;
        for (int64_t h = 0; h < H; h++) ss += double(x.ptr<float>()[t * H + h]) * x.ptr<float>()[t * H + h];
        const double inv = 1.0 / std::sqrt(ss / double(H) + 1e-5);
        for (int64_t h = 0; h < H; h++)
          ASSERT_NEAR(out.ptr<float>()[t * H + h], at(w, h) * x.ptr<float>()[t * H + h] * inv, 1e-5 * (1 + std::fabs(at(w, h) * x.ptr<float>()[t * H + h] * inv)));
      }
      // silu_mul, add_
      Tensor gu = randn({T, 2 * H}, g, 4.0f), act = be->alloc({T, H}, DType::F32);
      be->silu_mul(gu, act);
      for (int64_t t = 0; t < T; t++)
        for (int64_t i = 0; i < H; i++) {
          double a = gu.ptr<float>()[t * 2 * H + i], u = gu.ptr<float>()[t * 2 * H + H + i];
          double r = a / (1 + std::exp(-a)) * u;
          ASSERT_NEAR(act.ptr<float>()[t * H + i], r, 2e-6 * (1 + std::fabs(r))) << a;
        }
      Tensor y = randn({T, H}, g), x2 = Tensor::empty({T, H}, DType::F32);
      std::memcpy(x2.data(), x.data(), x.nbytes());
      be->add_(x2, y);
      for (int64_t i = 0; i < T * H; i++) ASSERT_EQ(x2.ptr<float>()[i], x.ptr<float>()[i] + y.ptr<float>()[i]);
    }
  // silu at the extremes of exp's range
  std::vector<float> v = {-200.f, -88.f, -87.f, -20.f, -1e-3f, 0.f, 1e-3f, 20.f, 87.f, 88.f, 89.f, 200.f};
  Tensor gu = Tensor::empty({1, int64_t(2 * v.size())}, DType::F32), act = be->alloc({1, int64_t(v.size())}, DType::F32);
  for (size_t i = 0; i < v.size(); i++) gu.ptr<float>()[i] = v[i], gu.ptr<float>()[v.size() + i] = 1.0f;
  be->silu_mul(gu, act);
  for (size_t i = 0; i < v.size(); i++) {
    double r = double(v[i]) / (1 + std::exp(-double(v[i])));
    ASSERT_NEAR(act.ptr<float>()[i], r, 1e-6 * (1 + std::fabs(r))) << v[i];
  }
}

// The nearest of the 127 non-negative finite FP8 codes by searching their
// values (which rise with the code), ties to the even code: the reference
// for f32_to_fp8e4m3's bit trick.
uint8_t fp8_by_search(float f) {
  if (std::isnan(f)) return 0x7f;
  const uint8_t sign = std::signbit(f) ? 0x80 : 0;
  const float a = std::fabs(f);
  if (a >= 448.f) return sign | 0x7e;
  const float* t = fp8e4m3_table();
  const int hi = int(std::lower_bound(t, t + 0x7f, a) - t);
  if (hi == 0) return sign;
  const float d_hi = t[hi] - a, d_lo = a - t[hi - 1];
  const int best = d_lo < d_hi ? hi - 1 : d_hi < d_lo ? hi : ((hi - 1) & 1) == 0 ? hi - 1 : hi;
  return sign | uint8_t(best);
}

// FP8 E4M3 rounding: the bit-trick conversion gives the table search's code
// for fp32 values across the whole range (normals, subnormals, ties, the
// saturation edge, NaN, infinities), and the row kernel of each path the
// scalar's.
TEST_P(Paths, Fp8RoundingMatchesTheTableSearch) {
  std::vector<float> xs = {0.0f, -0.0f, 448.0f, -448.0f, 447.99f, 460.0f, 1e30f, INFINITY, -INFINITY, NAN,
                           0.015625f, 0.0156249f, 0.001953125f, 0.0029296875f, 1.0625f, 1.1875f, -3.0e-6f};
  for (uint64_t b = 0; b < (uint64_t(1) << 32); b += 40009) {
    float f;
    const uint32_t u = uint32_t(b);
    std::memcpy(&f, &u, 4);
    xs.push_back(f);
  }
  for (int c = 0; c < 256; c++) {  // every code's value and the midpoints to its neighbours
    const float v = fp8e4m3_to_f32(uint8_t(c));
    if (std::isnan(v)) continue;
    xs.push_back(v);
    if ((c & 0x7f) < 0x7e) xs.push_back(0.5f * (v + fp8e4m3_to_f32(uint8_t(c + 1))));
  }
  for (float x : xs) {
    const uint8_t want = fp8_by_search(x);
    ASSERT_EQ(int(f32_to_fp8e4m3(x)), int(want)) << x;
  }
  std::vector<uint8_t> row(xs.size());
  cpu::to_fp8_row(xs.data(), 1.0f, row.data(), int64_t(xs.size()));
  for (size_t i = 0; i < xs.size(); i++) ASSERT_EQ(int(row[i]), int(f32_to_fp8e4m3(xs[i]))) << xs[i];
  cpu::to_fp8_row(xs.data(), 0.7f, row.data(), int64_t(xs.size()));
  for (size_t i = 0; i < xs.size(); i++) ASSERT_EQ(int(row[i]), int(f32_to_fp8e4m3(xs[i] * 0.7f))) << xs[i];
}

TEST_P(Paths, RopeStoreKvConvert) {
  auto be = make_cpu_backend();
  std::mt19937 g(42);
  const int64_t T = 6, H = 3, D = 40;
  std::vector<int32_t> pos = {0, 1, 7, 100, 4095, 70000};
  for (int rot : {2, 14, 26, 40}) {
    Tensor x = randn({T, H, D}, g), ref = Tensor::empty({T, H, D}, DType::F32);
    std::memcpy(ref.data(), x.data(), x.nbytes());
    be->rope_(x, Tensor::wrap({T}, DType::I32, pos.data()), rot, 10000.0);
    const int half = rot / 2;
    for (int64_t t = 0; t < T; t++)
      for (int64_t h = 0; h < H; h++)
        for (int64_t i = 0; i < D; i++) {
          const float* r = ref.ptr<float>() + (t * H + h) * D;
          double want = r[i];
          if (i < rot) {
            int j = int(i % half);
            double ang = double(float(pos[size_t(t)]) * (1.0f / std::pow(10000.0f, float(2 * j) / float(rot))));
            double c = std::cos(ang), s = std::sin(ang);
            want = i < half ? r[i] * c - r[i + half] * s : r[i] * c + r[i - half] * s;
          }
          ASSERT_NEAR(x.ptr<float>()[(t * H + h) * D + i], want, 2e-4 * (1 + std::fabs(want))) << "rot " << rot;
        }
  }
  // store_kv rounds to bf16 like f32_to_bf16 (value scale applied first).
  Tensor k = randn({T, 2, 9}, g), v = randn({T, 2, 9}, g);
  std::vector<int32_t> slots = {5, 0, 3, 9, 1, 7};
  AttnMeta m;
  m.out_slots = Tensor::wrap({T}, DType::I32, slots.data());
  for (DType dt : {DType::BF16, DType::F32, DType::F8E4M3}) {
    Tensor kc = be->alloc({2, 10, 9}, dt), vc = be->alloc({2, 10, 9}, dt);  // [nkv, slots, D]
    be->store_kv(k, v, 0.7f, m, kc, vc);
    for (int64_t t = 0; t < T; t++)
      for (int64_t i = 0; i < 18; i++) {
        float kv = k.ptr<float>()[t * 18 + i], vv = v.ptr<float>()[t * 18 + i] * 0.7f;
        int64_t o = (i / 9 * 10 + slots[size_t(t)]) * 9 + i % 9;
        if (dt == DType::BF16) {
          ASSERT_EQ(kc.ptr<uint16_t>()[o], f32_to_bf16(kv));
          ASSERT_EQ(vc.ptr<uint16_t>()[o], f32_to_bf16(vv));
        } else if (dt == DType::F8E4M3) {
          ASSERT_EQ(kc.ptr<uint8_t>()[o], f32_to_fp8e4m3(kv));
          ASSERT_EQ(vc.ptr<uint8_t>()[o], f32_to_fp8e4m3(vv));
        } else {
          ASSERT_EQ(kc.ptr<float>()[o], kv);
          ASSERT_EQ(vc.ptr<float>()[o], vv);
        }
      }
  }
  // convert both ways, odd length, with NaN and ties.
  Tensor src = randn({1, 37}, g);
  src.ptr<float>()[3] = NAN;
  src.ptr<float>()[4] = 1.0f + 1.0f / 256;
  Tensor b = be->alloc({1, 37}, DType::BF16), back = be->alloc({1, 37}, DType::F32);
  be->convert(src, b);
  be->convert(b, back);
  for (int i = 0; i < 37; i++) {
    ASSERT_EQ(b.ptr<uint16_t>()[i], f32_to_bf16(src.ptr<float>()[i])) << i;
    uint32_t want = uint32_t(f32_to_bf16(src.ptr<float>()[i])) << 16, got;
    std::memcpy(&got, back.ptr<float>() + i, 4);
    ASSERT_EQ(got, want) << i;
  }
}

}  // namespace
}  // namespace mimo
