#include "loader/checkpoint_maker.h"

#include <algorithm>
#include <tuple>
#include <cstring>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <functional>
#include <nlohmann/json.hpp>

#include "core/dtype.h"
#include "core/error.h"
#include "core/thread_pool.h"

namespace mimo {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

MakerOptions MakerOptions::preset(const std::string& name) {
  MakerOptions o;
  if (name == "tiny") return o;
  if (name == "bench-0.5b") {
    o.vocab = 32000;
    o.hidden = 1024;
    o.layers = 8;
    o.full_layers = {0, 5};
    o.dense_layers = {0};
    o.heads = 16;
    o.kv_heads = 4;
    o.swa_kv_heads = 8;
    o.head_dim = 128;
    o.v_head_dim = 128;
    o.window = 128;
    o.experts = 32;
    o.top_k = 4;
    o.moe_intermediate = 512;
    o.intermediate = 4096;
    o.dtype = "bfloat16";
    o.init_std = 0.02;
    return o;
  }
  if (name == "bench-6b") {
    // The CUDA issue's MiMo-shaped model with the real widths (about 6.0B
    // parameters): what a GPU decode step of MiMo-V2-Flash streams per layer.
    o.vocab = 152576;
    o.hidden = 4096;
    o.layers = 6;
    o.full_layers = {0, 5};
    o.dense_layers = {0};
    o.heads = 64;
    o.kv_heads = 4;
    o.swa_kv_heads = 8;
    o.head_dim = 192;
    o.v_head_dim = 128;
    o.window = 128;
    o.experts = 32;
    o.top_k = 8;
    o.moe_intermediate = 2048;
    o.intermediate = 16384;
    o.dtype = "bfloat16";
    o.init_std = 0.02;
    return o;
  }
  fail("unknown preset '{}' (known: tiny, bench-0.5b, bench-6b)", name);
}

namespace {

bool contains(const std::vector<int>& v, int x) { return std::find(v.begin(), v.end(), x) != v.end(); }

// splitmix64 + Box-Muller: fast, seeded, identical everywhere.
struct Rng {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  double uniform() { return double(next() >> 11) * (1.0 / 9007199254740992.0); }
  double normal() {
    double u1 = std::max(uniform(), 1e-300), u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2 * M_PI * u2);
  }
};

struct Entry {
  std::string name;
  std::vector<int64_t> shape;
  std::string kind;  // "matrix" (quantisable), "keep" (bf16 matrix never quantised), "f32", "norm"
  int rows_per_head = 0;
};

int64_t numel(const std::vector<int64_t>& s) {
  int64_t n = 1;
  for (auto x : s) n *= x;
  return n;
}

std::vector<Entry> plan(const MakerOptions& o) {
  std::vector<Entry> e;
  int64_t H = o.hidden;
  auto attn = [&](const std::string& p, bool full) {
    int kvh = full ? o.kv_heads : o.swa_kv_heads;
    e.push_back({p + "self_attn.q_proj.weight", {int64_t(o.heads) * o.head_dim, H}, "matrix"});
    e.push_back({p + "self_attn.k_proj.weight", {int64_t(kvh) * o.head_dim, H}, "matrix", full ? o.head_dim : 0});
    e.push_back({p + "self_attn.v_proj.weight", {int64_t(kvh) * o.v_head_dim, H}, "matrix", full ? o.v_head_dim : 0});
    e.push_back({p + "self_attn.o_proj.weight", {H, int64_t(o.heads) * o.v_head_dim}, "keep"});
    if (!full) e.push_back({p + "self_attn.attention_sink_bias", {o.heads}, "f32"});
  };
  auto dense = [&](const std::string& p) {
    e.push_back({p + "mlp.gate_proj.weight", {o.intermediate, H}, "matrix"});
    e.push_back({p + "mlp.up_proj.weight", {o.intermediate, H}, "matrix"});
    e.push_back({p + "mlp.down_proj.weight", {H, o.intermediate}, "matrix"});
  };
  e.push_back({"model.embed_tokens.weight", {o.vocab, H}, "keep"});
  for (int l = 0; l < o.layers; l++) {
    std::string p = "model.layers." + std::to_string(l) + ".";
    e.push_back({p + "input_layernorm.weight", {H}, "norm"});
    e.push_back({p + "post_attention_layernorm.weight", {H}, "norm"});
    attn(p, contains(o.full_layers, l));
    if (contains(o.dense_layers, l)) {
      dense(p);
    } else {
      e.push_back({p + "mlp.gate.weight", {o.experts, H}, "f32"});
      e.push_back({p + "mlp.gate.e_score_correction_bias", {o.experts}, "f32"});
      for (int x = 0; x < o.experts; x++) {
        std::string ep = p + "mlp.experts." + std::to_string(x) + ".";
        e.push_back({ep + "gate_proj.weight", {o.moe_intermediate, H}, "matrix"});
        e.push_back({ep + "up_proj.weight", {o.moe_intermediate, H}, "matrix"});
        e.push_back({ep + "down_proj.weight", {H, o.moe_intermediate}, "matrix"});
      }
    }
  }
  for (int k = 0; k < o.mtp_layers; k++) {
    std::string p = "model.mtp.layers." + std::to_string(k) + ".";
    e.push_back({p + "enorm.weight", {H}, "norm"});
    e.push_back({p + "hnorm.weight", {H}, "norm"});
    e.push_back({p + "eh_proj.weight", {H, 2 * H}, "matrix"});
    e.push_back({p + "input_layernorm.weight", {H}, "norm"});
    attn(p, false);
    e.push_back({p + "pre_mlp_layernorm.weight", {H}, "norm"});
    dense(p);
    e.push_back({p + "final_layernorm.weight", {H}, "norm"});
  }
  e.push_back({"model.norm.weight", {H}, "norm"});
  e.push_back({"lm_head.weight", {o.vocab, H}, "keep"});
  return e;
}

// A stored tensor: name, dtype, shape and a generator of its bytes.
struct Stored {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  std::function<void(std::vector<uint8_t>&)> fill;
};

json config_json(const MakerOptions& o) {
  json c;
  c["architectures"] = {"MiMoV2FlashForCausalLM"};
  c["model_type"] = "mimo_v2_flash";
  c["vocab_size"] = o.vocab;
  c["hidden_size"] = o.hidden;
  c["intermediate_size"] = o.intermediate;
  c["moe_intermediate_size"] = o.moe_intermediate;
  c["num_hidden_layers"] = o.layers;
  c["num_attention_heads"] = o.heads;
  c["num_key_value_heads"] = o.kv_heads;
  c["head_dim"] = o.head_dim;
  c["v_head_dim"] = o.v_head_dim;
  c["max_position_embeddings"] = 262144;
  c["n_routed_experts"] = o.experts;
  c["num_experts_per_tok"] = o.top_k;
  c["n_group"] = o.n_group;
  c["topk_group"] = o.topk_group;
  c["norm_topk_prob"] = true;
  c["attention_value_scale"] = o.value_scale;
  c["tie_word_embeddings"] = false;
  c["hidden_act"] = "silu";
  if (o.eos_token_id >= 0) c["eos_token_id"] = o.eos_token_id;
  std::vector<int> swa, moe;
  for (int l = 0; l < o.layers; l++) {
    swa.push_back(contains(o.full_layers, l) ? 0 : 1);
    moe.push_back(contains(o.dense_layers, l) ? 0 : 1);
  }
  if (o.config_style == "native") {
    std::vector<std::string> lt, mt;
    for (int l = 0; l < o.layers; l++) {
      lt.push_back(swa[size_t(l)] ? "sliding_attention" : "full_attention");
      mt.push_back(moe[size_t(l)] ? "sparse" : "dense");
    }
    c["layer_types"] = lt;
    c["mlp_layer_types"] = mt;
    c["sliding_window"] = o.window;
    c["rms_norm_eps"] = 1e-5;
    c["routed_scaling_factor"] = o.routed_scaling_factor;
    c["rope_parameters"] = {
        {"full_attention", {{"rope_type", "default"}, {"rope_theta", o.rope_theta}, {"partial_rotary_factor", o.partial_rotary_factor}}},
        {"sliding_attention", {{"rope_type", "default"}, {"rope_theta", o.swa_rope_theta}, {"partial_rotary_factor", o.partial_rotary_factor}}}};
    if (o.swa_kv_heads != 2 * o.kv_heads) c["swa_num_key_value_heads"] = o.swa_kv_heads;
  } else if (o.config_style == "hub") {
    c["hybrid_layer_pattern"] = swa;
    c["moe_layer_freq"] = moe;
    c["swa_num_attention_heads"] = o.heads;
    c["swa_num_key_value_heads"] = o.swa_kv_heads;
    c["swa_head_dim"] = o.head_dim;
    c["swa_v_head_dim"] = o.v_head_dim;
    c["sliding_window"] = o.window;
    c["sliding_window_size"] = o.window;
    c["add_swa_attention_sink_bias"] = true;
    c["add_full_attention_sink_bias"] = false;
    c["rope_theta"] = o.rope_theta;
    c["swa_rope_theta"] = o.swa_rope_theta;
    c["partial_rotary_factor"] = o.partial_rotary_factor;
    c["layernorm_epsilon"] = 1e-5;
    c["scoring_func"] = "sigmoid";
    c["topk_method"] = "noaux_tc";
    c["n_shared_experts"] = nullptr;
    if (o.null_scaling && o.routed_scaling_factor == 1.0) c["routed_scaling_factor"] = nullptr;
    else c["routed_scaling_factor"] = o.routed_scaling_factor;
  } else {
    fail("--config-style must be hub or native, got '{}'", o.config_style);
  }
  if (o.dtype == "fp8")
    c["quantization_config"] = {{"quant_method", "fp8"}, {"fmt", "e4m3"}, {"activation_scheme", "dynamic"},
                                {"weight_block_size", {128, 128}}};
  c["torch_dtype"] = o.dtype == "float32" ? "float32" : "bfloat16";
  return c;
}

}  // namespace

void MakerOptions::validate() const {
  for (auto [flag, v, min] : {std::tuple{"--vocab", vocab, 2}, {"--hidden", hidden, 1}, {"--layers", layers, 1},
                              {"--heads", heads, 1}, {"--kv-heads", kv_heads, 1}, {"--swa-kv-heads", swa_kv_heads, 1},
                              {"--head-dim", head_dim, 2}, {"--v-head-dim", v_head_dim, 1}, {"--window", window, 0},
                              {"--intermediate", intermediate, 1}, {"--experts", experts, 0},
                              {"--moe-intermediate", moe_intermediate, 1}, {"--n-group", n_group, 1},
                              {"--topk-group", topk_group, 1}, {"--mtp-layers", mtp_layers, 0}, {"--shards", shards, 1}})
    if (v < min) fail("{} must be at least {}, got {}", flag, min, v);
  if (heads % kv_heads || heads % swa_kv_heads)
    fail("--heads ({}) must be a multiple of --kv-heads ({}) and --swa-kv-heads ({})", heads, kv_heads, swa_kv_heads);
  if (experts > 0) {
    if (top_k < 1 || top_k > experts) fail("--top-k must be between 1 and --experts ({}), got {}", experts, top_k);
    if (experts % n_group) fail("--experts ({}) must be divisible by --n-group ({})", experts, n_group);
    if (topk_group > n_group) fail("--topk-group ({}) must not exceed --n-group ({})", topk_group, n_group);
  }
  for (auto [flag, list] : {std::pair{"--full-layers", &full_layers}, {"--dense-layers", &dense_layers}})
    for (int l : *list)
      if (l < 0 || l >= layers) fail("{}: layer {} is not in [0, {})", flag, l, layers);
  if (experts == 0)
    for (int l = 0; l < layers; l++)
      if (std::find(dense_layers.begin(), dense_layers.end(), l) == dense_layers.end())
        fail("--experts 0: every layer must be dense (--dense-layers), layer {} is not", l);
  if (!(partial_rotary_factor > 0 && partial_rotary_factor <= 1))
    fail("--partial-rotary-factor must be in (0, 1], got {}", partial_rotary_factor);
  if (!(init_std > 0)) fail("--init-std must be positive, got {}", init_std);
  if (dtype != "float32" && dtype != "bfloat16" && dtype != "fp8")
    fail("--dtype must be float32, bfloat16 or fp8, got '{}'", dtype);
}

int64_t MakerOptions::parameter_count() const {
  validate();
  int64_t n = 0;
  for (auto& e : plan(*this)) n += numel(e.shape);
  return n;
}

void make_checkpoint(const MakerOptions& o, const std::string& dir) {
  o.validate();
  fs::create_directories(dir);
  DType wdt = o.dtype == "float32" ? DType::F32 : DType::BF16;
  std::vector<Stored> stored;
  uint64_t salt = 0;
  for (auto& e : plan(o)) {
    uint64_t seed = o.seed * 1000003ull + (salt++) * 7919ull + 1;
    int64_t n = numel(e.shape);
    // Values: norms near 1, sinks and biases O(1), matrices ~N(0, init_std).
    // Generated in chunks of 2^20 values with all threads; chunk c draws
    // from its own stream (chunk 0 from `seed`), so the bytes do not depend
    // on the thread count and a 6B checkpoint takes seconds, not minutes.
    const double mean = e.kind == "norm" ? 1.0 : 0.0;
    const double sd = e.kind == "norm" ? 0.1
                      : e.name.find("sink") != std::string::npos ? 1.0
                      : e.name.find("e_score_correction_bias") != std::string::npos ? 0.1
                                                                                      : o.init_std;
    auto values = [=](std::vector<float>& v) {
      v.resize(size_t(n));
      constexpr int64_t kChunk = int64_t(1) << 20;
      ThreadPool::global().parallel_for((n + kChunk - 1) / kChunk, 1, [&](int64_t c0, int64_t c1) {
        for (int64_t c = c0; c < c1; c++) {
          Rng r{seed + uint64_t(c) * 0x632be59bd9b4e019ull};
          for (int64_t i = c * kChunk; i < std::min(n, (c + 1) * kChunk); i++) v[size_t(i)] = float(mean + sd * r.normal());
        }
      });
    };
    if (e.kind == "norm" || e.kind == "f32") {
      stored.push_back({e.name, DType::F32, e.shape, [=](std::vector<uint8_t>& out) {
                          std::vector<float> v;
                          values(v);
                          out.resize(v.size() * 4);
                          std::memcpy(out.data(), v.data(), out.size());
                        }});
      continue;
    }
    bool quant = o.dtype == "fp8" && e.kind == "matrix";
    if (!quant) {
      stored.push_back({e.name, wdt, e.shape, [=](std::vector<uint8_t>& out) {
                          std::vector<float> v;
                          values(v);
                          out.resize(v.size() * dtype_size(wdt));
                          if (wdt == DType::F32) std::memcpy(out.data(), v.data(), out.size());
                          else
                            for (size_t i = 0; i < v.size(); i++)
                              reinterpret_cast<uint16_t*>(out.data())[i] = f32_to_bf16(v[i]);
                        }});
      continue;
    }
    // FP8 with 128x128 block scales; per-KV-head grid on request.
    int64_t R = e.shape[0], C = e.shape[1];
    int rph = o.fp8_per_head_scales ? e.rows_per_head : 0;
    int64_t bph = rph ? (rph + 127) / 128 : 0;
    int64_t SR = rph ? (R / rph) * bph : (R + 127) / 128, SC = (C + 127) / 128;
    auto srow = [=](int64_t r) { return rph ? (r / rph) * bph + (r % rph) / 128 : r / 128; };
    // One pass makes the codes and the scales (rows in parallel: per-row
    // block maxima, reduced per scale row); the weight is written first and
    // leaves its scales for the scale tensor, which follows it.
    auto scales_of = std::make_shared<std::vector<float>>();
    auto quantize = [=](std::vector<uint8_t>& q, std::vector<float>& s) {
      std::vector<float> v;
      values(v);
      std::vector<float> row_max(size_t(R * SC), 0.f), amax(size_t(SR * SC), 0.f);
      ThreadPool& pool = ThreadPool::global();
      pool.parallel_for(R, 64, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; r++)
          for (int64_t c = 0; c < C; c++) {
            float& a = row_max[size_t(r * SC + c / 128)];
            a = std::max(a, std::fabs(v[size_t(r * C + c)]));
          }
      });
      for (int64_t r = 0; r < R; r++)
        for (int64_t j = 0; j < SC; j++) {
          float& a = amax[size_t(srow(r) * SC + j)];
          a = std::max(a, row_max[size_t(r * SC + j)]);
        }
      s.resize(amax.size());
      for (size_t i = 0; i < amax.size(); i++) s[i] = amax[i] > 0 ? amax[i] / 448.f : 1.f;
      q.resize(size_t(R * C));
      pool.parallel_for(R, 64, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; r++)
          for (int64_t c = 0; c < C; c++)
            q[size_t(r * C + c)] = f32_to_fp8e4m3(v[size_t(r * C + c)] / s[size_t(srow(r) * SC + c / 128)]);
      });
    };
    stored.push_back({e.name, DType::F8E4M3, e.shape, [=](std::vector<uint8_t>& out) { quantize(out, *scales_of); }});
    stored.push_back({e.name + "_scale_inv", DType::F32, {SR, SC}, [=](std::vector<uint8_t>& out) {
                        if (scales_of->empty()) {
                          std::vector<uint8_t> unused;
                          quantize(unused, *scales_of);
                        }
                        out.resize(scales_of->size() * 4);
                        std::memcpy(out.data(), scales_of->data(), out.size());
                        scales_of->clear();
                        scales_of->shrink_to_fit();
                      }});
  }

  // Split into shards of about equal size, keeping order.
  uint64_t total = 0;
  for (auto& s : stored) total += uint64_t(numel(s.shape)) * dtype_size(s.dtype);
  std::vector<std::vector<size_t>> shards(size_t(o.shards));
  uint64_t acc = 0;
  for (size_t i = 0; i < stored.size(); i++) {
    size_t k = std::min<size_t>(size_t(o.shards) - 1, size_t(acc * uint64_t(o.shards) / std::max<uint64_t>(total, 1)));
    shards[k].push_back(i);
    acc += uint64_t(numel(stored[i].shape)) * dtype_size(stored[i].dtype);
  }
  nlohmann::json weight_map = nlohmann::json::object();
  for (int k = 0; k < o.shards; k++) {
    std::string fname = o.shards == 1 ? "model.safetensors"
                                      : fmt::format("model-{:05d}-of-{:05d}.safetensors", k + 1, o.shards);
    nlohmann::json h = nlohmann::json::object();
    h["__metadata__"] = {{"format", "pt"}};
    uint64_t off = 0;
    for (size_t i : shards[size_t(k)]) {
      uint64_t nb = uint64_t(numel(stored[i].shape)) * dtype_size(stored[i].dtype);
      h[stored[i].name] = {{"dtype", std::string(dtype_name(stored[i].dtype))}, {"shape", stored[i].shape},
                           {"data_offsets", {off, off + nb}}};
      off += nb;
      weight_map[stored[i].name] = fname;
    }
    std::string hs = h.dump();
    while ((hs.size() + 8) % 8) hs.push_back(' ');
    std::ofstream out(fs::path(dir) / fname, std::ios::binary);
    if (!out) fail("cannot write '{}'", (fs::path(dir) / fname).string());
    uint64_t hl = hs.size();
    out.write(reinterpret_cast<const char*>(&hl), 8);
    out.write(hs.data(), std::streamsize(hs.size()));
    std::vector<uint8_t> buf;
    for (size_t i : shards[size_t(k)]) {
      stored[i].fill(buf);
      out.write(reinterpret_cast<const char*>(buf.data()), std::streamsize(buf.size()));
    }
    if (!out) fail("error writing '{}'", (fs::path(dir) / fname).string());
  }
  if (o.shards > 1) {
    nlohmann::json idx = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
    std::ofstream(fs::path(dir) / "model.safetensors.index.json") << idx.dump(2);
  }
  std::ofstream(fs::path(dir) / "config.json") << config_json(o).dump(2) << "\n";
}

}  // namespace mimo
