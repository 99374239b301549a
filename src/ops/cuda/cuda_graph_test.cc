// The model's step graphs as CUDA graphs: decode and verify steps captured
// once per bucket and replayed must give what the same steps give op by op
// on the same GPU (tests/graph_checks.h; the CPU runs the same check through
// RecordingBackend).
#include <gtest/gtest.h>

#include "graph_checks.h"

namespace mimo {
namespace {

TEST(CudaGraphs, GraphStepsEqualOpByOpSteps) {
  std::unique_ptr<Backend> gpu = make_cuda_backend();
  if (!gpu) GTEST_SKIP() << "no CUDA device: the CUDA graph test needs a GPU";
  // One backend for both models: the op-by-op model never enables graphs.
  // cuBLAS may pick other kernels for the padded row counts, hence the tolerance.
  test::expect_graph_steps_match(*gpu, *gpu, 2e-4f);
}

}  // namespace
}  // namespace mimo
