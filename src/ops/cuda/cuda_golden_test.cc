// The model on the CUDA backend against the logits and greedy continuation
// that Hugging Face transformers produced for the shared tiny-a fixture: the
// checks of tests/golden_checks.h, which tests/model/golden_test.cc runs on
// the CPU. The fixture directory comes from $MIMOSERVE_FIXTURES_DIR when set
// (the GPU machine gets a copy at another path), else from the build's default.
#include <gtest/gtest.h>

#include "golden_checks.h"

namespace mimo {
namespace {

class CudaGolden : public ::testing::TestWithParam<std::string> {
 protected:
  static std::unique_ptr<Backend>& gpu() {
    static std::unique_ptr<Backend> b = make_cuda_backend();
    return b;
  }
  void SetUp() override {
    if (!gpu()) GTEST_SKIP() << "no CUDA device: the CUDA golden test needs a GPU";
    std::string dir = test::fixture("mimo-tiny-a");
    g_ = test::Golden::load(dir);
    ModelLoadOptions o;
    o.dtype = GetParam();
    lm_ = load_model(dir, *gpu(), o);
  }
  test::Golden g_;
  LoadedModel lm_;
};

TEST_P(CudaGolden, PromptLogitsOneForward) {
  test::expect_golden_logits(*lm_.model, lm_.weight_dtype, g_, GetParam(), 0, "cuda");
}

TEST_P(CudaGolden, PromptLogitsChunkedThroughCache) {
  for (int chunk : {1, 3, 16}) test::expect_golden_logits(*lm_.model, lm_.weight_dtype, g_, GetParam(), chunk, "cuda");
}

TEST_P(CudaGolden, GreedyContinuation) { test::expect_golden_greedy(*lm_.model, lm_.weight_dtype, g_); }

INSTANTIATE_TEST_SUITE_P(Dtypes, CudaGolden, ::testing::Values("float32", "bfloat16"));

}  // namespace
}  // namespace mimo
