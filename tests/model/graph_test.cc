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

}  // namespace
}  // namespace mimo
