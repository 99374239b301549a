// The checks against the logits and greedy continuation that Hugging Face
// transformers produced for the shared tiny-a fixture, for any backend:
// tests/model/golden_test.cc runs them on the CPU, src/ops/cuda's
// cuda_golden_test on a GPU.
#pragma once

#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "engine/generate.h"
#include "loader/load_model.h"
#include "test_util.h"

namespace mimo::test {

struct Golden {
  struct Case {
    std::vector<int32_t> ids;
    std::vector<float> logits;  // [len, vocab], every prompt position
  };
  std::vector<Case> cases;
  std::vector<int32_t> prompt, expected;  // the greedy continuation

  static Golden load(const std::string& fixture_dir) {
    Golden g;
    Checkpoint c = Checkpoint::open(fixture_dir + "/golden.safetensors");
    for (int k = 0; k < 4; k++) {
      std::string p = "case" + std::to_string(k) + ".";
      g.cases.push_back({read_vector<int32_t>(c, p + "input_ids"), read_vector<float>(c, p + "logits")});
    }
    g.prompt = read_vector<int32_t>(c, "greedy.prompt_ids");
    g.expected = read_vector<int32_t>(c, "greedy.output_ids");
    return g;
  }
};

// fp32 weights must match to fp32 rounding; bf16 ones to bf16's.
inline float golden_tolerance(const std::string& dtype) { return dtype == "float32" ? 1e-4f : 5e-2f; }

// Prompt logits of every case, in one forward (chunk 0) or `chunk` tokens
// at a time through the KV cache. `tag` labels the printed differences.
inline void expect_golden_logits(Model& m, DType kv_dtype, const Golden& g, const std::string& dtype, int chunk,
                                 const std::string& tag) {
  for (auto& c : g.cases) {
    GenerateOptions go;
    go.max_new_tokens = 0;
    go.dump_prompt_logits = true;
    go.prefill_chunk = chunk;
    go.kv_dtype = kv_dtype;
    GenerateResult r = generate(m, c.ids, go);
    ASSERT_EQ(size_t(r.prompt_logits.numel()), c.logits.size());
    float d = max_abs_diff(r.prompt_logits.ptr<float>(), c.logits.data(), c.logits.size());
    EXPECT_LE(d, golden_tolerance(dtype)) << "case of length " << c.ids.size() << ", chunk " << chunk;
    if (chunk == 0) std::printf("[%s %s] case len %zu: max abs diff %.3g\n", tag.c_str(), dtype.c_str(), c.ids.size(), double(d));
  }
}

// The greedy continuation, with the prompt in one forward and token by token.
inline void expect_golden_greedy(Model& m, DType kv_dtype, const Golden& g) {
  for (int chunk : {0, 1}) {
    GenerateOptions go;
    go.max_new_tokens = int(g.expected.size());
    go.prefill_chunk = chunk;
    go.kv_dtype = kv_dtype;
    EXPECT_EQ(generate(m, g.prompt, go).output_ids, g.expected) << "prefill chunk " << chunk;
  }
}

}  // namespace mimo::test
