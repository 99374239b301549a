// `mimoserve make-checkpoint`: random MiMo-V2-Flash checkpoints for tests
// and benchmarks.
#include <cstdio>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/error.h"
#include "loader/checkpoint_maker.h"

namespace mimo::cli {

void register_make_checkpoint(CLI::App& app) {
  struct Args {
    std::string out, preset = "tiny", full_layers, dense_layers;
    MakerOptions o;
    bool have_full = false, have_dense = false;
  };
  auto a = std::make_shared<Args>();
  CLI::App* c = app.add_subcommand("make-checkpoint", "write a random MiMo-V2-Flash checkpoint (hub layout)");
  c->add_option("--out", a->out, "output directory")->required();
  c->add_option("--preset", a->preset, "starting shape: tiny | bench-0.5b | bench-6b (flags below override it)");
  // Shape flags are applied on top of the preset in the callback.
  auto& o = a->o;
  c->add_option("--vocab", o.vocab);
  c->add_option("--hidden", o.hidden);
  c->add_option("--layers", o.layers);
  c->add_option("--heads", o.heads);
  c->add_option("--kv-heads", o.kv_heads);
  c->add_option("--swa-kv-heads", o.swa_kv_heads);
  c->add_option("--head-dim", o.head_dim);
  c->add_option("--v-head-dim", o.v_head_dim);
  c->add_option("--window", o.window);
  c->add_option("--full-layers", a->full_layers, "comma-separated full-attention layers (others slide)");
  c->add_option("--dense-layers", a->dense_layers, "comma-separated dense-FFN layers (others are MoE)");
  c->add_option("--intermediate", o.intermediate);
  c->add_option("--experts", o.experts);
  c->add_option("--top-k", o.top_k);
  c->add_option("--moe-intermediate", o.moe_intermediate);
  c->add_option("--n-group", o.n_group);
  c->add_option("--topk-group", o.topk_group);
  c->add_option("--routed-scaling-factor", o.routed_scaling_factor);
  c->add_flag("--null-scaling", o.null_scaling, "write routed_scaling_factor: null (when it is 1)");
  c->add_option("--partial-rotary-factor", o.partial_rotary_factor);
  c->add_option("--mtp-layers", o.mtp_layers);
  c->add_option("--dtype", o.dtype, "float32 | bfloat16 | fp8");
  c->add_flag("--fp8-per-head-scales", o.fp8_per_head_scales, "full-attention k/v scales on the per-KV-head grid");
  c->add_option("--shards", o.shards);
  c->add_option("--config-style", o.config_style, "hub | native");
  c->add_option("--seed", o.seed);
  c->add_option("--init-std", o.init_std);
  c->add_option("--eos-token-id", o.eos_token_id);
  c->callback([a, c] {
    // Start from the preset, then take every flag the user gave.
    MakerOptions p = MakerOptions::preset(a->preset);
    MakerOptions& o = a->o;
    auto take = [&](const char* flag, auto& dst, const auto& src) {
      if (c->count(flag)) dst = src;
    };
    take("--vocab", p.vocab, o.vocab); take("--hidden", p.hidden, o.hidden); take("--layers", p.layers, o.layers);
    take("--heads", p.heads, o.heads); take("--kv-heads", p.kv_heads, o.kv_heads);
    take("--swa-kv-heads", p.swa_kv_heads, o.swa_kv_heads); take("--head-dim", p.head_dim, o.head_dim);
    take("--v-head-dim", p.v_head_dim, o.v_head_dim); take("--window", p.window, o.window);
    take("--intermediate", p.intermediate, o.intermediate); take("--experts", p.experts, o.experts);
    take("--top-k", p.top_k, o.top_k); take("--moe-intermediate", p.moe_intermediate, o.moe_intermediate);
    take("--n-group", p.n_group, o.n_group); take("--topk-group", p.topk_group, o.topk_group);
    take("--routed-scaling-factor", p.routed_scaling_factor, o.routed_scaling_factor);
    take("--null-scaling", p.null_scaling, o.null_scaling);
    take("--partial-rotary-factor", p.partial_rotary_factor, o.partial_rotary_factor);
    take("--mtp-layers", p.mtp_layers, o.mtp_layers); take("--dtype", p.dtype, o.dtype);
    take("--fp8-per-head-scales", p.fp8_per_head_scales, o.fp8_per_head_scales);
    take("--shards", p.shards, o.shards); take("--config-style", p.config_style, o.config_style);
    take("--seed", p.seed, o.seed); take("--init-std", p.init_std, o.init_std);
    take("--eos-token-id", p.eos_token_id, o.eos_token_id);
    if (c->count("--full-layers")) p.full_layers = parse_ints(a->full_layers, "--full-layers", 0, true);
    if (c->count("--dense-layers")) p.dense_layers = parse_ints(a->dense_layers, "--dense-layers", 0, true);
    make_checkpoint(p, a->out);
    std::fprintf(stderr, "wrote %s (%.1fM parameters)\n", a->out.c_str(), double(p.parameter_count()) / 1e6);
  });
}

}  // namespace mimo::cli
