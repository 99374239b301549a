// The engine against the logits and greedy continuation that Hugging Face
// transformers produced for the shared tiny-a fixture.
#include <gtest/gtest.h>

#include "engine/generate.h"
#include "loader/load_model.h"
#include "test_util.h"

namespace mimo {
namespace {

struct GoldenCase {
  std::vector<int32_t> ids;
  std::vector<float> logits;
};

class GoldenTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    dir_ = test::fixture("mimo-tiny-a");
    Checkpoint g = Checkpoint::open(dir_ + "/golden.safetensors");
    for (int c = 0; c < 4; c++) {
      std::string p = "case" + std::to_string(c) + ".";
      cases_.push_back({test::read_vector<int32_t>(g, p + "input_ids"), test::read_vector<float>(g, p + "logits")});
    }
    prompt_ = test::read_vector<int32_t>(g, "greedy.prompt_ids");
    expected_ = test::read_vector<int32_t>(g, "greedy.output_ids");
    backend_ = make_cpu_backend();
    ModelLoadOptions o;
    o.dtype = GetParam();
    lm_ = load_model(dir_, *backend_, o);
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
  std::unique_ptr<Backend> backend_;
  LoadedModel lm_;
};

TEST_P(GoldenTest, PromptLogitsOneForward) {
  for (auto& c : cases_) {
    GenerateResult r = generate(*lm_.model, c.ids, opts(0));
    ASSERT_EQ(size_t(r.prompt_logits.numel()), c.logits.size());
    float d = test::max_abs_diff(r.prompt_logits.ptr<float>(), c.logits.data(), c.logits.size());
    EXPECT_LE(d, tolerance()) << "case of length " << c.ids.size();
    std::printf("[%s] case len %zu: max abs diff %.3g\n", GetParam().c_str(), c.ids.size(), double(d));
  }
}

TEST_P(GoldenTest, PromptLogitsTokenByTokenThroughCache) {
  for (auto& c : cases_)
    for (int chunk : {1, 3, 16}) {
      GenerateResult r = generate(*lm_.model, c.ids, opts(chunk));
      float d = test::max_abs_diff(r.prompt_logits.ptr<float>(), c.logits.data(), c.logits.size());
      EXPECT_LE(d, tolerance()) << "case of length " << c.ids.size() << ", chunk " << chunk;
    }
}

TEST_P(GoldenTest, GreedyContinuation) {
  for (int chunk : {0, 1}) {
    GenerateOptions go;
    go.max_new_tokens = int(expected_.size());
    go.prefill_chunk = chunk;
    go.kv_dtype = lm_.weight_dtype;
    GenerateResult r = generate(*lm_.model, prompt_, go);
    EXPECT_EQ(r.output_ids, expected_) << "prefill chunk " << chunk;
  }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, GoldenTest, ::testing::Values("float32", "bfloat16"));

TEST(GoldenCli, GenerateMatchesAndDumpsLogits) {
  std::string dir = test::fixture("mimo-tiny-a");
  test::TempDir tmp("golden-cli");
  Checkpoint g = Checkpoint::open(dir + "/golden.safetensors");
  auto prompt = test::read_vector<int32_t>(g, "greedy.prompt_ids");
  auto expected = test::read_vector<int32_t>(g, "greedy.output_ids");
  std::string ids;
  for (auto t : prompt) ids += (ids.empty() ? "" : ",") + std::to_string(t);
  std::string out;
  int rc = test::run_command(test::binary() + " generate --model-path " + dir + " --input-ids " + ids +
                                 " --max-new-tokens 24 --dump-logits " + (tmp / "l.safetensors"),
                             &out);
  ASSERT_EQ(rc, 0) << out;
  std::string want = "{\"output_ids\":[";
  for (size_t i = 0; i < expected.size(); i++) want += (i ? "," : "") + std::to_string(expected[i]);
  want += "]}";
  EXPECT_NE(out.find(want), std::string::npos) << out;
  Checkpoint dumped = Checkpoint::open(tmp / "l.safetensors");
  EXPECT_EQ(dumped.info("logits").shape, (std::vector<int64_t>{int64_t(prompt.size()), 512}));
}

}  // namespace
}  // namespace mimo
