#include "loader/config.h"

#include <cmath>
#include <filesystem>
#include <fstream>

#include "core/error.h"

namespace mimo {

using json = nlohmann::json;

namespace {

struct Reader {
  const json& j;
  const std::string& src;

  bool has(const char* k) const { return j.contains(k) && !j[k].is_null(); }
  int64_t integer(const char* k) const {
    if (!has(k)) fail("{}: missing key '{}'", src, k);
    if (!j[k].is_number_integer()) fail("{}: key '{}' must be an integer", src, k);
    return j[k].get<int64_t>();
  }
  int64_t integer(const char* k, int64_t def) const { return has(k) ? integer(k) : def; }
  double number(const char* k) const {
    if (!has(k)) fail("{}: missing key '{}'", src, k);
    if (!j[k].is_number()) fail("{}: key '{}' must be a number", src, k);
    return j[k].get<double>();
  }
  double number(const char* k, double def) const { return has(k) ? number(k) : def; }
  bool boolean(const char* k, bool def) const {
    if (!has(k)) return def;
    if (!j[k].is_boolean()) fail("{}: key '{}' must be true or false", src, k);
    return j[k].get<bool>();
  }
  std::string str(const char* k, const std::string& def) const {
    if (!has(k)) return def;
    if (!j[k].is_string()) fail("{}: key '{}' must be a string", src, k);
    return j[k].get<std::string>();
  }
  const json& list(const char* k, size_t n) const {
    if (!j[k].is_array()) fail("{}: key '{}' must be a list", src, k);
    if (j[k].size() != n) fail("{}: key '{}' has {} entries but num_hidden_layers is {}", src, k, j[k].size(), n);
    return j[k];
  }
};

int positive(int64_t v, const std::string& src, const char* key) {
  if (v <= 0 || v > (1 << 30)) fail("{}: key '{}' must be a positive integer, got {}", src, key, v);
  return int(v);
}

}  // namespace

ModelSpec parse_model_config(const json& cfg, const std::string& src) {
  if (!cfg.is_object()) fail("{}: not a JSON object", src);
  Reader r{cfg, src};
  ModelSpec s;
  if (r.has("architectures") && cfg["architectures"].is_array() && !cfg["architectures"].empty() &&
      cfg["architectures"][0].is_string())
    s.architecture = cfg["architectures"][0].get<std::string>();
  s.vocab_size = positive(r.integer("vocab_size"), src, "vocab_size");
  s.hidden_size = positive(r.integer("hidden_size"), src, "hidden_size");
  s.intermediate_size = positive(r.integer("intermediate_size"), src, "intermediate_size");
  int n_layers = positive(r.integer("num_hidden_layers"), src, "num_hidden_layers");
  s.max_position_embeddings = int(r.integer("max_position_embeddings", 262144));
  s.tie_word_embeddings = r.boolean("tie_word_embeddings", false);
  s.rms_eps = float(r.has("rms_norm_eps") ? r.number("rms_norm_eps") : r.number("layernorm_epsilon", 1e-5));
  if (r.has("bos_token_id") && cfg["bos_token_id"].is_number_integer()) s.bos_token_id = cfg["bos_token_id"].get<int>();
  if (r.has("eos_token_id")) {
    auto& e = cfg["eos_token_id"];
    if (e.is_number_integer()) s.eos_token_ids.push_back(e.get<int>());
    else if (e.is_array())
      for (auto& x : e) {
        if (!x.is_number_integer()) fail("{}: key 'eos_token_id' must hold integers", src);
        s.eos_token_ids.push_back(x.get<int>());
      }
    else fail("{}: key 'eos_token_id' must be an integer or a list", src);
  }

  // Which layers slide and which are MoE: native lists or hub patterns.
  std::vector<AttnKind> kinds(size_t(n_layers), AttnKind::Full);
  std::vector<FfnKind> ffns(size_t(n_layers), FfnKind::Dense);
  if (r.has("layer_types")) {
    auto& lt = r.list("layer_types", size_t(n_layers));
    for (int i = 0; i < n_layers; i++) {
      std::string t = lt[size_t(i)].is_string() ? lt[size_t(i)].get<std::string>() : "";
      if (t == "full_attention") kinds[size_t(i)] = AttnKind::Full;
      else if (t == "sliding_attention") kinds[size_t(i)] = AttnKind::Sliding;
      else fail("{}: layer_types[{}] must be 'full_attention' or 'sliding_attention'", src, i);
    }
  } else if (r.has("hybrid_layer_pattern")) {
    auto& p = r.list("hybrid_layer_pattern", size_t(n_layers));
    for (int i = 0; i < n_layers; i++) {
      if (!p[size_t(i)].is_number_integer() || p[size_t(i)].get<int>() < 0 || p[size_t(i)].get<int>() > 1)
        fail("{}: hybrid_layer_pattern[{}] must be 0 (full) or 1 (sliding)", src, i);
      kinds[size_t(i)] = p[size_t(i)].get<int>() == 1 ? AttnKind::Sliding : AttnKind::Full;
    }
  }
  if (r.has("mlp_layer_types")) {
    auto& lt = r.list("mlp_layer_types", size_t(n_layers));
    for (int i = 0; i < n_layers; i++) {
      std::string t = lt[size_t(i)].is_string() ? lt[size_t(i)].get<std::string>() : "";
      if (t == "dense") ffns[size_t(i)] = FfnKind::Dense;
      else if (t == "sparse") ffns[size_t(i)] = FfnKind::MoE;
      else fail("{}: mlp_layer_types[{}] must be 'dense' or 'sparse'", src, i);
    }
  } else if (r.has("moe_layer_freq")) {
    auto& f = cfg["moe_layer_freq"];
    if (f.is_number_integer()) {  // DeepSeek style: every k-th layer
      int k = f.get<int>();
      if (k <= 0) fail("{}: moe_layer_freq must be positive", src);
      for (int i = 0; i < n_layers; i++) ffns[size_t(i)] = (i % k == 0) ? FfnKind::MoE : FfnKind::Dense;
    } else {
      auto& p = r.list("moe_layer_freq", size_t(n_layers));
      for (int i = 0; i < n_layers; i++) {
        if (!p[size_t(i)].is_number_integer() || p[size_t(i)].get<int>() < 0 || p[size_t(i)].get<int>() > 1)
          fail("{}: moe_layer_freq[{}] must be 0 (dense) or 1 (MoE)", src, i);
        ffns[size_t(i)] = p[size_t(i)].get<int>() ? FfnKind::MoE : FfnKind::Dense;
      }
    }
  }

  // Per-kind attention shapes.
  AttnSpec full, swa;
  full.kind = AttnKind::Full;
  swa.kind = AttnKind::Sliding;
  full.num_heads = positive(r.integer("num_attention_heads"), src, "num_attention_heads");
  full.num_kv_heads = positive(r.integer("num_key_value_heads", full.num_heads), src, "num_key_value_heads");
  full.head_dim = positive(r.integer("head_dim", s.hidden_size / full.num_heads), src, "head_dim");
  full.v_head_dim = positive(r.integer("v_head_dim", full.head_dim), src, "v_head_dim");
  swa.num_heads = positive(r.integer("swa_num_attention_heads", full.num_heads), src, "swa_num_attention_heads");
  // The native config has one kv-head count; MiMo's SWA layers use twice as many.
  swa.num_kv_heads =
      positive(r.integer("swa_num_key_value_heads", 2 * full.num_kv_heads), src, "swa_num_key_value_heads");
  swa.head_dim = positive(r.integer("swa_head_dim", full.head_dim), src, "swa_head_dim");
  swa.v_head_dim = positive(r.integer("swa_v_head_dim", full.v_head_dim), src, "swa_v_head_dim");
  for (AttnSpec* a : {&full, &swa})
    if (a->num_heads % a->num_kv_heads != 0)
      fail("{}: {} attention heads are not a multiple of {} kv heads", src, a->num_heads, a->num_kv_heads);

  int window = 0;
  if (r.has("sliding_window")) window = int(r.integer("sliding_window"));
  else if (r.has("sliding_window_size")) window = int(r.integer("sliding_window_size"));
  bool any_swa = false;
  for (auto k : kinds) any_swa |= k == AttnKind::Sliding;
  if (any_swa && window <= 0) fail("{}: sliding layers need a positive 'sliding_window' (or 'sliding_window_size')", src);
  swa.window = window;
  swa.has_sink = r.boolean("add_swa_attention_sink_bias", true);
  full.has_sink = r.boolean("add_full_attention_sink_bias", false);
  float vscale = float(r.number("attention_value_scale", 1.0));
  full.value_scale = swa.value_scale = vscale;

  double prf_full = r.number("partial_rotary_factor", 1.0), prf_swa = prf_full;
  full.rope_theta = r.number("rope_theta", 10000.0);
  swa.rope_theta = r.number("swa_rope_theta", full.rope_theta);
  if (r.has("rope_parameters")) {
    auto& rp = cfg["rope_parameters"];
    if (!rp.is_object()) fail("{}: 'rope_parameters' must be an object", src);
    auto read = [&](const char* kind, double& theta, double& prf) {
      if (!rp.contains(kind)) return false;
      Reader rr{rp[kind], src};
      std::string type = rr.str("rope_type", "default");
      if (type != "default") fail("{}: rope_parameters.{}.rope_type '{}' is not supported", src, kind, type);
      theta = rr.number("rope_theta", theta);
      prf = rr.number("partial_rotary_factor", prf);
      return true;
    };
    bool per_kind = read("full_attention", full.rope_theta, prf_full);
    per_kind |= read("sliding_attention", swa.rope_theta, prf_swa);
    if (!per_kind) {  // one set of parameters for all layers
      Reader rr{rp, src};
      full.rope_theta = swa.rope_theta = rr.number("rope_theta", full.rope_theta);
      prf_full = prf_swa = rr.number("partial_rotary_factor", prf_full);
    }
  }
  for (auto [a, prf] : {std::pair{&full, prf_full}, std::pair{&swa, prf_swa}}) {
    if (prf <= 0 || prf > 1) fail("{}: partial_rotary_factor must be in (0, 1], got {}", src, prf);
    a->rotary_dim = int(a->head_dim * prf);  // as transformers: int(head_dim * factor)
    if (a->rotary_dim % 2) fail("{}: rotary dimension {} (head_dim * partial_rotary_factor) must be even", src, a->rotary_dim);
  }
  for (int i = 0; i < n_layers; i++) {
    LayerSpec l;
    l.attn = kinds[size_t(i)] == AttnKind::Full ? full : swa;
    l.ffn = ffns[size_t(i)];
    s.layers.push_back(l);
  }
  s.mtp_attn = swa;
  if (!any_swa && window > 0) s.mtp_attn.window = window;

  bool any_moe = false;
  for (auto f : ffns) any_moe |= f == FfnKind::MoE;
  if (any_moe) {
    MoESpec& m = s.moe;
    m.num_experts = positive(r.integer("n_routed_experts"), src, "n_routed_experts");
    m.top_k = positive(r.integer("num_experts_per_tok"), src, "num_experts_per_tok");
    m.intermediate = positive(r.integer("moe_intermediate_size"), src, "moe_intermediate_size");
    m.n_group = positive(r.integer("n_group", 1), src, "n_group");
    m.topk_group = positive(r.integer("topk_group", 1), src, "topk_group");
    m.norm_topk_prob = r.boolean("norm_topk_prob", true);
    m.routed_scaling_factor = float(r.number("routed_scaling_factor", 1.0));
    if (r.has("n_shared_experts") && r.integer("n_shared_experts") != 0)
      fail("{}: n_shared_experts {} is not supported (MiMo-V2-Flash has none)", src, r.integer("n_shared_experts"));
    std::string scoring = r.str("scoring_func", "sigmoid");
    if (scoring != "sigmoid") fail("{}: scoring_func '{}' is not supported (expected 'sigmoid')", src, scoring);
    std::string topk = r.str("topk_method", "noaux_tc");
    if (topk != "noaux_tc") fail("{}: topk_method '{}' is not supported (expected 'noaux_tc')", src, topk);
    if (m.top_k > m.num_experts) fail("{}: num_experts_per_tok {} exceeds n_routed_experts {}", src, m.top_k, m.num_experts);
    if (m.num_experts % m.n_group) fail("{}: n_routed_experts {} is not divisible by n_group {}", src, m.num_experts, m.n_group);
    if (m.topk_group > m.n_group) fail("{}: topk_group {} exceeds n_group {}", src, m.topk_group, m.n_group);
    if (m.top_k > m.topk_group * (m.num_experts / m.n_group))
      fail("{}: num_experts_per_tok {} exceeds the experts in topk_group groups", src, m.top_k);
  }

  if (r.has("quantization_config")) {
    auto& q = cfg["quantization_config"];
    Reader rq{q, src};
    std::string method = rq.str("quant_method", "");
    if (method != "fp8") fail("{}: quantization_config.quant_method '{}' is not supported (expected 'fp8')", src, method);
    s.quant.fp8 = true;
    if (q.contains("weight_block_size") && !q["weight_block_size"].is_null()) {
      auto& b = q["weight_block_size"];
      if (!b.is_array() || b.size() != 2 || !b[0].is_number_integer() || !b[1].is_number_integer() ||
          b[0].get<int>() <= 0 || b[1].get<int>() <= 0)
        fail("{}: quantization_config.weight_block_size must be two positive integers", src);
      s.quant.block_rows = b[0].get<int>();
      s.quant.block_cols = b[1].get<int>();
    }
  }
  return s;
}

ModelSpec load_model_config(const std::string& model_dir) {
  namespace fs = std::filesystem;
  fs::path p = fs::path(model_dir) / "config.json";
  if (!fs::exists(p)) fail("'{}' not found", p.string());
  std::ifstream in(p);
  json j;
  try {
    j = json::parse(in);
  } catch (const json::exception& e) {
    fail("'{}': malformed JSON: {}", p.string(), e.what());
  }
  ModelSpec s = parse_model_config(j, p.string());
  // generation_config.json carries the eos ids the model really stops on.
  fs::path g = fs::path(model_dir) / "generation_config.json";
  if (fs::exists(g)) {
    std::ifstream gin(g);
    json gj = json::parse(gin, nullptr, false);
    if (gj.is_discarded()) fail("'{}': malformed JSON", g.string());
    if (gj.contains("eos_token_id")) {
      auto& e = gj["eos_token_id"];
      std::vector<int> ids;
      if (e.is_number_integer()) ids.push_back(e.get<int>());
      else if (e.is_array())
        for (auto& x : e)
          if (x.is_number_integer()) ids.push_back(x.get<int>());
      if (!ids.empty()) s.eos_token_ids = ids;
    }
  }
  return s;
}

void apply_overrides(ModelSpec& spec, const SpecOverrides& o) {
  for (auto& l : spec.layers) {
    if (o.all_full_attention && l.attn.kind == AttnKind::Sliding) {
      l.attn.kind = AttnKind::Full;
      l.attn.window = 0;
    }
    if (l.attn.kind == AttnKind::Sliding) l.attn.window += o.window_extra;
  }
  spec.mtp_attn.window += o.window_extra;
}

}  // namespace mimo
