// The model on the CUDA backend against the logits and greedy continuation
// that Hugging Face transformers produced for the shared tiny-a fixture (the
// same checks as tests/model/golden_test.cc, which runs the CPU backend).
// The fixture directory comes from $MIMOSERVE_FIXTURES_DIR when set (the GPU
// machine gets a copy at another path), else from the build's default.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "engine/generate.h"
#include "loader/load_model.h"
#include "test_util.h"

namespace mimo {
namespace {

std::string fixture_dir(const std::string& name) {
  const char* env = std::getenv("MIMOSERVE_FIXTURES_DIR");
  std::string p = std::string(env && *env ? env : MIMOSERVE_FIXTURES_DIR) + "/" + name;
  if (!std::filesystem::exists(p)) ADD_FAILURE() << "fixture not found: " << p << " (set MIMOSERVE_FIXTURES_DIR)";
  return p;
}

struct GoldenCase {
  std::vector<int32_t> ids;
  std::vector<float> logits;
};

class CudaGolden : public ::testing::TestWithParam<std::string> {
 protected:
  static std::unique_ptr<Backend>& gpu() {
    static std::unique_ptr<Backend> b = make_cuda_backend();
    return b;
  }
  void SetUp() override {
    if (!gpu()) GTEST_SKIP() << "no CUDA device: the CUDA golden test needs a GPU";
    dir_ = fixture_dir("mimo-tiny-a");
    Checkpoint g = Checkpoint::open(dir_ + "/golden.safetensors");
    for (int c = 0; c < 4; c++) {
      std::string p = "case" + std::to_string(c) + ".";
      cases_.push_back({test::read_vector<int32_t>(g, p + "input_ids"), test::read_vector<float>(g, p + "logits")});
    }
    prompt_ = test::read_vector<int32_t>(g, "greedy.prompt_ids");
    expected_ = test::read_vector<int32_t>(g, "greedy.output_ids");
    ModelLoadOptions o;
    o.dtype = GetParam();
    lm_ = load_model(dir_, *gpu(), o);
  }
  float tolerance() const { return GetParam() == "float32" ? 1e-4f : 5e-2f; }
  GenerateOptions opts(int chunk) const {
    GenerateOptions go;
    go.max_new_tokens = 0;
    go.dump_prompt_logits = true;
    go.prefill_chunk = chunk;
    go.kv_dtype = lm_.weight_dtype;
    return go;
  }

  std::string dir_;
  std::vector<GoldenCase> cases_;
  std::vector<int32_t> prompt_, expected_;
  LoadedModel lm_;
};

TEST_P(CudaGolden, PromptLogitsOneForward) {
  for (auto& c : cases_) {
    GenerateResult r = generate(*lm_.model, c.ids, opts(0));
    ASSERT_EQ(size_t(r.prompt_logits.numel()), c.logits.size());
    float d = test::max_abs_diff(r.prompt_logits.ptr<float>(), c.logits.data(), c.logits.size());
    EXPECT_LE(d, tolerance()) << "case of length " << c.ids.size();
    std::printf("[cuda %s] case len %zu: max abs diff %.3g\n", GetParam().c_str(), c.ids.size(), double(d));
  }
}

TEST_P(CudaGolden, PromptLogitsChunkedThroughCache) {
  for (auto& c : cases_)
    for (int chunk : {1, 3, 16}) {
      GenerateResult r = generate(*lm_.model, c.ids, opts(chunk));
      float d = test::max_abs_diff(r.prompt_logits.ptr<float>(), c.logits.data(), c.logits.size());
      EXPECT_LE(d, tolerance()) << "case of length " << c.ids.size() << ", chunk " << chunk;
    }
}

TEST_P(CudaGolden, GreedyContinuation) {
  for (int chunk : {0, 1}) {
    GenerateOptions go;
    go.max_new_tokens = int(expected_.size());
    go.prefill_chunk = chunk;
    go.kv_dtype = lm_.weight_dtype;
    GenerateResult r = generate(*lm_.model, prompt_, go);
    EXPECT_EQ(r.output_ids, expected_) << "prefill chunk " << chunk;
  }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, CudaGolden, ::testing::Values("float32", "bfloat16"));

}  // namespace
}  // namespace mimo
