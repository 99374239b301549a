// Step graphs on the CPU: the model's graph path (padded batches, inputs in
// buffers the graph owns, bounds fixed at capture) through RecordingBackend,
// which records and replays ops as a CUDA stream capture does.
#include <gtest/gtest.h>

#include "graph_checks.h"
#include "ops/recording_backend.h"

namespace mimo {
namespace {

TEST(ModelGraphs, GraphStepsEqualOpByOpSteps) {
  auto cpu = make_cpu_backend();
  RecordingBackend rec(*cpu);
  test::expect_graph_steps_match(*cpu, rec, 1e-5f);
  EXPECT_GT(rec.captures(), 0);
  EXPECT_GT(rec.replays(), rec.captures());
}

TEST(ModelGraphs, EvictedGraphsAreCapturedAgain) {
  auto cpu = make_cpu_backend();
  RecordingBackend rec(*cpu);
  test::expect_graph_steps_match(*cpu, rec, 1e-5f, /*max_graphs=*/3);
}

TEST(ModelGraphs, AFailedCaptureFallsBackToOpByOp) {
  // A capture that throws (injected) leaves the backend usable: the step
  // runs op by op with the same logits, and that shape is not retried.
  auto cpu = make_cpu_backend();
  RecordingBackend rec(*cpu);
  test::TempDir dir("graph-fail");
  MakerOptions m;
  m.vocab = 200;
  make_checkpoint(m, dir.path());
  ModelLoadOptions o;
  o.dtype = "float32";
  LoadedModel eager = load_model(dir.path(), *cpu, o), graphed = load_model(dir.path(), rec, o);
  graphed.model->enable_graphs(8);
  KvCache kv_e(eager.model->spec(), *cpu, DType::F32, {64, 64}), kv_g(graphed.model->spec(), rec, DType::F32, {64, 64});
  rec.fail_captures(true);
  for (int step = 0; step < 3; step++) {
    StepBatch b;
    b.add_contiguous({int32_t(5 + step), int32_t(7 + step)}, 2 * step, true);
    std::vector<float> le = test::host(*cpu, eager.model->forward(b, kv_e));
    std::vector<float> lg = test::host(rec, graphed.model->forward(b, kv_g));
    ASSERT_EQ(le.size(), lg.size());
    EXPECT_LE(test::max_abs_diff(le.data(), lg.data(), le.size()), 1e-6f) << "step " << step;
  }
  EXPECT_EQ(graphed.model->graph_replays(), 0);
  EXPECT_EQ(rec.captures(), 0);
  // Other shapes still capture once the backend captures again.
  rec.fail_captures(false);
  StepBatch b;
  b.add_contiguous({9}, 6, true);
  std::vector<float> le = test::host(*cpu, eager.model->forward(b, kv_e));
  std::vector<float> lg = test::host(rec, graphed.model->forward(b, kv_g));
  EXPECT_LE(test::max_abs_diff(le.data(), lg.data(), le.size()), 1e-6f);
  EXPECT_EQ(graphed.model->graph_replays(), 1);
}

}  // namespace
}  // namespace mimo
