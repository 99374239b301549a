// The engine against an independent float64 NumPy implementation
// (tools/reference/mimo_ref.py) on generated checkpoints whose shapes the
// shared fixture does not cover: grouped routing, routed_scaling_factor != 1,
// windows shorter than the prompt, rotary dims that are not a multiple of 8,
// FP8 with per-head scale grids, shards, both config styles.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "engine/generate.h"
#include "loader/checkpoint_maker.h"
#include "loader/load_model.h"
#include "test_util.h"

namespace mimo {
namespace {

struct RefCase {
  std::string name;
  MakerOptions opt;
  int prompt_len;
};

std::vector<RefCase> cases() {
  std::vector<RefCase> v;
  MakerOptions base;
  base.layers = 4;
  base.full_layers = {0, 3};
  base.seed = 11;
  {
    MakerOptions o = base;
    o.experts = 16;
    o.top_k = 3;
    o.n_group = 4;
    o.topk_group = 2;
    o.routed_scaling_factor = 2.5;
    v.push_back({"grouped_routing_scaled", o, 12});
  }
  {
    MakerOptions o = base;
    o.window = 4;
    v.push_back({"window_shorter_than_prompt", o, 30});
  }
  {
    MakerOptions o = base;
    o.hidden = 48;
    o.head_dim = 30;  // rotary dim int(30 * 0.334) = 10
    o.v_head_dim = 20;
    o.heads = 6;
    o.kv_heads = 3;
    o.swa_kv_heads = 6;
    o.config_style = "native";
    v.push_back({"odd_rotary_dim_native_config", o, 20});
  }
  {
    MakerOptions o = base;
    o.hidden = 160;
    o.dtype = "fp8";
    o.fp8_per_head_scales = true;
    o.head_dim = 192;
    o.v_head_dim = 128;
    o.shards = 3;
    o.mtp_layers = 3;
    o.null_scaling = true;
    v.push_back({"fp8_per_head_sharded_mtp", o, 18});
  }
  {
    MakerOptions o = base;
    o.dtype = "bfloat16";
    o.window = 8;
    o.partial_rotary_factor = 0.5;
    v.push_back({"bf16_checkpoint", o, 25});
  }
  return v;
}

class ReferenceTest : public ::testing::TestWithParam<RefCase> {};

TEST_P(ReferenceTest, LogitsAndGreedyMatchFloat64Reference) {
  const RefCase& c = GetParam();
  std::string out;
  ASSERT_EQ(test::run_command("/usr/bin/python3 -c 'import numpy'", &out), 0)
      << "the reference needs Debian's python3-numpy (scripts/install-deps.sh installs it): " << out;
  test::TempDir dir("ref-" + c.name);
  make_checkpoint(c.opt, dir.path());
  std::vector<int32_t> ids;
  std::string ids_s;
  for (int i = 0; i < c.prompt_len; i++) {
    ids.push_back(int32_t((i * 131 + 7) % c.opt.vocab));
    ids_s += (i ? "," : "") + std::to_string(ids.back());
  }
  const int n_new = 8;
  int rc = test::run_command("/usr/bin/python3 " + test::source_dir() + "/tools/reference/mimo_ref.py --model " +
                                 dir.path() + " --input-ids " + ids_s + " --out " + (dir / "ref.safetensors") +
                                 " --greedy " + std::to_string(n_new) +
                                 (c.opt.mtp_layers ? " --mtp-logits " + (dir / "mtp.safetensors") : ""),
                             &out);
  ASSERT_EQ(rc, 0) << out;
  auto j = nlohmann::json::parse(out.substr(out.find('{')));
  std::vector<int32_t> ref_greedy = j["output_ids"].get<std::vector<int32_t>>();
  Checkpoint refc = Checkpoint::open(dir / "ref.safetensors");
  std::vector<float> ref = test::read_vector<float>(refc, "logits");

  auto be = make_cpu_backend();
  ModelLoadOptions mo;
  mo.dtype = "float32";  // fp32 compute on dequantised weights: comparable to float64
  LoadedModel lm = load_model(dir.path(), *be, mo);
  GenerateOptions go;
  go.max_new_tokens = n_new;
  go.dump_prompt_logits = true;
  go.ignore_eos = true;
  for (int chunk : {0, 5}) {
    go.prefill_chunk = chunk;
    GenerateResult r = generate(*lm.model, ids, go);
    ASSERT_EQ(size_t(r.prompt_logits.numel()), ref.size());
    float d = test::max_abs_diff(r.prompt_logits.ptr<float>(), ref.data(), ref.size());
    std::printf("[%s] chunk %d: max abs diff vs float64 reference %.3g\n", c.name.c_str(), chunk, double(d));
    EXPECT_LE(d, 1e-4f) << c.name;
    EXPECT_EQ(r.output_ids, ref_greedy) << c.name;
  }
  if (c.opt.mtp_layers == 0) return;
  // MTP layers: layer k at position p reads (H_p, token_{p+k+1}).
  Model& m = *lm.model;
  KvCache kv(m.spec(), *be, DType::F32, {int64_t(ids.size()), int64_t(ids.size())}, m.num_mtp_layers());
  StepBatch sb;
  sb.add_contiguous(ids, 0, true);
  m.forward(sb, kv);
  const int64_t T = int64_t(ids.size()), H = m.spec().hidden_size, V = m.spec().vocab_size;
  Tensor hidden = Tensor::empty({T, H}, DType::F32);
  be->copy_to_host(hidden.data(), m.hidden());
  Checkpoint mref = Checkpoint::open(dir / "mtp.safetensors");
  ASSERT_EQ(m.num_mtp_layers(), c.opt.mtp_layers);
  for (int k = 0; k < m.num_mtp_layers(); k++) {
    int64_t n = T - k - 1;
    StepBatch mb;
    mb.add_contiguous(std::vector<int32_t>(ids.begin() + k + 1, ids.begin() + k + 1 + n), 0, true);
    Tensor h = be->upload(hidden.slice_rows(0, n));
    const Tensor& lg = m.mtp_forward(k, mb, h, kv);
    std::vector<float> got(size_t(n * V));
    be->copy_to_host(got.data(), lg);
    std::vector<float> want = test::read_vector<float>(mref, "mtp." + std::to_string(k) + ".logits");
    ASSERT_EQ(want.size(), got.size());
    float d = test::max_abs_diff(got.data(), want.data(), got.size());
    std::printf("[%s] MTP layer %d: max abs diff %.3g\n", c.name.c_str(), k, double(d));
    EXPECT_LE(d, 1e-4f);
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, ReferenceTest, ::testing::ValuesIn(cases()),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace mimo
