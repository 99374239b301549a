// Loader: both config styles, FP8 block dequantisation, shards, and every
// kind of bad input ending in a mimo::Error that names the culprit.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <vector>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "engine/generate.h"
#include "kv/kv_cache.h"
#include "loader/checkpoint_maker.h"
#include "loader/config.h"
#include "loader/load_model.h"
#include "loader/tensor_reader.h"
#include "ops/cpu/kernels.h"
#include "test_util.h"

namespace mimo {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

json read_json(const std::string& p) {
  std::ifstream in(p);
  return json::parse(in);
}
void write_json(const std::string& p, const json& j) { std::ofstream(p) << j.dump(2); }

// The logits of every prompt position.
std::vector<float> prompt_logits(Model& m, const std::vector<int32_t>& ids) {
  GenerateOptions go;
  go.max_new_tokens = 0;
  go.dump_prompt_logits = true;
  GenerateResult r = generate(m, ids, go);
  return std::vector<float>(r.prompt_logits.ptr<float>(), r.prompt_logits.ptr<float>() + r.prompt_logits.numel());
}
std::vector<float> prompt_logits(const std::string& dir, const std::vector<int32_t>& ids, const std::string& dtype = "float32") {
  auto be = make_cpu_backend();
  ModelLoadOptions o;
  o.dtype = dtype;
  LoadedModel lm = load_model(dir, *be, o);
  return prompt_logits(*lm.model, ids);
}

// Expects `fn` to throw a mimo::Error whose message contains `needle`.
template <typename F>
void expect_error(F fn, const std::string& needle) {
  try {
    fn();
    ADD_FAILURE() << "no error; expected one mentioning '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << "message: " << e.what();
  }
}

// Hub-style config.json equivalent to a native-style one.
json native_to_hub(const json& n) {
  json h = n;
  for (auto k : {"layer_types", "mlp_layer_types", "rope_parameters", "rms_norm_eps"}) h.erase(k);
  json pat = json::array(), moe = json::array();
  for (auto& t : n["layer_types"]) pat.push_back(t == "sliding_attention" ? 1 : 0);
  for (auto& t : n["mlp_layer_types"]) moe.push_back(t == "sparse" ? 1 : 0);
  h["hybrid_layer_pattern"] = pat;
  h["moe_layer_freq"] = moe;
  h["swa_num_attention_heads"] = n["num_attention_heads"];
  h["swa_num_key_value_heads"] = 2 * n["num_key_value_heads"].get<int>();
  h["swa_head_dim"] = n["head_dim"];
  h["swa_v_head_dim"] = n["v_head_dim"];
  h["sliding_window_size"] = n["sliding_window"];
  h.erase("sliding_window");
  h["add_swa_attention_sink_bias"] = true;
  h["add_full_attention_sink_bias"] = false;
  h["rope_theta"] = n["rope_parameters"]["full_attention"]["rope_theta"];
  h["swa_rope_theta"] = n["rope_parameters"]["sliding_attention"]["rope_theta"];
  h["partial_rotary_factor"] = n["rope_parameters"]["full_attention"]["partial_rotary_factor"];
  h["layernorm_epsilon"] = n["rms_norm_eps"];
  h["scoring_func"] = "sigmoid";
  h["topk_method"] = "noaux_tc";
  h["routed_scaling_factor"] = nullptr;  // the hub writes null for 1.0
  return h;
}

TEST(Config, HubAndNativeStylesGiveTheSameModel) {
  std::string fx = test::fixture("mimo-tiny-a");
  test::TempDir tmp("hubcfg");
  fs::create_symlink(fs::absolute(fx + "/model.safetensors"), tmp / "model.safetensors");
  write_json(tmp / "config.json", native_to_hub(read_json(fx + "/config.json")));
  ModelSpec a = load_model_config(fx), b = load_model_config(tmp.path());
  ASSERT_EQ(a.num_layers(), b.num_layers());
  for (int l = 0; l < a.num_layers(); l++) {
    auto &x = a.layers[size_t(l)].attn, &y = b.layers[size_t(l)].attn;
    EXPECT_EQ(int(x.kind), int(y.kind));
    EXPECT_EQ(x.num_kv_heads, y.num_kv_heads);
    EXPECT_EQ(x.rotary_dim, y.rotary_dim);
    EXPECT_EQ(x.rope_theta, y.rope_theta);
    EXPECT_EQ(x.window, y.window);
    EXPECT_EQ(x.has_sink, y.has_sink);
    EXPECT_EQ(int(a.layers[size_t(l)].ffn), int(b.layers[size_t(l)].ffn));
  }
  EXPECT_EQ(b.moe.routed_scaling_factor, 1.0f);
  std::vector<int32_t> ids = {1, 5, 9, 200, 3, 77, 300, 12, 45, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  EXPECT_EQ(prompt_logits(fx, ids), prompt_logits(tmp.path(), ids));
}

TEST(Config, NativeFixtureValues) {
  ModelSpec s = load_model_config(test::fixture("mimo-tiny-a"));
  EXPECT_EQ(s.layers[0].attn.kind, AttnKind::Full);
  EXPECT_EQ(s.layers[0].attn.num_kv_heads, 2);
  EXPECT_EQ(s.layers[1].attn.num_kv_heads, 4);  // SWA doubles kv heads
  EXPECT_EQ(s.layers[1].attn.rotary_dim, 16);   // int(48 * 0.334)
  EXPECT_EQ(s.layers[1].attn.rope_theta, 10000.0);
  EXPECT_EQ(s.layers[0].attn.rope_theta, 5e6);
  EXPECT_TRUE(s.layers[1].attn.has_sink);
  EXPECT_FALSE(s.layers[0].attn.has_sink);
  EXPECT_EQ(s.layers[0].ffn, FfnKind::Dense);
  EXPECT_EQ(s.layers[1].ffn, FfnKind::MoE);
  EXPECT_FLOAT_EQ(s.layers[1].attn.value_scale, 0.707f);
}

TEST(Config, HubKeysAndQuantization) {
  json c = {{"vocab_size", 100}, {"hidden_size", 32}, {"intermediate_size", 64}, {"num_hidden_layers", 2},
            {"num_attention_heads", 4}, {"num_key_value_heads", 1}, {"swa_num_key_value_heads", 2},
            {"head_dim", 16}, {"swa_head_dim", 16}, {"v_head_dim", 8}, {"swa_v_head_dim", 8},
            {"hybrid_layer_pattern", {0, 1}}, {"moe_layer_freq", {0, 1}}, {"sliding_window_size", 8},
            {"n_routed_experts", 8}, {"num_experts_per_tok", 2}, {"moe_intermediate_size", 16}, {"n_group", 2},
            {"topk_group", 1}, {"routed_scaling_factor", 2.5}, {"layernorm_epsilon", 1e-6},
            {"partial_rotary_factor", 0.5}, {"rope_theta", 1e6}, {"swa_rope_theta", 1e4},
            {"quantization_config", {{"quant_method", "fp8"}, {"weight_block_size", {128, 128}}}}};
  ModelSpec s = parse_model_config(c);
  EXPECT_TRUE(s.quant.fp8);
  EXPECT_EQ(s.layers[1].attn.window, 8);
  EXPECT_EQ(s.layers[1].attn.num_kv_heads, 2);
  EXPECT_EQ(s.layers[0].attn.num_kv_heads, 1);
  EXPECT_EQ(s.layers[0].attn.rotary_dim, 8);
  EXPECT_EQ(s.moe.n_group, 2);
  EXPECT_FLOAT_EQ(s.moe.routed_scaling_factor, 2.5f);
  EXPECT_FLOAT_EQ(s.rms_eps, 1e-6f);
}

TEST(Config, InconsistentConfigsNameTheKey) {
  json base = read_json(test::fixture("mimo-tiny-a") + "/config.json");
  auto bad = [&](auto edit, const std::string& needle) {
    json c = base;
    edit(c);
    expect_error([&] { parse_model_config(c); }, needle);
  };
  bad([](json& c) { c.erase("hidden_size"); }, "hidden_size");
  bad([](json& c) { c["layer_types"].erase(0); }, "layer_types");
  bad([](json& c) { c["layer_types"][2] = "chunked"; }, "layer_types[2]");
  bad([](json& c) { c["num_key_value_heads"] = 3; }, "kv heads");
  bad([](json& c) { c["mlp_layer_types"][1] = "moe"; }, "mlp_layer_types[1]");
  bad([](json& c) { c["num_experts_per_tok"] = 9; }, "num_experts_per_tok");
  bad([](json& c) { c["n_group"] = 3; }, "n_group");
  bad([](json& c) { c["sliding_window"] = 0; }, "sliding_window");
  bad([](json& c) { c["vocab_size"] = "big"; }, "vocab_size");
  bad([](json& c) { c["quantization_config"] = {{"quant_method", "awq"}}; }, "quant_method");
}

TEST(Fp8, BlockDequantWithRaggedLastBlock) {
  const int64_t R = 200, C = 130;  // 2 x 2 blocks, the last ones ragged
  std::vector<uint8_t> q(size_t(R * C));
  std::vector<float> scale = {0.5f, 2.0f, 0.25f, 4.0f};
  for (int64_t i = 0; i < R * C; i++) q[size_t(i)] = uint8_t((i * 37) % 256 == 0x7f ? 1 : (i * 37) % 256);
  std::vector<float> out(size_t(R * C));
  dequant_fp8(q.data(), C, scale.data(), 2, 128, 128, 0, false, 0, R, 0, C, out.data());
  for (int64_t r : {0L, 127L, 128L, 199L})
    for (int64_t c : {0L, 127L, 128L, 129L}) {
      float want = fp8e4m3_to_f32(q[size_t(r * C + c)]) * scale[size_t((r / 128) * 2 + c / 128)];
      EXPECT_EQ(out[size_t(r * C + c)], want) << r << "," << c;
    }
}

TEST(Fp8, PerKvHeadScaleGrid) {
  // 2 kv heads of 192 rows: rows 0-127 -> scale row 0, 128-191 -> 1, 192-319 -> 2, 320-383 -> 3.
  const int64_t R = 384, C = 16;
  std::vector<uint8_t> q(size_t(R * C), 0x38);  // 1.0
  std::vector<float> scale = {1, 2, 3, 4};
  std::vector<float> out(size_t(R * C));
  dequant_fp8(q.data(), C, scale.data(), 1, 128, 128, 192, true, 0, R, 0, C, out.data());
  EXPECT_EQ(out[size_t(0 * C)], 1.0f);
  EXPECT_EQ(out[size_t(127 * C)], 1.0f);
  EXPECT_EQ(out[size_t(128 * C)], 2.0f);
  EXPECT_EQ(out[size_t(191 * C)], 2.0f);
  EXPECT_EQ(out[size_t(192 * C)], 3.0f);
  EXPECT_EQ(out[size_t(320 * C)], 4.0f);
  EXPECT_EQ(out[size_t(383 * C)], 4.0f);
}

TEST(Fp8, CodecRoundTrip) {
  EXPECT_EQ(fp8e4m3_to_f32(0x38), 1.0f);
  EXPECT_EQ(fp8e4m3_to_f32(0x7e), 448.0f);
  EXPECT_EQ(fp8e4m3_to_f32(0x01), std::ldexp(1.0f, -9));
  EXPECT_TRUE(std::isnan(fp8e4m3_to_f32(0x7f)));
  for (int c = 0; c < 256; c++)
    if ((c & 0x7f) != 0x7f) {
      EXPECT_EQ(f32_to_fp8e4m3(fp8e4m3_to_f32(uint8_t(c))) & 0xff, c == 0x80 ? 0x80 : c) << c;
    }
}

// Rounding to E4M3 is to the nearest code, ties to the even code: checked
// against a scan of every code on midpoints, neighbours and random values.
TEST(Fp8, EncodeIsNearestTiesToEven) {
  auto scan = [](float f) {
    const uint8_t sign = std::signbit(f) ? 0x80 : 0;
    const float a = std::fabs(f);
    if (a >= 448.f) return uint8_t(sign | 0x7e);
    int best = 0;
    float bd = INFINITY;
    for (int c = 0; c <= 0x7e; c++) {
      const float d = std::fabs(fp8e4m3_to_f32(uint8_t(c)) - a);
      if (d < bd || (d == bd && (c & 1) == 0)) bd = d, best = c;
    }
    return uint8_t(sign | best);
  };
  std::vector<float> xs = {0.0f, -0.0f, 1e-30f, 447.9f, 448.0f, 1e6f, -1e6f};
  for (int c = 0; c < 0x7e; c++) {
    const float lo = fp8e4m3_to_f32(uint8_t(c)), hi = fp8e4m3_to_f32(uint8_t(c + 1)), mid = (lo + hi) / 2;
    for (float x : {lo, hi, mid, std::nextafter(mid, 0.0f), std::nextafter(mid, 1e9f)}) xs.push_back(x), xs.push_back(-x);
  }
  std::mt19937 g(5);
  std::uniform_real_distribution<float> e(-12.0f, 9.5f);
  for (int i = 0; i < 20000; i++) xs.push_back(std::exp2(e(g)) * (i % 2 ? -1.0f : 1.0f));
  for (float x : xs) ASSERT_EQ(f32_to_fp8e4m3(x), scan(x)) << x;
}

// An FP8 checkpoint with the per-KV-head scale grid (2 kv heads x 192 rows of
// full-attention k) and a hidden size off the 128-column blocks.
MakerOptions fp8_ragged_per_head() {
  MakerOptions o;
  o.hidden = 160;  // ragged 128-blocks
  o.dtype = "fp8";
  o.fp8_per_head_scales = true;
  o.head_dim = 192;
  o.v_head_dim = 128;
  o.layers = 2;
  o.full_layers = {0};
  return o;
}

// FP8 checkpoints (plain and per-head grids, ragged blocks) load and run; the
// numbers themselves are checked against the float64 reference elsewhere.
TEST(Fp8, CheckpointLoadsAndMatchesItsDequantisedWeights) {
  test::TempDir tmp("fp8");
  make_checkpoint(fp8_ragged_per_head(), tmp.path());
  Checkpoint ck = Checkpoint::open(tmp.path());
  // k_proj of the full layer: 2 kv heads x 192 rows -> 4 scale rows (not 3).
  EXPECT_EQ(ck.info("model.layers.0.self_attn.k_proj.weight_scale_inv").shape, (std::vector<int64_t>{4, 2}));
  auto lg = prompt_logits(tmp.path(), {1, 2, 3, 4, 5});
  for (float x : lg) ASSERT_TRUE(std::isfinite(x));
  TensorReader rd(ck);
  ReadOptions ro;
  ro.rows_per_head = 192;
  std::vector<float> k(size_t(384 * 160));
  rd.read("model.layers.0.self_attn.k_proj.weight", DType::F32, k.data(), {}, ro);
  const TensorInfo& w = ck.info("model.layers.0.self_attn.k_proj.weight");
  const float* s = reinterpret_cast<const float*>(ck.info("model.layers.0.self_attn.k_proj.weight_scale_inv").data);
  // Row 200 belongs to head 1, its first block -> scale row 2.
  EXPECT_EQ(k[size_t(200 * 160 + 150)], fp8e4m3_to_f32(w.data[200 * 160 + 150]) * s[2 * 2 + 1]);
}

// FP8 matrices kept as FP8 (the CPU default for FP8 checkpoints) compute
// exactly what the dequantised fp32 weights compute: the kernels form each
// weight as fp8 * scale in fp32. Loaded both ways with fp32 for everything
// else, the logits are bit-identical. The hidden size (160) is off the
// 128-column blocks, so the MTP eh_proj halves (split at column 160) cannot
// stay FP8 and are dequantised; everything else on the grid is kept.
TEST(Fp8, NativeWeightsComputeTheDequantisedProduct) {
  test::TempDir tmp("fp8native");
  MakerOptions o = fp8_ragged_per_head();
  o.mtp_layers = 1;
  make_checkpoint(o, tmp.path());
  Checkpoint ck = Checkpoint::open(tmp.path());
  ASSERT_TRUE(has_fp8_weights(ck));
  ModelSpec spec = load_model_config(tmp.path());
  spec.num_mtp_layers = count_mtp_layers(ck);
  auto logits = [&](bool native) {
    auto be = make_cpu_backend();
    LoadOptions lo;
    lo.dtype = DType::F32;
    lo.native_fp8 = native;
    ModelWeights w = load_weights(ck, spec, *be, lo);
    if (native) {
      EXPECT_GT(w.fp8_matrices, 0);
      EXPECT_EQ(w.layers[0].attn.k.dtype(), DType::F8E4M3);  // per-KV-head scale grid, expanded per row
      EXPECT_EQ(w.layers[1].moe.gate_up.dtype(), DType::F8E4M3);
      EXPECT_EQ(w.embed.dtype(), DType::F32);                // the embedding table is gathered, never FP8
      EXPECT_EQ(w.mtp[0].eh_hidden.dtype(), DType::F32);     // column window off the blocks
    } else {
      EXPECT_EQ(w.fp8_matrices, 0);
    }
    Model m(spec, std::move(w), *be);
    return prompt_logits(m, {5, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8});
  };
  EXPECT_EQ(logits(true), logits(false));
  // What users get by default (auto: FP8 kept, bf16 elsewhere) stays close.
  std::vector<float> a = prompt_logits(tmp.path(), {5, 1, 4, 1, 5, 9}, "auto"), b = prompt_logits(tmp.path(), {5, 1, 4, 1, 5, 9});
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); i++) ASSERT_NEAR(a[i], b[i], 0.05 * (1 + std::fabs(b[i]))) << i;
}

// The CPU loads every matrix but the embedding table in row tiles (a tied
// lm_head stays the table; MIMOSERVE_CPU_ROW_TILES=1 makes it do so on any
// CPU), and the model computes the same bits as with row-major weights
// (MIMOSERVE_CPU_ROW_TILES=0).
TEST(Loader, CpuMatricesComeInRowTilesWithTheSameLogits) {
  test::TempDir tmp("rowtiles");
  MakerOptions o;
  o.mtp_layers = 1;
  make_checkpoint(o, tmp.path());
  Checkpoint ck = Checkpoint::open(tmp.path());
  ModelSpec spec = load_model_config(tmp.path());
  spec.num_mtp_layers = count_mtp_layers(ck);
  // The AMX path lays bf16 weights out its own way (AmxWeights test below).
  cpu::CpuFeatures no_amx = cpu::cpu_features();
  no_amx.amx = false;
  cpu::override_cpu_features(&no_amx);
  auto logits = [&](bool tiles) {
    setenv("MIMOSERVE_CPU_ROW_TILES", tiles ? "1" : "0", 1);
    auto be = make_cpu_backend();
    unsetenv("MIMOSERVE_CPU_ROW_TILES");
    LoadOptions lo;
    lo.dtype = DType::BF16;
    ModelWeights w = load_weights(ck, spec, *be, lo);
    EXPECT_EQ(w.layers[0].attn.q.layout() == Tensor::Layout::RowTiles, tiles);
    EXPECT_EQ(w.layers[1].moe.gate_up.layout() == Tensor::Layout::RowTiles, tiles);
    EXPECT_EQ(w.mtp[0].eh_hidden.layout() == Tensor::Layout::RowTiles, tiles);
    EXPECT_EQ(w.lm_head.layout() == Tensor::Layout::RowTiles, tiles && w.lm_head.data() != w.embed.data());
    EXPECT_FALSE(w.embed.layout() == Tensor::Layout::RowTiles);
    Model m(spec, std::move(w), *be);
    return prompt_logits(m, {5, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8});
  };
  EXPECT_EQ(logits(true), logits(false));
  cpu::override_cpu_features(nullptr);
}

// Decode streams the KV pools as it streams weights: on the CPU they go on
// huge pages too (2 MiB aligned, advised), which made decode attention at
// batch 16 ~30-40% faster in place.
TEST(Loader, CpuKvPoolsAreOnHugePagesAndResident) {
  ModelSpec spec = load_model_config(test::fixture("mimo-tiny-a"));
  auto be = make_cpu_backend();
  const AttnSpec& a = spec.layers[0].attn;
  const int64_t slots = (int64_t(4) << 20) / (int64_t(a.num_kv_heads) * a.head_dim * 2) + 1;  // >= 4 MiB per tensor
  KvCache kv(spec, *be, DType::BF16, {slots, slots});
  for (int l = 0; l < spec.num_layers(); l++)
    for (const Tensor* t : {&kv.k(l), &kv.v(l)})
      if (t->nbytes() >= (size_t(4) << 20)) {
        EXPECT_EQ(reinterpret_cast<uintptr_t>(t->data()) % (uintptr_t(2) << 20), 0u) << "layer " << l;
      }
  EXPECT_GE(kv.k(0).nbytes(), size_t(4) << 20);
  // ... and resident from the start: no page faults while serving (mincore:
  // a page not yet touched is not resident).
  for (const Tensor* t : {&kv.k(0), &kv.v(0), &kv.k(spec.num_layers() - 1)}) {
    const uintptr_t page = uintptr_t(sysconf(_SC_PAGESIZE)), at = reinterpret_cast<uintptr_t>(t->data());
    const uintptr_t from = at / page * page, len = at + t->nbytes() - from, n = (len + page - 1) / page;
    std::vector<unsigned char> resident(n);
    ASSERT_EQ(mincore(reinterpret_cast<void*>(from), len, resident.data()), 0);
    EXPECT_EQ(std::count_if(resident.begin(), resident.end(), [](unsigned char c) { return c & 1; }), int64_t(n));
  }
  // Activations and workspace stay on ordinary pages (host_alloc.h says why).
  Tensor small = be->alloc({int64_t(4) << 20}, DType::F32);
  EXPECT_NE(reinterpret_cast<uintptr_t>(small.data()) % (uintptr_t(2) << 20), 0u);
}

TEST(Shards, ShardedEqualsSingleFile) {
  test::TempDir a("one"), b("three");
  MakerOptions o;
  o.layers = 3;
  o.seed = 7;
  make_checkpoint(o, a.path());
  o.shards = 3;
  make_checkpoint(o, b.path());
  EXPECT_TRUE(fs::exists(b / "model.safetensors.index.json"));
  EXPECT_TRUE(fs::exists(b / "model-00003-of-00003.safetensors"));
  std::vector<int32_t> ids = {3, 1, 4, 1, 5, 9, 2, 6};
  EXPECT_EQ(prompt_logits(a.path(), ids), prompt_logits(b.path(), ids));
}

TEST(Shards, IndexNamingTheWrongShardIsAnError) {
  test::TempDir d("badindex");
  MakerOptions o;
  o.shards = 2;
  make_checkpoint(o, d.path());
  json idx = read_json(d / "model.safetensors.index.json");
  idx["weight_map"]["lm_head.weight"] = "model-00001-of-00002.safetensors";
  write_json(d / "model.safetensors.index.json", idx);
  expect_error([&] { Checkpoint::open(d.path()); }, "lm_head.weight");
}

// Rewrites model.safetensors through `edit` on the list of tensors.
void rewrite(const std::string& dir, const std::function<void(std::vector<std::pair<std::string, Tensor>>&)>& edit) {
  std::vector<std::pair<std::string, Tensor>> ts;
  {
    Checkpoint c = Checkpoint::open(dir);
    for (auto& n : c.names()) {
      Tensor v = c.view(n), t = Tensor::empty(v.shape(), v.dtype());
      std::memcpy(t.data(), v.data(), v.nbytes());
      ts.push_back({n, t});
    }
  }
  edit(ts);
  write_safetensors(dir + "/model.safetensors", ts);
}

class BadInput : public ::testing::Test {
 protected:
  void SetUp() override { make_checkpoint(MakerOptions{}, dir_.path()); }
  void expect_load_error(const std::string& needle) {
    auto be = make_cpu_backend();
    expect_error([&] { load_model(dir_.path(), *be); }, needle);
  }
  test::TempDir dir_{"bad"};
};

TEST_F(BadInput, MissingPathAndFiles) {
  auto be = make_cpu_backend();
  expect_error([&] { load_model(dir_ / "nope", *be); }, "does not exist");
  fs::remove(dir_ / "config.json");
  expect_load_error("config.json");
}

TEST_F(BadInput, MissingTensor) {
  rewrite(dir_.path(), [](auto& ts) {
    std::erase_if(ts, [](auto& p) { return p.first == "model.layers.2.mlp.experts.3.up_proj.weight"; });
  });
  expect_load_error("model.layers.2.mlp.experts.3.up_proj.weight");
}

TEST_F(BadInput, WrongShape) {
  rewrite(dir_.path(), [](auto& ts) {
    for (auto& [n, t] : ts)
      if (n == "model.layers.1.self_attn.k_proj.weight") t = Tensor::zeros({10, 64}, DType::F32);
  });
  expect_load_error("model.layers.1.self_attn.k_proj.weight");
}

TEST_F(BadInput, UnknownDtype) {
  std::string p = dir_ / "model.safetensors";
  std::fstream f(p, std::ios::in | std::ios::out | std::ios::binary);
  std::string head(4096, '\0');
  f.read(head.data(), 4096);
  size_t at = head.find("\"F32\"");
  ASSERT_NE(at, std::string::npos);
  f.seekp(std::streamoff(at));
  f.write("\"Q99\"", 5);
  f.close();
  expect_load_error("unknown dtype 'Q99'");
}

TEST_F(BadInput, TruncatedFile) {
  std::string p = dir_ / "model.safetensors";
  fs::resize_file(p, fs::file_size(p) - 1000);
  expect_load_error("truncated");
}

TEST_F(BadInput, CorruptHeader) {
  std::string p = dir_ / "model.safetensors";
  {
    std::fstream f(p, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(8);
    f.write("{{{{", 4);
  }
  expect_load_error("corrupt safetensors header");
  {
    std::fstream f(p, std::ios::in | std::ios::out | std::ios::binary);
    uint64_t huge = uint64_t(1) << 40;
    f.write(reinterpret_cast<const char*>(&huge), 8);
  }
  expect_load_error("header length");
  fs::resize_file(p, 3);
  expect_load_error("too short");
}

TEST_F(BadInput, MalformedConfigJson) {
  std::ofstream(dir_ / "config.json") << "{\"vocab_size\": 12,";
  expect_load_error("malformed JSON");
}

TEST_F(BadInput, CliExitsNonZeroWithOneMessage) {
  rewrite(dir_.path(), [](auto& ts) { std::erase_if(ts, [](auto& p) { return p.first == "lm_head.weight"; }); });
  std::string out;
  int rc = test::run_command(test::binary() + " generate --model-path " + dir_.path() + " --input-ids 1,2,3", &out);
  EXPECT_EQ(rc, 1);
  EXPECT_NE(out.find("mimoserve: error:"), std::string::npos) << out;
  EXPECT_NE(out.find("lm_head.weight"), std::string::npos) << out;
  rc = test::run_command(test::binary() + " generate --model-path " + test::fixture("mimo-tiny-a") +
                             " --input-ids 1,99999",
                         &out);
  EXPECT_EQ(rc, 1);
  EXPECT_NE(out.find("99999"), std::string::npos) << out;
}

// make-checkpoint refuses shapes that cannot be a model, naming the flag
// (--kv-heads 0 and --n-group 0 had died of a division by zero).
TEST_F(BadInput, CheckpointMakerRefusesImpossibleShapes) {
  struct Case {
    std::string args, says;
  };
  for (const Case& c : std::vector<Case>{{"--kv-heads 0", "--kv-heads must be at least 1"},
                                         {"--n-group 0", "--n-group must be at least 1"},
                                         {"--heads 6 --kv-heads 4", "--heads (6) must be a multiple"},
                                         {"--layers 0", "--layers must be at least 1"},
                                         {"--full-layers 0,7", "--full-layers: layer 7 is not in [0, 4)"},
                                         {"--top-k 9", "--top-k must be between 1 and --experts (8)"},
                                         {"--partial-rotary-factor 0", "--partial-rotary-factor"}}) {
    std::string out;
    int rc = test::run_command(test::binary() + " make-checkpoint --out " + (dir_ / "bad") + " " + c.args, &out);
    EXPECT_EQ(rc, 1) << c.args << "\n" << out;
    EXPECT_NE(out.find(c.says), std::string::npos) << c.args << "\n" << out;
    EXPECT_FALSE(std::filesystem::exists(dir_ / "bad/config.json")) << c.args;
  }
  MakerOptions ok;
  EXPECT_NO_THROW(ok.validate());
  EXPECT_NO_THROW(MakerOptions::preset("bench-0.5b").validate());
}

}  // namespace
// A non-finite block scale is an error naming the tensor when FP8 is kept.
TEST(Fp8, NonFiniteScaleIsAnErrorWhenKept) {
  test::TempDir tmp("fp8nan");
  MakerOptions o;
  o.dtype = "fp8";
  o.layers = 1;
  make_checkpoint(o, tmp.path());
  rewrite(tmp.path(), [](std::vector<std::pair<std::string, Tensor>>& ts) {
    for (auto& [n, t] : ts)
      if (n == "model.layers.0.self_attn.q_proj.weight_scale_inv") t.ptr<float>()[0] = NAN;
  });
  auto be = make_cpu_backend();
  expect_error([&] { load_model(tmp.path(), *be); }, "model.layers.0.self_attn.q_proj.weight_scale_inv");
}

}  // namespace mimo
