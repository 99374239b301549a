// CUDA attention against the CPU backend: batches that mix prefill chunks,
// single-token decode and multi-token verify rows, over scattered (paged)
// slot tables with -1 where a window never looks, sliding windows, sinks,
// GQA from 1 to 128 query heads per KV head, F32 and BF16 caches, the
// real model's dims (64 heads, head_dim 192 / v 128, 4 or 8 KV heads) and
// the test fixture's small odd ones (48 / 32). Long decode contexts exercise
// the split-KV path and its merge.
#include <algorithm>
#include <numeric>

#include "ops/cuda/cuda_test_util.h"

namespace mimo::cudatest {
namespace {

struct Seq {
  int ctx, q;  // cached tokens before this step, rows in this step
};

struct AttnCase {
  std::string name;
  int H, nkv, D, Dv;
  int window = 0;
  bool sinks = false;
  DType kv = DType::F32;
  std::vector<Seq> seqs;
  bool set_bounds = true;  // fill max_q_len / max_kv_len as the model does
};

class CudaAttention : public CudaParity {
 protected:
  void run(const AttnCase& c, uint64_t seed) {
    Rng r(seed);
    int total = 0;
    for (auto& s : c.seqs) total += s.ctx + s.q;
    const int n_slots = total + 13;
    std::vector<int32_t> perm(static_cast<size_t>(n_slots));
    std::iota(perm.begin(), perm.end(), 0);
    for (int i = n_slots - 1; i > 0; i--) std::swap(perm[size_t(i)], perm[size_t(r.below(i + 1))]);

    std::vector<int32_t> positions, q_start{0}, kv_len, table_start, table, out_slots;
    int next = 0, max_q = 0, max_kv = 0;
    for (auto& s : c.seqs) {
      int ts = int(table.size()), L = s.ctx + s.q;
      table_start.push_back(ts);
      for (int j = 0; j < L; j++) table.push_back(perm[size_t(next++)]);
      for (int i = 0; i < s.q; i++) {
        positions.push_back(s.ctx + i);
        out_slots.push_back(table[size_t(ts + s.ctx + i)]);
      }
      // Keys no row of this step can see: the contract allows -1 there.
      if (c.window > 0)
        for (int j = 0; j < std::max(0, s.ctx - c.window + 1); j++) table[size_t(ts + j)] = -1;
      q_start.push_back(q_start.back() + s.q);
      kv_len.push_back(L);
      max_q = std::max(max_q, s.q);
      max_kv = std::max(max_kv, L);
    }
    const int64_t T = int64_t(positions.size());
    Tensor q = rand_host({T, c.H, c.D}, r);
    Tensor kc = rand_host({c.nkv, n_slots, c.D}, r, 1.0f, c.kv), vc = rand_host({c.nkv, n_slots, c.Dv}, r, 1.0f, c.kv);
    Tensor sinks = c.sinks ? rand_host({c.H}, r, 1.5f) : Tensor();

    AttnMeta hm;
    hm.positions = i32_host(positions);
    hm.q_start = i32_host(q_start);
    hm.kv_len = i32_host(kv_len);
    hm.table_start = i32_host(table_start);
    hm.table = i32_host(table);
    hm.out_slots = i32_host(out_slots);
    hm.num_seqs = int(c.seqs.size());
    hm.max_q_len = c.set_bounds ? max_q : 0;
    hm.max_kv_len = c.set_bounds ? max_kv : 0;
    AttnMeta dm = hm;
    dm.positions = up(hm.positions);
    dm.q_start = up(hm.q_start);
    dm.kv_len = up(hm.kv_len);
    dm.table_start = up(hm.table_start);
    dm.table = up(hm.table);
    dm.out_slots = up(hm.out_slots);

    AttnParams p;
    p.window = c.window;
    p.scale = float(1.0 / std::sqrt(double(c.D)));
    Tensor want = host_out({T, c.H, c.Dv}, DType::F32);
    C().attention(q, kc, vc, sinks, hm, p, want);
    Tensor got = poisoned({T, c.H, c.Dv}, DType::F32);
    G().attention(up(q), up(kc), up(vc), c.sinks ? up(sinks) : Tensor(), dm, p, got);
    // Outputs are convex combinations of V (|v| <= 1.8): fp32 rounding only.
    expect_close(down(got), want, 3e-5, 1e-4, c.name + (c.kv == DType::BF16 ? " bf16 kv" : " f32 kv"));
  }
};

TEST_F(CudaAttention, FixtureDimsMixedBatch) {
  uint64_t seed = 100;
  for (DType kv : {DType::F32, DType::BF16})
    for (int window : {0, 16, 1})
      for (bool sinks : {false, true})
        run({"tiny-a w=" + std::to_string(window) + (sinks ? " sinks" : ""), 4, 2, 48, 32, window, sinks, kv,
             {{0, 20}, {37, 1}, {50, 4}, {3, 1}, {5, 0}}},
            seed++);
}

TEST_F(CudaAttention, FullAttentionModelDims) {
  uint64_t seed = 200;
  for (DType kv : {DType::BF16, DType::F32}) {
    run({"full decode (split-KV)", 64, 4, 192, 128, 0, false, kv, {{3000, 1}}}, seed++);
    run({"full mixed", 64, 4, 192, 128, 0, false, kv, {{0, 70}, {500, 4}, {2000, 1}}}, seed++);
    run({"full decode batch", 64, 4, 192, 128, 0, false, kv, {{900, 1}, {17, 1}, {1500, 1}, {0, 1}}}, seed++);
  }
}

TEST_F(CudaAttention, SlidingWindowModelDims) {
  uint64_t seed = 300;
  for (DType kv : {DType::BF16, DType::F32}) {
    run({"swa mixed", 64, 8, 192, 128, 128, true, kv, {{3000, 1}, {200, 150}, {1000, 4}}}, seed++);
    run({"swa decode", 64, 8, 192, 128, 128, true, kv, {{5000, 1}, {130, 1}}}, seed++);
    run({"swa W+1", 64, 8, 192, 128, 129, true, kv, {{300, 3}}}, seed++);
  }
}

TEST_F(CudaAttention, GroupSizesAndHeadDims) {
  uint64_t seed = 400;
  for (DType kv : {DType::F32, DType::BF16}) {
    run({"G=128", 128, 1, 16, 8, 0, true, kv, {{10, 3}, {0, 5}}}, seed++);
    run({"MHA", 8, 8, 32, 32, 0, false, kv, {{100, 7}}}, seed++);
    run({"max head dims", 4, 2, 256, 256, 0, true, kv, {{300, 2}, {0, 33}}}, seed++);
    run({"tiny q, wide v", 6, 3, 8, 200, 5, false, kv, {{40, 9}}}, seed++);
    run({"bounds unset", 4, 2, 48, 32, 16, true, kv, {{37, 1}, {0, 12}}, false}, seed++);
  }
}

TEST_F(CudaAttention, ManyDecodeSequences) {
  Rng r(500);
  std::vector<Seq> seqs;
  for (int i = 0; i < 40; i++) seqs.push_back({r.below(600), 1});
  run({"40 decodes", 64, 4, 192, 128, 0, false, DType::BF16, seqs}, 501);
  run({"40 decodes swa", 64, 8, 192, 128, 128, true, DType::BF16, seqs}, 502);
}

}  // namespace
}  // namespace mimo::cudatest
