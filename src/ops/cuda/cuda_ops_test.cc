// Every CUDA op against the CPU backend on random inputs of many shapes,
// including the real model's widths (hidden 4096, head dims 192/128, 64
// heads, 4/8 KV heads, 32 experts top-8), in fp32 and bf16. Without a GPU
// every test skips with "no CUDA device". Attention cases are in
// cuda_attention_test.cc.
//
// Tolerances: fp32 paths agree with the CPU to rounding (summation order);
// the bf16-weight paths that run on tensor cores (linear with M > 8, MoE
// experts) round activations to bf16, so they get about 2^-9 relative
// error per product term.
#include <cstring>
#include <algorithm>
#include <cmath>
#include <tuple>

#include "ops/cuda/cuda_test_util.h"

namespace mimo::cudatest {
namespace {

class CudaOps : public CudaParity {
 protected:
  void linear_case(Rng& r, int64_t M, int64_t N, int64_t K, DType wdt);
  // Ids spread over `total` experts; this rank holds [begin, begin + E).
  void moe_case(Rng& r, int64_t T, int E, int total, int begin, int K, int64_t H, int64_t I, DType dt);
};

TEST_F(CudaOps, MemoryRoundTripZeroAndName) {
  Rng r(1);
  Tensor h = rand_host({3, 77}, r);
  Tensor d = up(h);
  EXPECT_EQ(d.device(), Device::CUDA);
  expect_bits_equal(down(d), h, "round trip");
  G().zero_(d);
  Tensor z = down(d);
  for (int64_t i = 0; i < z.numel(); i++) ASSERT_EQ(z.ptr<float>()[i], 0.0f);
  EXPECT_NE(G().name().find("cuda"), std::string::npos) << G().name();
  std::printf("backend: %s\n", G().name().c_str());
}

TEST_F(CudaOps, Embedding) {
  Rng r(2);
  for (DType dt : {DType::F32, DType::BF16})
    for (int64_t H : {1, 64, 4096}) {
      const int64_t V = 97, T = 9;
      Tensor table = rand_host({V, H}, r, 1.0f, dt);
      std::vector<int32_t> ids;
      for (int t = 0; t < T; t++) ids.push_back(r.below(int(V)));
      ids[1] = 0, ids[2] = int32_t(V - 1);
      Tensor want = host_out({T, H}, DType::F32), got = poisoned({T, H}, DType::F32);
      C().embedding(i32_host(ids), table, want);
      G().embedding(up(i32_host(ids)), up(table), got);
      expect_bits_equal(down(got), want, "embedding H=" + std::to_string(H));
    }
}

TEST_F(CudaOps, RmsNormIncludingInPlace) {
  Rng r(3);
  for (DType wdt : {DType::F32, DType::BF16})
    for (int64_t H : {1, 64, 100, 4096})
      for (int64_t T : {1, 5, 33}) {
        Tensor x = rand_host({T, H}, r, 2.0f), w = rand_host({H}, r, 1.0f, wdt);
        Tensor want = host_out({T, H}, DType::F32), got = poisoned({T, H}, DType::F32);
        C().rms_norm(x, w, 1e-5f, want);
        Tensor dw = up(w), dx = up(x);
        G().rms_norm(dx, dw, 1e-5f, got);
        std::string what = "rms_norm T=" + std::to_string(T) + " H=" + std::to_string(H);
        expect_close(down(got), want, 1e-5, 1e-5, what);
        G().rms_norm(dx, dw, 1e-5f, dx);  // out aliases x
        expect_close(down(dx), want, 1e-5, 1e-5, what + " in place");
      }
}

void CudaOps::linear_case(Rng& r, int64_t M, int64_t N, int64_t K, DType wdt) {
  Backend &gpu = G(), &cpu = C();
  Tensor x = rand_host({M, K}, r), w = rand_host({N, K}, r, 1.0f, wdt);
  Tensor want = Tensor::empty({M, N}, DType::F32);
  cpu.linear(x, w, want);
  Tensor got = gpu.alloc({M, N}, DType::F32);
  gpu.linear(gpu.upload(x), gpu.upload(w), got);
  Tensor h = Tensor::empty({M, N}, DType::F32);
  gpu.copy_to_host(h.data(), got);
  // Outputs have standard deviation about sqrt(K). The tensor-core path
  // (bf16 weights, M > 8) rounds x to bf16 as well.
  bool rounded_x = wdt == DType::BF16 && M > 8;
  double atol = (rounded_x ? 1e-2 : 1e-4) * std::sqrt(double(K));
  expect_close(h, want, atol, 1e-5,
        "linear " + std::to_string(M) + "x" + std::to_string(N) + "x" + std::to_string(K) + " " +
            std::string(dtype_name(wdt)));
}

TEST_F(CudaOps, LinearManyShapes) {
  Rng r(4);
  for (DType wdt : {DType::F32, DType::BF16})
    for (int64_t M : {1, 2, 3, 5, 8, 9, 17, 64, 130})
      for (int64_t N : {1, 7, 64, 129})
        for (int64_t K : {1, 7, 8, 64, 100, 256})
          linear_case(r, M, N, K, wdt);
}

TEST_F(CudaOps, LinearModelWidths) {
  Rng r(5);
  for (DType wdt : {DType::BF16, DType::F32}) {
    linear_case(r, 1, 12288, 4096, wdt);  // q_proj, decode
    linear_case(r, 4, 1536, 4096, wdt);   // SWA k_proj, verify
    linear_case(r, 33, 4096, 8192, wdt);  // o_proj, prefill chunk
    linear_case(r, 7, 256, 4096, wdt);    // router width
  }
}

// Decode and verify batches (up to 64 rows) must give each row the same
// bits whatever else is in the batch: speculative decoding's greedy output
// equals plain decoding's only if they do.
TEST_F(CudaOps, LinearAndMoeBatchInvariant) {
  Rng r(13);
  const int64_t K = 1024, N = 520, E = 8, top = 2, I = 64;
  Tensor w = up(rand_host({N, K}, r, 1.0f, DType::BF16));
  Tensor x = rand_host({64, K}, r);
  Tensor one = G().alloc({1, N}, DType::F32);
  G().linear(up(x.slice_rows(0, 1)), w, one);
  Tensor first = down(one);
  for (int64_t M : {2, 8, 9, 16, 37, 64}) {
    Tensor out = G().alloc({M, N}, DType::F32);
    G().linear(up(x.slice_rows(0, M)), w, out);
    Tensor h = down(out);
    EXPECT_EQ(std::memcmp(h.data(), first.data(), size_t(N) * 4), 0) << "linear row 0 changed at M=" << M;
  }
  Tensor gu = up(rand_host({E, 2 * I, K}, r, 0.05f, DType::BF16)), dn = up(rand_host({E, K, I}, r, 0.05f, DType::BF16));
  std::vector<int32_t> ids;
  std::vector<float> wts;
  for (int64_t t = 0; t < 64; t++)
    for (int64_t k = 0; k < top; k++) {
      ids.push_back(int32_t((t * 3 + k * 5) % E));
      wts.push_back(0.5f + 0.1f * float(k));
    }
  auto moe = [&](int64_t T) {
    Tensor idt = i32_host(std::vector<int32_t>(ids.begin(), ids.begin() + T * top)).view({T, top});
    Tensor wt = Tensor::empty({T, top}, DType::F32);
    std::memcpy(wt.data(), wts.data(), size_t(T * top) * 4);
    Tensor out = G().alloc({T, K}, DType::F32);
    G().moe_experts(up(x.slice_rows(0, T)), up(idt), up(wt), gu, dn, 0, out);
    return down(out);
  };
  Tensor m1 = moe(1);
  for (int64_t T : {4, 19, 64}) {
    Tensor h = moe(T);
    EXPECT_EQ(std::memcmp(h.data(), m1.data(), size_t(K) * 4), 0) << "moe row 0 changed at T=" << T;
  }
}

TEST_F(CudaOps, AddAndSiluMul) {
  Rng r(6);
  for (int64_t T : {1, 3, 40})
    for (int64_t I : {1, 32, 2048}) {
      Tensor a = rand_host({T, I}, r), b = rand_host({T, I}, r), gu = rand_host({T, 2 * I}, r, 3.0f);
      Tensor da = up(a);
      G().add_(da, up(b));
      C().add_(a, b);
      expect_bits_equal(down(da), a, "add_");
      Tensor want = host_out({T, I}, DType::F32), got = poisoned({T, I}, DType::F32);
      C().silu_mul(gu, want);
      G().silu_mul(up(gu), got);
      expect_close(down(got), want, 1e-6, 1e-5, "silu_mul");
    }
}

TEST_F(CudaOps, Rope) {
  Rng r(7);
  struct Case { int64_t T, H, D; int rot; double theta; };
  for (Case c : {Case{7, 4, 48, 16, 5e6}, Case{5, 64, 192, 64, 5e6}, Case{9, 8, 192, 64, 1e4},
                 Case{3, 2, 10, 10, 1e4}, Case{4, 3, 8, 0, 1e4}}) {
    Tensor x = rand_host({c.T, c.H, c.D}, r);
    std::vector<int32_t> pos;
    for (int64_t t = 0; t < c.T; t++) pos.push_back(t == 0 ? 0 : r.below(200000));
    Tensor dx = up(x);
    G().rope_(dx, up(i32_host(pos)), c.rot, c.theta);
    C().rope_(x, i32_host(pos), c.rot, c.theta);
    // cosf/sinf of large angles may differ from glibc's by an ulp or two.
    expect_close(down(dx), x, 2e-5, 2e-5, "rope D=" + std::to_string(c.D) + " rot=" + std::to_string(c.rot));
  }
}

TEST_F(CudaOps, StoreKvScatteredSlots) {
  Rng r(8);
  for (DType dt : {DType::F32, DType::BF16})
    for (auto [nkv, D, Dv] : {std::tuple{2, 48, 32}, std::tuple{8, 192, 128}}) {
      const int64_t T = 11, slots = 40;
      Tensor k = rand_host({T, nkv, D}, r), v = rand_host({T, nkv, Dv}, r);
      std::vector<int32_t> out_slots;
      for (int t = 0; t < T; t++) out_slots.push_back((t * 7 + 3) % int(slots));
      AttnMeta hm, dm;
      hm.out_slots = i32_host(out_slots);
      dm.out_slots = up(hm.out_slots);
      Tensor kc = Tensor::zeros({nkv, slots, D}, dt), vc = Tensor::zeros({nkv, slots, Dv}, dt);
      Tensor dkc = up(kc), dvc = up(vc);
      C().store_kv(k, v, 0.707f, hm, kc, vc);
      G().store_kv(up(k), up(v), 0.707f, dm, dkc, dvc);
      expect_bits_equal(down(dkc), kc, "k cache");
      expect_bits_equal(down(dvc), vc, "v cache");
    }
}

TEST_F(CudaOps, MoeRoute) {
  Rng r(9);
  struct Case { int64_t T; int E, K, G, TG; bool norm; float scale; };
  for (Case c : {Case{5, 8, 2, 1, 1, true, 1.0f}, Case{33, 256, 8, 1, 1, true, 1.0f},
                 Case{17, 256, 8, 8, 4, true, 2.5f}, Case{9, 32, 8, 4, 2, false, 1.0f},
                 Case{3, 64, 6, 8, 3, true, 1.0f}}) {
    Tensor logits = rand_host({c.T, c.E}, r, 2.0f), bias = rand_host({c.E}, r, 0.1f);
    MoEParams p{c.K, c.G, c.TG, c.norm, c.scale};
    Tensor ids = host_out({c.T, c.K}, DType::I32), w = host_out({c.T, c.K}, DType::F32);
    C().moe_route(logits, bias, p, ids, w);
    Tensor dids = poisoned({c.T, c.K}, DType::I32), dw = poisoned({c.T, c.K}, DType::F32);
    G().moe_route(up(logits), up(bias), p, dids, dw);
    std::string what = "moe_route E=" + std::to_string(c.E) + " groups=" + std::to_string(c.G);
    expect_bits_equal(down(dids), ids, what + " ids");
    expect_close(down(dw), w, 1e-6, 1e-5, what + " weights");
  }
}

void CudaOps::moe_case(Rng& r, int64_t T, int E, int total, int begin, int K, int64_t H, int64_t I, DType dt) {
  Backend &gpu = G(), &cpu = C();
  Tensor x = rand_host({T, H}, r);
  Tensor gate_up = rand_host({E, 2 * I, H}, r, 1.0f / std::sqrt(float(H)), dt);
  Tensor dn = rand_host({E, H, I}, r, 1.0f / std::sqrt(float(I)), dt);
  std::vector<int32_t> ids;
  Tensor w = Tensor::empty({T, K}, DType::F32);
  for (int64_t i = 0; i < T; i++) {
    std::vector<int32_t> pick;
    while (int(pick.size()) < K) {
      int e = r.below(total);
      if (std::find(pick.begin(), pick.end(), e) == pick.end()) pick.push_back(e);
    }
    for (int k = 0; k < K; k++) {
      ids.push_back(pick[size_t(k)]);
      w.ptr<float>()[i * K + k] = r.uniform() + 0.05f;
    }
  }
  Tensor idt = i32_host(ids).view({T, K});
  Tensor want = Tensor::empty({T, H}, DType::F32);
  cpu.moe_experts(x, idt, w, gate_up, dn, begin, want);
  Tensor got = gpu.alloc({T, H}, DType::F32);
  Tensor nan = Tensor::empty({T, H}, DType::F32);
  std::memset(nan.data(), 0xff, nan.nbytes());
  gpu.copy_from_host(got, nan.data());
  gpu.moe_experts(gpu.upload(x), gpu.upload(idt), gpu.upload(w), gpu.upload(gate_up), gpu.upload(dn), begin, got);
  Tensor h = Tensor::empty({T, H}, DType::F32);
  gpu.copy_to_host(h.data(), got);
  double atol = dt == DType::BF16 ? 3e-2 : 2e-5;
  expect_close(h, want, atol, 1e-4,
                 "moe_experts T=" + std::to_string(T) + " E=" + std::to_string(E) + "/" + std::to_string(total) +
                     " K=" + std::to_string(K) + " H=" + std::to_string(H) + " I=" + std::to_string(I) + " " +
                     std::string(dtype_name(dt)));
}

TEST_F(CudaOps, MoeExpertsManyShapes) {
  Rng r(10);
  for (DType dt : {DType::F32, DType::BF16}) {
    for (int64_t T : {1, 3, 37, 200}) moe_case(r, T, 8, 8, 0, 2, 64, 32, dt);  // tiny-a
    moe_case(r, 50, 4, 16, 4, 3, 64, 32, dt);   // expert parallel: 4 of 16 held here
    moe_case(r, 13, 4, 16, 12, 5, 72, 40, dt);  // last rank; widths not multiples of 64
    moe_case(r, 9, 6, 6, 0, 2, 70, 30, dt);     // odd widths: scalar staging paths
    moe_case(r, 64, 8, 8, 0, 2, 64, 32, dt);    // 16 rows per expert: several gemv row tiles
    moe_case(r, 130, 8, 8, 0, 2, 64, 32, dt);   // just past the gemv path's row limit
  }
}

TEST_F(CudaOps, MoeExpertsModelWidths) {
  Rng r(11);
  for (DType dt : {DType::BF16, DType::F32}) {
    moe_case(r, 1, 32, 32, 0, 8, 4096, 256, dt);   // decode
    moe_case(r, 24, 32, 32, 0, 8, 4096, 256, dt);  // small prefill
  }
}

TEST_F(CudaOps, GatherRows) {
  Rng r(12);
  for (DType dt : {DType::F32, DType::BF16})
    for (int64_t C_ : {1, 3, 64, 4096}) {
      Tensor x = rand_host({10, C_}, r, 1.0f, dt);
      std::vector<int32_t> rows = {9, 0, 4, 4};
      Tensor want = host_out({4, C_}, dt), got = poisoned({4, C_}, dt);
      C().gather_rows(x, i32_host(rows), want);
      G().gather_rows(up(x), up(i32_host(rows)), got);
      expect_bits_equal(down(got), want, "gather_rows C=" + std::to_string(C_));
    }
}

TEST_F(CudaOps, ArgmaxFirstMaximumWins) {
  Rng r(13);
  for (int64_t V : {1, 5, 512, 152576}) {
    const int64_t R = 6;
    Tensor x = rand_host({R, V}, r);
    if (V > 4) {
      x.ptr<float>()[1 * V + 3] = 50.0f, x.ptr<float>()[1 * V + V - 1] = 50.0f;  // tie: first wins
      for (int64_t i = 0; i < V; i++) x.ptr<float>()[2 * V + i] = -INFINITY;     // all equal
      x.ptr<float>()[3 * V + V - 1] = 99.0f;
    }
    Tensor want = host_out({R}, DType::I32), got = poisoned({R}, DType::I32);
    C().argmax(x, want);
    G().argmax(up(x), got);
    expect_bits_equal(down(got), want, "argmax V=" + std::to_string(V));
  }
}

TEST_F(CudaOps, SampleGivesTheHostDefinitionsToken) {
  // ops/sampling.h on the device against the CPU backend: rows of the real
  // vocabulary and a small one, every parameter mix, u at both ends (the
  // first and the last kept token in id order) and in between, half the rows
  // with a draft to accept or reject. fp32 sums on
  // the device against the host's doubles may move a boundary that u or
  // top_p falls within rounding of: at most one row in 50 may differ.
  Rng r(15);
  for (int64_t V : {50, 3000, 152576}) {
    const int64_t R = 60;
    Tensor x = rand_host({R, V}, r, 4.0f), prm = Tensor::empty({R, 4}, DType::F32), u = Tensor::empty({R, 2}, DType::F32),
           drafts = Tensor::empty({R}, DType::I32);
    for (int64_t i = 0; i < R; i++) {
      float* p = prm.ptr<float>() + 4 * i;
      const int64_t m = i / 3;
      p[0] = m == 0 ? 0.0f : 0.25f * float(1 + m % 6);
      p[1] = m % 3 == 0 ? 1.0f : 0.1f + 0.04f * float(m);
      p[2] = m % 4 == 1 ? float(1 + 13 * m) : -1.0f;
      p[3] = m % 5 == 2 ? 0.02f * float(m) : 0.0f;
      u.ptr<float>()[2 * i] = float((i * 104729) % 1000) / 1000.0f;  // accepting a draft
      u.ptr<float>()[2 * i + 1] = i % 3 == 0 ? 0.0f : i % 3 == 1 ? 0.9995f : float((i * 7919) % 1000) / 1000.0f;
      drafts.ptr<int32_t>()[i] = i % 2 ? -1 : int32_t((i * 31) % V);
    }
    Tensor want = host_out({R}, DType::I32), got = poisoned({R}, DType::I32);
    C().sample(x, prm, drafts, u, want);
    G().sample(up(x), up(prm), up(drafts), up(u), got);
    Tensor g = down(got);
    int differ = 0;
    for (int64_t i = 0; i < R; i++) {
      const int32_t a = g.ptr<int32_t>()[i], b = want.ptr<int32_t>()[i];
      ASSERT_TRUE(a >= 0 && a < V) << "row " << i << " V " << V << ": token " << a;
      if (a != b) differ++;
    }
    EXPECT_LE(differ, R / 50) << "V " << V;
  }
}

TEST_F(CudaOps, ConvertBitExact) {
  Rng r(14);
  Tensor x = rand_host({1000}, r, 10.0f);
  float special[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 1.00390625f, 1.01171875f, 3.4e38f, 1e-40f};
  for (size_t i = 0; i < sizeof special / sizeof special[0]; i++) x.ptr<float>()[i] = special[i];
  Tensor b = host_out({1000}, DType::BF16), back = host_out({1000}, DType::F32);
  C().convert(x, b);
  C().convert(b, back);
  Tensor gb = poisoned({1000}, DType::BF16), gback = poisoned({1000}, DType::F32), gsame = poisoned({1000}, DType::F32);
  G().convert(up(x), gb);
  G().convert(gb, gback);
  G().convert(up(x), gsame);
  expect_bits_equal(down(gb), b, "f32 -> bf16");
  expect_bits_equal(down(gback), back, "bf16 -> f32");
  expect_bits_equal(down(gsame), x, "f32 -> f32");
}

}  // namespace
}  // namespace mimo::cudatest
