// The check of the model's step graphs (model/model_graph.cc) that runs on
// the CPU through RecordingBackend (tests/model/graph_test.cc) and on a GPU
// through CUDA graphs (src/ops/cuda/cuda_graph_test.cc): a graph step must
// give what the same step gives op by op, for any batch that reuses a graph
// captured on other inputs, padded or not.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>

#include "loader/checkpoint_maker.h"
#include "loader/load_model.h"
#include "test_util.h"

namespace mimo::test {

constexpr int kSlotsPerSeq = 160;

struct Seq {
  std::vector<int32_t> tokens;  // prompt + generated
  int32_t computed = 0;         // positions in the KV cache
};

// One step for the given sequences: each feeds its next q tokens (the last
// known token and q - 1 made-up ones, as a verify step would), q = `rows`,
// or 1 + s % 4 for sequence s when rows is 0 (a verify of ragged drafts);
// logits for every row, or for each sequence's last row.
inline StepBatch step_of(const std::vector<Seq>& seqs, const std::vector<int>& which, int rows, int vocab,
                         bool last_only = false) {
  StepBatch b;
  for (int s : which) {
    const Seq& sq = seqs[size_t(s)];
    const int q = rows > 0 ? rows : 1 + s % 4;
    std::vector<int32_t> toks = {sq.tokens.back()};
    for (int i = 1; i < q; i++) toks.push_back(int32_t((sq.tokens.back() * 7 + i * 13) % vocab));
    b.add_contiguous(toks, sq.computed, !last_only, s * kSlotsPerSeq);
  }
  return b;
}

inline std::vector<float> host(Backend& be, const Tensor& t) {
  std::vector<float> v(size_t(t.numel()));
  be.copy_to_host(v.data(), t);
  return v;
}

// Runs the same steps on two copies of a small generated model with two MTP
// layers, op by op on `eager` and with graphs on `graphed` (a backend that
// can capture): target steps and MTP steps over the same batches. Compares
// logits and hidden states within `tol`. max_graphs: the model's graph limit
// (a small one makes graphs evicted and captured again).
inline void expect_graph_steps_match(Backend& eager_be, Backend& graphed_be, float tol, int max_graphs = 256) {
  test::TempDir dir("graph-model");
  MakerOptions m;
  m.vocab = 300;
  m.hidden = 64;
  m.layers = 3;
  m.full_layers = {0};
  m.window = 8;
  m.experts = 8;
  m.top_k = 2;
  m.mtp_layers = 2;
  m.seed = 5;
  make_checkpoint(m, dir.path());
  ModelLoadOptions o;
  o.dtype = "float32";
  LoadedModel eager = load_model(dir.path(), eager_be, o), graphed = load_model(dir.path(), graphed_be, o);
  ASSERT_TRUE(graphed_be.can_capture());
  graphed.model->enable_graphs(16, max_graphs);
  const int S = 11, V = m.vocab, H = m.hidden;
  KvCache kv_e(eager.model->spec(), eager_be, DType::F32, {S * kSlotsPerSeq, S * kSlotsPerSeq}, 2);
  KvCache kv_g(graphed.model->spec(), graphed_be, DType::F32, {S * kSlotsPerSeq, S * kSlotsPerSeq}, 2);

  // Prompts of different lengths, prefilled in one (ungraphed) step each.
  std::vector<Seq> seqs(S);
  for (int s = 0; s < S; s++) {
    for (int i = 0; i < 3 + 5 * s; i++) seqs[size_t(s)].tokens.push_back(int32_t((i * 31 + s * 17 + 1) % V));
    StepBatch b;
    b.add_contiguous(seqs[size_t(s)].tokens, 0, false, s * kSlotsPerSeq);
    b.validate(kv_e.slots(0), kv_e.slots(1));
    eager.model->forward(b, kv_e);
    graphed.model->forward(b, kv_g);
    seqs[size_t(s)].computed = int32_t(seqs[size_t(s)].tokens.size());
  }
  // Prompts of up to kMaxGraphRows tokens ran as graphs too (2 of them).
  const int64_t replays0 = graphed.model->graph_replays();
  EXPECT_EQ(replays0, 2);

  // Decode (1 row), verify (4 rows) and ragged steps over changing subsets:
  // sizes that pad (3 -> 4, 5 -> 8, 11 -> 16), contexts that cross a
  // capacity bucket (64 -> 128), logits for all rows or the last of each
  // sequence, graphs reused on new contents; after each target step, the
  // two MTP layers over the same batch with its hidden states.
  const std::vector<std::vector<int>> subsets = {{0}, {2, 5, 7}, {0, 1, 2, 3, 4}, {1, 3, 4, 6, 8, 10, 9, 7, 5, 2, 0},
                                                 {4}, {6, 2, 9}};
  int steps = 0;
  for (int round = 0; round < 6; round++)
    for (int rows : {1, 4, 0})
      for (const auto& which : subsets) {
        const std::string what = "round " + std::to_string(round) + " rows " + std::to_string(rows) + " seqs " +
                                 std::to_string(which.size());
        StepBatch b = step_of(seqs, which, rows, V, round % 2 == 1);
        const Tensor& le = eager.model->forward(b, kv_e);
        std::vector<float> lg_e = host(eager_be, le), h_e = host(eager_be, eager.model->hidden());
        const Tensor& lg = graphed.model->forward(b, kv_g);
        ASSERT_EQ(lg.shape(), le.shape()) << what;
        std::vector<float> lg_g = host(graphed_be, lg), h_g = host(graphed_be, graphed.model->hidden());
        ASSERT_EQ(h_g.size(), h_e.size());
        EXPECT_LE(test::max_abs_diff(lg_e.data(), lg_g.data(), lg_e.size()), tol) << what;
        EXPECT_LE(test::max_abs_diff(h_e.data(), h_g.data(), h_e.size()), tol) << what;
        steps++;
        for (int k = 0; k < 2; k++) {
          Tensor hin_e = eager_be.alloc({b.num_tokens(), H}, DType::F32), hin_g = graphed_be.alloc({b.num_tokens(), H}, DType::F32);
          eager_be.copy_from_host(hin_e, h_e.data());
          graphed_be.copy_from_host(hin_g, h_e.data());
          std::vector<float> me = host(eager_be, eager.model->mtp_forward(k, b, hin_e, kv_e));
          std::vector<float> mg = host(graphed_be, graphed.model->mtp_forward(k, b, hin_g, kv_g));
          ASSERT_EQ(me.size(), mg.size()) << what << " MTP " << k;
          EXPECT_LE(test::max_abs_diff(me.data(), mg.data(), me.size()), tol) << what << " MTP " << k;
          steps++;
        }
        // Each sequence's first token is accepted, so contexts grow.
        for (size_t i = 0; i < which.size(); i++) {
          Seq& sq = seqs[size_t(which[i])];
          const int row = round % 2 == 1 ? int(i) : b.q_start[i];
          const float* r = lg_e.data() + size_t(row) * size_t(V);
          sq.tokens.push_back(int32_t(std::max_element(r, r + V) - r));
          sq.computed++;
        }
      }
  EXPECT_EQ(graphed.model->graph_replays() - replays0, steps) << "every decode, verify and draft step ran as a graph";
  EXPECT_GT(graphed.model->graph_captures(), 0);
  if (max_graphs >= 64) EXPECT_LT(graphed.model->graph_captures(), steps / 2) << "graphs are reused across steps";
  else EXPECT_GT(graphed.model->graph_captures(), 2 * max_graphs) << "graphs are evicted and captured again";
  EXPECT_GT(seqs[10].computed, 64) << "the test should cross a context bucket";

  // Steps that do not qualify run op by op: more sequences than max_bs,
  // and logits for several rows of a sequence but not all.
  int64_t before = graphed.model->graph_replays();
  graphed.model->enable_graphs(2);
  for (StepBatch bb : {step_of(seqs, {0, 1, 2}, 1, V), step_of(seqs, {0, 1}, 3, V, true)}) {
    if (bb.num_seqs() == 2) bb.logit_rows = {0, 1, 2};
    std::vector<float> lg_e = host(eager_be, eager.model->forward(bb, kv_e));
    std::vector<float> lg_g = host(graphed_be, graphed.model->forward(bb, kv_g));
    ASSERT_EQ(lg_e.size(), lg_g.size());
    EXPECT_LE(test::max_abs_diff(lg_e.data(), lg_g.data(), lg_e.size()), tol);
  }
  EXPECT_EQ(graphed.model->graph_replays(), before);
}

}  // namespace mimo::test
