// `mimoserve generate`: load a checkpoint, run one prompt, print JSON.
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/error.h"
#include "core/log.h"
#include "core/thread_pool.h"
#include "engine/generate.h"
#include "loader/load_model.h"
#include "loader/safetensors.h"

namespace mimo::cli {

namespace {

struct GenerateArgs {
  std::string model_path;
  std::string input_ids;
  int max_new_tokens = 16;
  float temperature = 0.0f, top_p = 1.0f, min_p = 0.0f;
  int top_k = -1;
  uint64_t seed = 0;
  std::string dump_logits;
  std::string dtype = "auto";
  std::string device = "auto";
  int threads = 0;
  bool ignore_eos = false;
  int prefill_chunk = 0;
  std::string log_level = "warning";
};

void run(const GenerateArgs& a) {
  set_log_level(a.log_level);
  if (a.threads > 0) ThreadPool::set_global_threads(a.threads);
  const std::vector<int> ids = parse_ints(a.input_ids, "--input-ids", 0);
  std::vector<int32_t> prompt(ids.begin(), ids.end());
  auto backend = make_backend(a.device);
  ModelLoadOptions mo;
  mo.dtype = a.dtype;
  LoadedModel lm = load_model(resolve_model_path(a.model_path), *backend, mo);
  GenerateOptions go;
  go.max_new_tokens = a.max_new_tokens;
  go.sampling.temperature = a.temperature;
  go.sampling.top_p = a.top_p;
  go.sampling.top_k = a.top_k;
  go.sampling.min_p = a.min_p;
  go.sampling.seed = a.seed;
  go.sampling.max_new_tokens = a.max_new_tokens;
  go.ignore_eos = a.ignore_eos;
  go.dump_prompt_logits = !a.dump_logits.empty();
  go.prefill_chunk = a.prefill_chunk;
  go.kv_dtype = lm.weight_dtype;
  GenerateResult r = generate(*lm.model, prompt, go);
  if (!a.dump_logits.empty()) write_safetensors(a.dump_logits, {{"logits", r.prompt_logits}});
  nlohmann::json out = {{"output_ids", r.output_ids}};
  std::cout << out.dump() << std::endl;
  spdlog::info("prefill {} tokens in {:.3f}s; {} decode steps in {:.3f}s ({:.1f} tok/s)", prompt.size(),
               r.prefill_seconds, r.decode_steps, r.decode_seconds,
               r.decode_seconds > 0 ? r.decode_steps / r.decode_seconds : 0.0);
}

}  // namespace

void register_generate(CLI::App& app) {
  auto a = std::make_shared<GenerateArgs>();
  CLI::App* c = app.add_subcommand("generate", "run one prompt through the model and print {\"output_ids\": [...]}");
  c->add_option("--model-path", a->model_path, "checkpoint directory (default: the embedded model)");
  c->add_option("--input-ids", a->input_ids, "comma-separated prompt token ids")->required();
  c->add_option("--max-new-tokens", a->max_new_tokens, "tokens to generate")->check(kNonNegative);
  c->add_option("--temperature", a->temperature, "0 = greedy");
  c->add_option("--top-p", a->top_p);
  c->add_option("--top-k", a->top_k, "-1 = all");
  c->add_option("--min-p", a->min_p);
  c->add_option("--seed", a->seed);
  c->add_option("--dump-logits", a->dump_logits, "write fp32 logits of every prompt position to this safetensors file");
  c->add_option("--dtype", a->dtype, "weight dtype: auto|float32|bfloat16 (auto keeps FP8 checkpoints FP8)")
      ->check(CLI::IsMember({"auto", "float32", "bfloat16", "fp32", "bf16"}));
  c->add_option("--threads", a->threads, "CPU threads (default: all cores)")->check(kNonNegative);
  c->add_option("--device", a->device, "cpu | cuda | auto (cuda when built with it and a GPU is present)")
      ->capture_default_str();
  c->add_flag("--ignore-eos", a->ignore_eos, "do not stop at the model's eos tokens");
  c->add_option("--prefill-chunk", a->prefill_chunk, "prefill at most this many tokens per step (0 = all)")
      ->check(kNonNegative);
  c->add_option("--log-level", a->log_level);
  c->callback([a] { run(*a); });
}

}  // namespace mimo::cli
