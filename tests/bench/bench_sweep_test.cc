// The SWA KV-memory claim (a request holds O(window) KV on sliding layers)
// measured from the engine's own pool allocators after a chunked prefill
// and some decode steps, against the formula; and bench-prefill /
// bench-decode end to end on a tiny random checkpoint (JSON fields and rows,
// SVG output, and clear errors for bad flags).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "bench/svg_chart.h"
#include "bench/sweep.h"
#include "engine/engine.h"
#include "kv/kv_cache.h"
#include "loader/checkpoint_maker.h"
#include "loader/load_model.h"
#include "test_util.h"

namespace mimo {
namespace {

// A tiny hybrid model: 4 layers (layer 0 full, 1..3 sliding with W = 16).
std::string tiny_checkpoint(const test::TempDir& dir, int mtp_layers) {
  MakerOptions o = MakerOptions::preset("tiny");
  o.mtp_layers = mtp_layers;
  o.window = 16;
  std::string path = dir / "model";
  make_checkpoint(o, path);
  return path;
}

struct KvCase {
  int page, prompt, max_new, chunk;
};

class SwaKvTest : public ::testing::TestWithParam<KvCase> {};

TEST_P(SwaKvTest, MeasuredSlotsMatchTheFormula) {
  const KvCase k = GetParam();
  test::TempDir dir("swa-kv");
  auto be = make_cpu_backend();
  LoadedModel lm = load_model(tiny_checkpoint(dir, 0), *be);
  const ModelSpec& spec = lm.model->spec();
  ASSERT_EQ(spec.count(AttnKind::Full), 1);
  ASSERT_EQ(spec.count(AttnKind::Sliding), 3);
  EngineConfig c;
  c.kv_dtype = lm.weight_dtype;
  c.disable_radix_cache = true;  // nothing kept for reuse: the request's own KV only
  c.disable_overlap_schedule = true;
  c.page_size = k.page;
  c.chunked_prefill_size = k.chunk;
  c.max_total_tokens = 1024;
  Engine e(c, *lm.model);
  EngineRequest r;
  for (int i = 0; i < k.prompt; i++) r.input_ids.push_back(int32_t((i * 37 + 5) % spec.vocab_size));
  r.sampling.max_new_tokens = k.max_new;
  r.sampling.ignore_eos = true;
  auto h = e.submit(r)[0];
  int got = 0;
  for (;;) {
    EngineOutput o;
    ASSERT_TRUE(h->next(&o, std::chrono::seconds(120)));
    got += int(o.token_ids.size());
    if (o.finished) break;
  }
  ASSERT_EQ(got, k.max_new);
  e.shutdown(true);
  EngineStats s = e.stats();
  // The last step computed the KV of every position but the final token's.
  const int64_t ctx = k.prompt + k.max_new - 1;
  const int W = 16;
  bench::KvFormula f = bench::kv_formula(spec, ctx, lm.weight_dtype, bench::swa_rest_slack(ctx, W, k.page));
  EXPECT_EQ(f.full_layers, 1);
  EXPECT_EQ(f.swa_layers, 3);
  EXPECT_EQ(s.after_step_full_used, ctx + bench::full_rest_slack(ctx, k.page));
  EXPECT_EQ(s.after_step_swa_used, f.swa_tokens) << "SWA slots held after the last step (W = " << W << ")";
  if (k.page == 1) {
    EXPECT_EQ(s.after_step_swa_used, std::min<int64_t>(ctx, W));
  }
  // Bytes: the pools' slots times the bytes a slot takes in each pool, against
  // the formula summed layer by layer (nkv * (Dk + Dv) * dtype bytes).
  KvCache probe(spec, *be, c.kv_dtype, {0, 0});
  const double measured = double(s.after_step_full_used) * double(probe.bytes_per_token(kPoolFull)) +
                          double(s.after_step_swa_used) * double(probe.bytes_per_token(kPoolSwa));
  const double formula_full = double(ctx + bench::full_rest_slack(ctx, k.page)) * 1 * 2 * (48 + 32) * 4.0;
  const double formula_swa = double(f.swa_tokens) * 3 * 4 * (48 + 32) * 4.0;  // tiny: kv 2 / swa kv 4, Dk 48, Dv 32
  EXPECT_DOUBLE_EQ(f.swa_bytes, formula_swa);
  EXPECT_DOUBLE_EQ(measured, formula_full + formula_swa);
  // While the prefill ran, a whole chunk's SWA slots were held (freed after).
  EXPECT_GE(s.step_swa_used_max, std::min(k.chunk, k.prompt));
}

INSTANTIATE_TEST_SUITE_P(Pages, SwaKvTest,
                         ::testing::Values(KvCase{1, 200, 9, 64}, KvCase{4, 201, 9, 64}, KvCase{4, 203, 6, 1000},
                                           KvCase{1, 10, 3, 64}));

TEST(KvFormula, WindowBoundsSlidingLayersOnly) {
  ModelSpec spec;
  LayerSpec full, swa;
  full.attn = {AttnKind::Full, 8, 2, 64, 32};
  swa.attn = {AttnKind::Sliding, 8, 4, 64, 32};
  swa.attn.window = 128;
  spec.layers = {full, swa, swa};
  bench::KvFormula f = bench::kv_formula(spec, 8192, DType::BF16);
  EXPECT_DOUBLE_EQ(f.full_bytes, 8192.0 * 2 * 96 * 2);
  EXPECT_DOUBLE_EQ(f.swa_bytes, 2 * 128.0 * 4 * 96 * 2);
  EXPECT_EQ(bench::kv_formula(spec, 100, DType::BF16).swa_tokens, 100);  // shorter than the window
  EXPECT_EQ(bench::swa_rest_slack(8192, 128, 1), 0);
  EXPECT_EQ(bench::swa_rest_slack(8193, 128, 16), 16);  // pages [8064, 8208) hold 144 slots
  EXPECT_EQ(bench::full_rest_slack(8193, 16), 15);
}

TEST(SvgChart, RendersSeriesTicksAndLegend) {
  bench::chart::Panel p = bench::chart::panel("t<1>", "x", "y", true);
  p.series.push_back(bench::chart::series("a & b"));
  p.series.back().x = {1, 2, 4, 8};
  p.series.back().y = {1, 3, 2, 5};
  p.series.push_back(bench::chart::series("c", true));
  p.series.back().x = {1, 8};
  p.series.back().y = {0.5, std::nan("")};
  std::string s = bench::chart::render({p, p});
  EXPECT_EQ(s.rfind("<svg", 0), 0u);
  EXPECT_NE(s.find("a &amp; b"), std::string::npos);
  EXPECT_NE(s.find("t&lt;1&gt;"), std::string::npos);
  EXPECT_NE(s.find("log2 scale"), std::string::npos);
  EXPECT_NE(s.find(">8</text>"), std::string::npos);  // a power-of-two x tick
  EXPECT_NE(s.find("stroke-dasharray"), std::string::npos);
  EXPECT_EQ(bench::chart::nice_ticks(0, 10, 5), (std::vector<double>{0, 2, 4, 6, 8, 10}));
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream f(path);
  EXPECT_TRUE(f.good()) << path;
  std::stringstream ss;
  ss << f.rdbuf();
  return nlohmann::json::parse(ss.str());
}

TEST(BenchCli, PrefillWritesJsonAndPlot) {
  test::TempDir dir("bench-prefill");
  std::string model = tiny_checkpoint(dir, 0);
  std::string out;
  std::string cmd = test::binary() + " bench-prefill --model-path " + model +
                    " --input-lens 32,64 --warmup-len 8 --threads 2 --bandwidth-mib 16 --gemm-n 64 --json " +
                    (dir / "p.json") + " --plot " + (dir / "p.svg");
  ASSERT_EQ(test::run_command(cmd, &out), 0) << out;
  EXPECT_NE(out.find("SWA KV memory"), std::string::npos) << out;
  nlohmann::json j = read_json(dir / "p.json");
  EXPECT_GT(j["machine"]["read_bandwidth_gb_s"].get<double>(), 0);
  EXPECT_GT(j["machine"]["gemm_peak_gflop_s"].get<double>(), 0);
  ASSERT_EQ(j["results"].size(), 4u);
  for (auto& r : j["results"]) {
    for (const char* k : {"variant", "input_len", "prefill_s", "prefill_tok_s", "gflop", "frac_gemm_peak",
                          "kv_bytes", "kv_formula_bytes", "kv_full_slots", "kv_swa_slots", "kv_measured_over_formula"})
      EXPECT_TRUE(r.contains(k)) << k;
    EXPECT_GT(r["prefill_s"].get<double>(), 0);
    EXPECT_GT(r["gflop"].get<double>(), 0);
    // Page 1: the request holds exactly the formula's KV.
    EXPECT_DOUBLE_EQ(r["kv_measured_over_formula"].get<double>(), 1.0) << r.dump();
    if (r["variant"] == "hybrid") {
      EXPECT_EQ(r["kv_swa_slots"].get<int>(), 16);
    } else {
      EXPECT_EQ(r["kv_swa_slots"].get<int>(), 0);
    }
  }
  EXPECT_TRUE(j["ratio_all_full_over_hybrid"].contains("32"));
  EXPECT_TRUE(j["ratio_all_full_over_hybrid"].contains("64"));
  std::ifstream svg(dir / "p.svg");
  std::string head(4, '\0');
  svg.read(head.data(), 4);
  EXPECT_EQ(head, "<svg");
}

TEST(BenchCli, DecodeWritesJsonAndPlot) {
  test::TempDir dir("bench-decode");
  std::string model = tiny_checkpoint(dir, 1);
  std::string out;
  std::string cmd = test::binary() + " bench-decode --model-path " + model +
                    " --batch-sizes 1,2 --input-len 24 --input-lens 16,40 --output-len 4 --mtp-steps 1 --threads 2 "
                    "--skip-machine --no-paired-probes --json " +
                    (dir / "d.json") + " --plot " + (dir / "d.svg");
  ASSERT_EQ(test::run_command(cmd, &out), 0) << out;
  nlohmann::json j = read_json(dir / "d.json");
  ASSERT_TRUE(j.contains("machine"));
  std::map<std::string, int> rows;
  for (auto& r : j["results"]) {
    for (const char* k : {"sweep", "mode", "depth", "batch_size", "input_len", "tok_s_per_request", "total_tok_s",
                          "bytes_per_step", "frac_read_bw", "accept_length", "speedup_vs_batch1"})
      EXPECT_TRUE(r.contains(k)) << k;
    EXPECT_GT(r["tok_s_per_request"].get<double>(), 0) << r.dump();
    EXPECT_GT(r["bytes_per_step"].get<double>(), 0) << r.dump();
    rows[r["mode"].get<std::string>() + "/" + r["sweep"].get<std::string>()]++;
    if (r["mode"] == "mtp") {
      EXPECT_EQ(r["depth"].get<int>(), 1);
      EXPECT_GE(r["accept_length"].get<double>(), 1.0);
    }
  }
  for (const char* m : {"plain", "engine", "mtp"}) {
    EXPECT_EQ(rows[std::string(m) + "/batch"], 2) << m;
    EXPECT_EQ(rows[std::string(m) + "/input_len"], 2) << m;
  }
  EXPECT_TRUE(std::filesystem::exists(dir / "d.svg"));
}

TEST(BenchCli, OneBatchWritesPlot) {
  test::TempDir dir("bench-one-batch");
  std::string model = tiny_checkpoint(dir, 0);
  std::string out;
  std::string cmd = test::binary() + " bench-one-batch --model-path " + model +
                    " --batch-size 1,2 --input-len 16 --output-len 3 --threads 2 --skip-machine --no-paired-probes"
                    " --plot " + (dir / "o.svg") + " --json " + (dir / "o.json");
  ASSERT_EQ(test::run_command(cmd, &out), 0) << out;
  std::ifstream f(dir / "o.svg");
  std::stringstream ss;
  ss << f.rdbuf();
  EXPECT_EQ(ss.str().rfind("<svg", 0), 0u);
  EXPECT_NE(ss.str().find("Decode throughput vs batch size"), std::string::npos);
  // The decode op split gives each family's read rate, from the bytes the
  // JSON reports per step: a batch-2 step reads the same weights as batch 1
  // (dense ones; the experts only grow) and at least as much KV.
  EXPECT_NE(out.find("batch   1 decode   linear"), std::string::npos) << out;
  EXPECT_NE(out.find(" GB/s) attention"), std::string::npos) << out;
  const nlohmann::json j = read_json(dir / "o.json");
  const nlohmann::json& b1 = j["results"][0]["decode_op_bytes_per_step"];
  const nlohmann::json& b2 = j["results"][1]["decode_op_bytes_per_step"];
  EXPECT_GT(b1["linear"].get<double>(), 0);
  EXPECT_GT(b1["attention"].get<double>(), 0);
  EXPECT_DOUBLE_EQ(b2["linear"].get<double>(), b1["linear"].get<double>());
  EXPECT_GE(b2["attention"].get<double>(), b1["attention"].get<double>());
  EXPECT_GE(b2["moe"].get<double>(), b1["moe"].get<double>());
  EXPECT_EQ(b1["rope"].get<double>(), 0);
  // The families' means add up to the step's bytes (a median over steps).
  const double step = j["results"][0]["decode_bytes_per_step"].get<double>();
  EXPECT_NEAR(b1["linear"].get<double>() + b1["attention"].get<double>() + b1["moe"].get<double>(), step, 0.2 * step);
}

// A bench command that must exit non-zero with `says` in its output.
void expect_fails_saying(const std::string& cmd, const std::string& says) {
  std::string out;
  int rc = test::run_command(cmd, &out);
  EXPECT_NE(rc, 0) << cmd;
  EXPECT_NE(out.find(says), std::string::npos) << cmd << "\n" << out;
}

TEST(BenchCli, BadFlagsFailClearly) {
  test::TempDir dir("bench-flags");
  std::string model = tiny_checkpoint(dir, 0);
  struct Case {
    std::string args, says;
  };
  for (const Case& c : std::vector<Case>{
           {"bench-prefill --input-lens 32,abc", "--input-lens"},
           {"bench-prefill --input-lens 0", "--input-lens"},
           {"bench-prefill --page-size 0", "--page-size"},
           {"bench-prefill --repeats 0", "--repeats"},
           {"bench-decode --batch-sizes 1,x", "--batch-sizes"},
           {"bench-decode --input-lens 1", "--input-lens"},
           {"bench-decode --mtp-steps 5", "--mtp-steps"},
           {"bench-decode --output-len 1", "--output-len"},
           {"bench-one-batch --batch-size 1,x", "--batch-size: 'x' is not an integer >= 1"},
           {"bench-one-batch --threads -1", "--threads: must be zero or more, got -1"},
           {"bench-prefill --repeats two", "--repeats"},
       }) {
    expect_fails_saying(test::binary() + " " + c.args + " --skip-machine --model-path " + model, c.says);
  }
}

// bench-spec on the embedded default model (trained, with 3 MTP layers and
// held-out text): it fails if any speculative greedy output differs from
// plain decoding, so a clean exit is itself the correctness check.
TEST(BenchCli, SpecComparesDepthsAgainstPlainDecoding) {
  test::TempDir dir("bench-spec");
  std::string out;
  std::string cmd = test::binary() +
                    " bench-spec --batch-sizes 1,2 --depths 0,1,auto --input-len 32 --output-len 8 --repeats 2 "
                    "--threads 1 --json " +
                    (dir / "s.json");
  ASSERT_EQ(test::run_command(cmd, &out), 0) << out;
  EXPECT_NE(out.find("prompts: windows of"), std::string::npos) << out;
  EXPECT_EQ(out.find(" NO ("), std::string::npos) << out;
  const nlohmann::json j = read_json(dir / "s.json");
  for (const char* bs : {"1", "2"})
    for (const char* d : {"0", "1", "auto"}) {
      ASSERT_TRUE(j["decode"][bs].contains(d)) << bs << " " << d << "\n" << j.dump();
      const nlohmann::json& r = j["decode"][bs][d];
      EXPECT_GT(r["tok_s_per_req"].get<double>(), 0) << r.dump();
      const auto steps = r["steps_by_depth"].get<std::vector<int64_t>>();
      ASSERT_EQ(steps.size(), 4u);
      if (std::string(d) == "0") {
        EXPECT_EQ(r["accept_length"].get<double>(), 0.0) << r.dump();
        EXPECT_EQ(steps[1] + steps[2] + steps[3], 0) << r.dump();
      }
      if (std::string(d) == "1") {
        // Accept length counts the bonus token: 1 + accepted drafts, at most 1 + depth.
        EXPECT_GE(r["accept_length"].get<double>(), 1.0) << r.dump();
        EXPECT_LE(r["accept_length"].get<double>(), 2.0) << r.dump();
        EXPECT_GT(steps[1], 0) << r.dump();
        EXPECT_EQ(steps[2] + steps[3], 0) << r.dump();
      }
    }
  const double with = j["overlap"]["idle_with"].get<double>(), without = j["overlap"]["idle_without"].get<double>();
  EXPECT_GE(with, 0.0);
  EXPECT_LT(with, 1.0);
  EXPECT_GE(without, 0.0);
  EXPECT_LT(without, 1.0);
  // The mixed load: 32 requests of --output-len tokens and one of 8x.
  EXPECT_NE(out.find("mixed load (32 x 8 tokens + 1 x 64 tokens)"), std::string::npos) << out;
  for (const char* d : {"0", "1", "auto"}) {
    ASSERT_TRUE(j["mixed"].contains(d)) << d;
    EXPECT_GT(j["mixed"][d]["wall_s"].get<double>(), 0);
    EXPECT_GT(j["mixed"][d]["total_tok_s"].get<double>(), 0);
  }
  int64_t auto_steps = 0;
  for (int64_t n : j["mixed"]["auto"]["steps_by_depth"].get<std::vector<int64_t>>()) auto_steps += n;
  EXPECT_GT(auto_steps, 0);
}

TEST(BenchCli, SpecBadFlagsFailClearly) {
  test::TempDir dir("bench-spec-flags");
  const std::string no_mtp = tiny_checkpoint(dir, 0);
  struct Case {
    std::string args, says;
  };
  for (const Case& c : std::vector<Case>{
           {"--depths 0,4", "--depths: depth 4 needs 4 MTP layers"},
           {"--depths 1,x", "--depths"},
           {"--depths 0,-1", "--depths"},
           {"--batch-sizes 0", "--batch-sizes"},
           {"--batch-sizes 1,,2", "--batch-sizes"},
           {"--input-len 100000", "--input-len 100000 does not fit"},
           {"--output-len 0", "--output-len: must be positive"},
           {"--repeats x", "--repeats: 'x' is not a number"},
           {"--heldout " + (dir / "missing.txt"), "--heldout: no such file"},
           {"--sections decode,typo", "unknown section 'typo'"},
           {"--model-path " + no_mtp, "has no MTP layers"},
       }) {
    // Small runs where a case leaves a flag alone (the options may be given once).
    std::string cmd = test::binary() + " bench-spec " + c.args;
    for (const char* def : {"--sections decode", "--batch-sizes 1", "--output-len 2", "--repeats 1"})
      if (c.args.find(std::string(def).substr(0, std::string(def).find(' '))) == std::string::npos) cmd += std::string(" ") + def;
    expect_fails_saying(cmd, c.says);
  }
}

}  // namespace
}  // namespace mimo
