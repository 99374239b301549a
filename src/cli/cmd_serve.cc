// `mimoserve serve` (alias `launch_server`): the HTTP server, with SGLang's
// flag names and defaults. Flags this build cannot honour are refused with a
// message, never ignored.
#include "cli/commands.h"

#ifndef MIMOSERVE_HAS_SERVER
namespace mimo::cli {
void register_serve_commands(CLI::App&) {}  // src/server left out of this build (MIMOSERVE_SKIP_DIRS)
}  // namespace mimo::cli
#else

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/log.h"
#include "server/server.h"

namespace mimo::cli {

namespace {

struct ServeFlags {
  server::ServerArgs a;
  int tp_size = 1, dp_size = 1, ep_size = 1, pp_size = 1;
  bool log_requests = false;
  int log_requests_level = 2;
  bool enable_dp_attention = false, trust_remote_code = false, enable_metrics = false, enable_mtp = false;
  bool enable_cache_report = false;
  std::string loader_extra = "{}";
  std::string attention_backend = "auto";
  std::string spec_algorithm;
  std::string spec_steps;
  int spec_topk = 1, spec_draft_tokens = 0;
  std::string log_level = "info";
  int64_t max_total_tokens = 0;
  int context_length = 0;
  double mem_fraction_static = 0;
  uint64_t random_seed = 0;
  CLI::App* cmd = nullptr;
};

bool given(const ServeFlags& f, const char* name) { return f.cmd->count(name) > 0; }

// SGLang's --model-loader-extra-config: {"enable_multithread_load": bool,
// "num_threads": int}; booleans and numbers may come as strings.
int loader_threads(const std::string& text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object()) fail("--model-loader-extra-config must be a JSON object, got '{}'", text);
  bool multi = true;
  int threads = 0;
  for (auto& [k, v] : j.items()) {
    if (k == "enable_multithread_load") {
      if (v.is_boolean()) multi = v.get<bool>();
      else if (v.is_string() && (v == "true" || v == "false")) multi = v == "true";
      else fail("--model-loader-extra-config: enable_multithread_load must be true or false");
    } else if (k == "num_threads") {
      if (v.is_number_integer()) threads = v.get<int>();
      else if (v.is_string()) threads = std::atoi(v.get<std::string>().c_str());
      if (threads < 1) fail("--model-loader-extra-config: num_threads must be a positive integer");
    } else {
      fail("--model-loader-extra-config: unknown key '{}' (known: enable_multithread_load, num_threads)", k);
    }
  }
  if (!multi) return 1;
  return threads;  // 0: as many as the compute pool
}

void check_flags(ServeFlags& f) {
  if (f.tp_size < 1 || f.dp_size < 1 || f.ep_size < 1 || f.pp_size < 1)
    fail("--tp-size, --dp-size, --ep-size and --pp-size must be at least 1, got {}, {}, {} and {}", f.tp_size,
         f.dp_size, f.ep_size, f.pp_size);
  if (f.tp_size != 1 || f.dp_size != 1 || f.ep_size != 1 || f.pp_size != 1 || f.enable_dp_attention)
    fail("--tp-size/--dp-size/--ep-size/--pp-size > 1 and --enable-dp-attention need multi-GPU parallelism, which "
         "is not in this build (run one server per GPU)");
  // Speculative decoding with the checkpoint's MTP layers (SGLang: EAGLE or
  // NEXTN with --enable-mtp). Drafts are a chain (topk 1): the target
  // verifies steps + 1 tokens per step.
  bool spec = f.enable_mtp || !f.spec_algorithm.empty();
  if (!f.spec_algorithm.empty() && f.spec_algorithm != "EAGLE" && f.spec_algorithm != "NEXTN" &&
      f.spec_algorithm != "MTP")
    fail("--speculative-algorithm '{}' is not available (known: EAGLE, NEXTN, MTP: all use the model's MTP layers)",
         f.spec_algorithm);
  if (!spec && (given(f, "--speculative-num-steps") || given(f, "--speculative-eagle-topk") ||
                given(f, "--speculative-num-draft-tokens")))
    fail("--speculative-num-steps/--speculative-eagle-topk/--speculative-num-draft-tokens need "
         "--speculative-algorithm EAGLE (or --enable-mtp)");
  if (spec) {
    if (f.spec_topk != 1)
      fail("--speculative-eagle-topk {}: only chain drafting (topk 1) is supported, as MiMo's recipe uses", f.spec_topk);
    std::string st = f.spec_steps.empty() ? "3" : f.spec_steps;
    if (st == "auto") {
      f.a.engine.speculative_auto = true;
      f.a.engine.speculative_num_steps = 3;
    } else {
      int n = std::atoi(st.c_str());
      if (n < 1 || n > 3 || std::to_string(n) != st)
        fail("--speculative-num-steps must be 1, 2, 3 or auto, got '{}'", st);
      f.a.engine.speculative_num_steps = n;
      if (given(f, "--speculative-num-draft-tokens") && f.spec_draft_tokens != n + 1)
        fail("--speculative-num-draft-tokens must be --speculative-num-steps + 1 ({}) with chain drafting, got {}",
             n + 1, f.spec_draft_tokens);
    }
  }
  const std::string& dev = f.a.device;
  if (dev != "auto" && dev != "cpu" && dev != "cuda")
    fail("--device must be cpu, cuda or auto (cuda when this build has it and a GPU is present), got '{}'", dev);
  // Our attention kernels take windows and sinks natively on each device;
  // "fa3" (the recipe's choice) names the CUDA one.
  const std::string& ab = f.attention_backend;
  if (ab == "fa3") {
    if (dev == "cpu") fail("--attention-backend fa3 needs --device cuda");
    spdlog::info("--attention-backend fa3: using mimoserve's CUDA attention kernels (windows and sinks built in)");
  } else if (ab != "auto" && ab != "native") {
    fail("--attention-backend '{}' is not available (known: auto, native, fa3 on CUDA)", ab);
  }
  std::string& dt = f.a.dtype;
  if (dt == "float") dt = "float32";
  if (dt == "half" || dt == "float16")
    fail("--dtype {}: float16 compute is not supported; use bfloat16 or float32", dt);
  if (dt != "auto" && dt != "float32" && dt != "bfloat16")
    fail("--dtype must be auto, bfloat16 or float32, got '{}'", dt);
  // SGLang's --quantization: only the checkpoint's own FP8 is served (no
  // online quantisation); load_model checks that the checkpoint is FP8.
  if (!f.a.quantization.empty() && f.a.quantization != "fp8")
    fail("--quantization '{}' is not available (known: fp8, for FP8 checkpoints)", f.a.quantization);
  if (f.a.quantization == "fp8" && dt != "auto")
    fail("--quantization fp8 keeps the FP8 weights; it cannot be combined with --dtype {}", dt);
  if (f.a.engine.schedule_policy != "fcfs" && f.a.engine.schedule_policy != "lpm")
    fail("--schedule-policy '{}' is not available (known: fcfs, lpm)", f.a.engine.schedule_policy);
  if (f.trust_remote_code) spdlog::info("--trust-remote-code: accepted; no remote code runs (the model is built in)");
  if (f.enable_metrics) spdlog::info("--enable-metrics: metrics are always served at /metrics");
  if (f.enable_cache_report)
    spdlog::info("--enable-cache-report: usage.prompt_tokens_details.cached_tokens is always reported");
  if (!f.a.tokenizer_path.empty() && f.a.skip_tokenizer_init)
    fail("--tokenizer-path and --skip-tokenizer-init contradict each other");
  if (f.a.max_body_bytes < 1024) fail("--max-request-bytes must be at least 1024");
}

void run(ServeFlags& f) {
  set_log_level(f.log_level);
  check_flags(f);
  server::ServerArgs& a = f.a;
  a.loader_threads = loader_threads(f.loader_extra);
  if (f.a.engine.chunked_prefill_size < 0) a.engine.chunked_prefill_size = 0;  // SGLang: -1 disables chunking
  a.engine.max_total_tokens = f.max_total_tokens;
  a.engine.context_length = f.context_length;
  a.engine.mem_fraction_static = f.mem_fraction_static;
  a.engine.seed = f.random_seed;
  a.engine.log_requests_level = f.log_requests ? f.log_requests_level : -1;
  // What /get_server_info reports, in SGLang's server_args names.
  a.flags = {{"model_path", a.model_path},
             {"served_model_name", a.served_model_name},
             {"host", a.host},
             {"port", a.port},
             {"tp_size", f.tp_size},
             {"dp_size", f.dp_size},
             {"ep_size", f.ep_size},
             {"pp_size", f.pp_size},
             {"enable_dp_attention", f.enable_dp_attention},
             {"mem_fraction_static", f.mem_fraction_static},
             {"max_running_requests", a.engine.max_running_requests},
             {"max_queued_requests", a.engine.max_queued_requests},
             {"chunked_prefill_size", a.engine.chunked_prefill_size},
             {"max_prefill_tokens", a.engine.max_prefill_tokens},
             {"max_total_tokens", f.max_total_tokens},
             {"context_length", f.context_length},
             {"page_size", a.engine.page_size},
             {"disable_radix_cache", a.engine.disable_radix_cache},
             {"schedule_policy", a.engine.schedule_policy},
             {"swa_full_tokens_ratio", a.engine.swa_full_tokens_ratio},
             {"reasoning_parser", a.reasoning_parser.empty() ? nlohmann::json() : nlohmann::json(a.reasoning_parser)},
             {"tool_call_parser", a.tool_call_parser.empty() ? nlohmann::json() : nlohmann::json(a.tool_call_parser)},
             {"attention_backend", f.attention_backend},
             {"device", a.device},
             {"dtype", a.dtype},
             {"kv_cache_dtype", a.kv_cache_dtype},
             {"stream_interval", a.engine.stream_interval},
             {"decode_log_interval", a.engine.decode_log_interval},
             {"log_requests", f.log_requests},
             {"log_requests_level", f.log_requests_level},
             {"watchdog_timeout", a.engine.watchdog_timeout_s},
             {"skip_server_warmup", a.skip_warmup},
             {"quantization", a.quantization.empty() ? nlohmann::json() : nlohmann::json(a.quantization)},
             {"threads", a.threads},
             {"model_loader_extra_config", f.loader_extra},
             {"api_key_set", !a.api_key.empty()},
             {"log_level", f.log_level},
             {"random_seed", f.random_seed},
             {"enable_metrics", true},
             {"enable_cache_report", true},
             {"allow_auto_truncate", a.engine.allow_auto_truncate},
             {"tokenizer_path", a.tokenizer_path.empty() ? nlohmann::json() : nlohmann::json(a.tokenizer_path)},
             {"skip_tokenizer_init", a.skip_tokenizer_init},
             {"speculative_algorithm", f.spec_algorithm.empty() && !f.enable_mtp ? nlohmann::json() : nlohmann::json(f.spec_algorithm.empty() ? "EAGLE" : f.spec_algorithm)},
             {"speculative_num_steps", a.engine.speculative_auto ? nlohmann::json("auto") : nlohmann::json(a.engine.speculative_num_steps)},
             {"disable_overlap_schedule", a.engine.disable_overlap_schedule},
             {"disable_cuda_graph", a.engine.disable_cuda_graph},
             {"cuda_graph_max_bs", a.engine.cuda_graph_max_bs}};
  int rc = server::run_server(a);
  if (rc != 0) throw Error("the server stopped with an error");
}

}  // namespace

void register_serve_commands(CLI::App& app) {
  auto f = std::make_shared<ServeFlags>();
  server::ServerArgs& a = f->a;
  CLI::App* c = app.add_subcommand("serve", "run the OpenAI-compatible HTTP server (SGLang's flags)");
  c->alias("launch_server");
  f->cmd = c;
  c->add_option("--model-path", a.model_path, "checkpoint directory (default: the built-in tiny random model)");
  c->add_option("--host", a.host, "address to listen on")->capture_default_str();
  c->add_option("--port", a.port, "port to listen on (0: any free port, printed at start)")
      ->check(number_between(0, 65535, "a port number, 0 to 65535"))
      ->capture_default_str();
  c->add_option("--served-model-name", a.served_model_name, "the model name clients send (default: the model path)");
  c->add_option("--api-key", a.api_key, "require 'Authorization: Bearer KEY' on every API route");
  c->add_option("--chat-template", a.chat_template, "a Jinja chat template file overriding the model's");
  c->add_option("--tokenizer-path", a.tokenizer_path,
                "a folder with tokenizer.json (and tokenizer_config.json's chat template) to use instead of the model's");
  c->add_flag("--skip-tokenizer-init", a.skip_tokenizer_init,
              "load no tokenizer: /generate takes input_ids and returns output_ids (text routes answer 400)");
  c->add_option("--reasoning-parser", a.reasoning_parser, "split <think> reasoning: qwen3 | qwen3-thinking");
  c->add_option("--tool-call-parser", a.tool_call_parser, "parse tool calls: mimo | qwen25");
  c->add_option("--tp-size", f->tp_size, "tensor parallel size (1 in this build)")->capture_default_str();
  c->add_option("--dp-size", f->dp_size, "data parallel size (1 in this build)")->capture_default_str();
  c->add_option("--ep-size", f->ep_size, "expert parallel size (1 in this build)")->capture_default_str();
  c->add_option("--pp-size", f->pp_size, "pipeline parallel size (1 in this build)")->capture_default_str();
  c->add_flag("--enable-dp-attention", f->enable_dp_attention, "not in this build (refused)");
  c->add_flag("--trust-remote-code", f->trust_remote_code, "accepted for compatibility; no remote code runs");
  c->add_option("--mem-fraction-static", f->mem_fraction_static,
                "fraction of memory for weights + KV cache (default: a quarter of free memory for the KV cache)")
      ->check(number_between(0, 1, "a fraction between 0 and 1"));
  c->add_option("--max-running-requests", a.engine.max_running_requests)->capture_default_str();
  c->add_option("--max-queued-requests", a.engine.max_queued_requests, "waiting requests beyond this get 503")
      ->check(kNonNegative)
      ->capture_default_str();
  c->add_option("--chunked-prefill-size", a.engine.chunked_prefill_size, "prefill chunk in tokens (-1: no chunking)")
      ->check(number_at_least(-1, true, "-1 (no chunking) or a number of tokens"))
      ->capture_default_str();
  c->add_option("--max-prefill-tokens", a.engine.max_prefill_tokens)->check(kPositive)->capture_default_str();
  c->add_option("--max-total-tokens", f->max_total_tokens, "full-attention KV pool size in tokens (default: memory)")
      ->check(kNonNegative);
  c->add_option("--context-length", f->context_length, "default: the model's max_position_embeddings")
      ->check(kNonNegative);
  c->add_option("--page-size", a.engine.page_size)->capture_default_str();
  c->add_flag("--disable-radix-cache", a.engine.disable_radix_cache, "no prefix caching");
  c->add_option("--schedule-policy", a.engine.schedule_policy, "fcfs | lpm")->capture_default_str();
  c->add_option("--swa-full-tokens-ratio", a.engine.swa_full_tokens_ratio, "SWA pool size / full pool size")
      ->check(kPositive)
      ->capture_default_str();
  c->add_option("--model-loader-extra-config", f->loader_extra,
                "JSON: {\"enable_multithread_load\": true, \"num_threads\": N} (threads converting weights)")
      ->capture_default_str();
  c->add_option("--attention-backend", f->attention_backend, "auto | native | fa3 (CUDA)")->capture_default_str();
  c->add_option("--speculative-algorithm", f->spec_algorithm, "EAGLE | NEXTN | MTP: draft with the model's MTP layers");
  c->add_option("--speculative-num-steps", f->spec_steps, "draft tokens per step: 1, 2, 3 or auto (default 3)");
  c->add_option("--speculative-eagle-topk", f->spec_topk, "drafts per step (only 1: a chain)");
  c->add_option("--speculative-num-draft-tokens", f->spec_draft_tokens, "tokens verified per step (steps + 1)");
  c->add_flag("--enable-mtp", f->enable_mtp, "speculative decoding with the MTP layers");
  c->add_flag("--disable-overlap-schedule", f->a.engine.disable_overlap_schedule,
              "process outputs between model steps instead of during them");
  c->add_flag("--disable-cuda-graph", a.engine.disable_cuda_graph,
              "run decode, verify and draft steps op by op instead of as captured CUDA graphs");
  c->add_option("--cuda-graph-max-bs", a.engine.cuda_graph_max_bs,
                "largest batch (requests) a CUDA graph serves (default: --max-running-requests)")
      ->check(CLI::Range(0, 65536))
      ->capture_default_str();
  c->add_option("--profile-trace", f->a.engine.profile_trace, "write a Chrome trace (JSON) of the engine's threads here at exit");
  c->add_option("--dtype", a.dtype, "weights: auto (FP8 checkpoints stay FP8) | bfloat16 | float32")->capture_default_str();
  c->add_option("--kv-cache-dtype", a.kv_cache_dtype, "KV cache: auto (the weights' compute dtype) | bfloat16 | float32 | fp8_e4m3 (CPU)")
      ->capture_default_str();
  c->add_option("--decode-log-interval", a.engine.decode_log_interval,
                "log a 'Decode batch' line every this many decode steps (at most one a second; 0: no batch lines)")
      ->check(kNonNegative)
      ->capture_default_str();
  c->add_flag("--log-requests", f->log_requests, "log a line per finished request (see --log-requests-level)");
  c->add_option("--log-requests-level", f->log_requests_level,
                "0: counts and latency, 1: + sampling parameters, 2: + texts clipped to 2 KB, 3: + whole texts")
      ->check(number_between(0, 3, "0, 1, 2 or 3"))
      ->capture_default_str();
  c->add_option("--watchdog-timeout", a.engine.watchdog_timeout_s,
                "end the server (exit code 3) when a model step runs longer than this many seconds; 0: never")
      ->check(kNonNegative)
      ->capture_default_str();
  c->add_option("--stream-interval", a.engine.stream_interval,
                "new tokens per streamed chunk (the first and last chunks excepted); larger: fewer, bigger chunks")
      ->check(kPositive)
      ->capture_default_str();
  c->add_option("--quantization", a.quantization, "fp8: serve the checkpoint's FP8 weights as FP8 (the default for FP8 checkpoints)");
  c->add_option("--device", a.device, "cpu | cuda | auto")->capture_default_str();
  c->add_option("--threads", a.threads, "CPU compute threads (default: all cores)")->check(kNonNegative);
  c->add_option("--random-seed", f->random_seed, "seed for requests that give none")->capture_default_str();
  c->add_option("--log-level", f->log_level, "debug | info | warning | error")->capture_default_str();
  c->add_flag("--enable-metrics", f->enable_metrics, "accepted; /metrics is always on");
  c->add_flag("--allow-auto-truncate", a.engine.allow_auto_truncate,
              "a prompt longer than the context keeps its first context-length - 1 tokens instead of a 400");
  c->add_flag("--enable-cache-report", f->enable_cache_report,
              "accepted; usage.prompt_tokens_details.cached_tokens is always reported");
  c->add_option("--max-request-bytes", a.max_body_bytes, "larger request bodies get 413")->capture_default_str();
  c->add_flag("--skip-server-warmup", a.skip_warmup, "open the port without first generating a few tokens");
  c->add_option("--drain-timeout", a.drain_timeout_s,
                "on SIGTERM/SIGINT, seconds in-flight requests may take to finish before they are aborted")
      ->check(kNonNegative)
      ->capture_default_str();
  c->callback([f] { run(*f); });
}

}  // namespace mimo::cli

#endif  // MIMOSERVE_HAS_SERVER
