// The engine against the logits and greedy continuation that Hugging Face
// transformers produced for the shared tiny-a fixture.
#include <gtest/gtest.h>

#include "engine/generate.h"
#include "loader/load_model.h"
#include "golden_checks.h"
#include "test_util.h"

namespace mimo {
namespace {

class GoldenTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    g_ = test::Golden::load(test::fixture("mimo-tiny-a"));
    backend_ = make_cpu_backend();
    ModelLoadOptions o;
    o.dtype = GetParam();
    lm_ = load_model(test::fixture("mimo-tiny-a"), *backend_, o);
  }
  test::Golden g_;
  std::unique_ptr<Backend> backend_;
  LoadedModel lm_;
};

TEST_P(GoldenTest, PromptLogitsOneForward) {
  test::expect_golden_logits(*lm_.model, lm_.weight_dtype, g_, GetParam(), 0, "cpu");
}

TEST_P(GoldenTest, PromptLogitsTokenByTokenThroughCache) {
  for (int chunk : {1, 3, 16}) test::expect_golden_logits(*lm_.model, lm_.weight_dtype, g_, GetParam(), chunk, "cpu");
}

TEST_P(GoldenTest, GreedyContinuation) { test::expect_golden_greedy(*lm_.model, lm_.weight_dtype, g_); }

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
