// `mimoserve bench-serving`: online serving benchmark over HTTP against a
// running server (ours or any OpenAI-compatible / SGLang one), with the
// flags of `python -m sglang.bench_serving`. The work is in
// src/bench/serving.*; this file is flags and output files.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <limits>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "bench/serving.h"
#include "cli/commands.h"
#include "core/error.h"

namespace mimo::cli {

namespace {

struct ServingArgs {
  std::string backend = "sglang-oai", base_url, host = "127.0.0.1", model, dataset = "random";
  int port = 30000;
  int num_prompts = 1000, input_len = 1024, output_len = 1024, vocab = 0;
  double range_ratio = 0.0;
  uint64_t seed = 1;
  std::string request_rate = "inf";
  int max_concurrency = 0, warmup = 1;
  bool disable_stream = false, disable_ignore_eos = false;
  double timeout_s = 600;
  std::string output_file, extra_body, plot, api_key;
};

double parse_rate(const std::string& s) {
  const std::optional<double> r = parse_number(s);  // "inf" = all at once
  if (!r || !(*r > 0)) fail("--request-rate: '{}' is not a positive number or inf", s);
  return *r;
}

void log_line(const std::string& s) { std::fprintf(stderr, "bench-serving: %s\n", s.c_str()); }

void run(const ServingArgs& a) {
  namespace sv = bench::serving;
  sv::Options opt;
  opt.api = sv::parse_backend(a.backend);
  opt.backend_name = a.backend;
  opt.base_url = a.base_url.empty() ? "http://" + a.host + ":" + std::to_string(a.port) : a.base_url;
  opt.model = a.model;
  opt.api_key = a.api_key;
  if (opt.api_key.empty())
    if (const char* k = std::getenv("OPENAI_API_KEY")) opt.api_key = k;
  opt.stream = !a.disable_stream;
  opt.ignore_eos = !a.disable_ignore_eos;
  opt.request_rate = parse_rate(a.request_rate);
  opt.max_concurrency = a.max_concurrency;
  opt.warmup_requests = a.warmup;
  opt.request_timeout_s = a.timeout_s;
  opt.seed = a.seed;
  if (!a.extra_body.empty()) {
    opt.extra_body = nlohmann::json::parse(a.extra_body, nullptr, false);
    if (opt.extra_body.is_discarded() || !opt.extra_body.is_object())
      fail("--extra-request-body must be a JSON object, got: {}", a.extra_body);
  }
  if (a.dataset != "random") fail("--dataset-name: only 'random' is supported");

  // Token-id prompts need the vocabulary size: ours reports it in
  // /get_model_info; elsewhere fall back to a size every real model has.
  bool as_text = opt.api == sv::Api::Chat;
  int vocab = a.vocab;
  if (!as_text && vocab <= 0) {
    std::string err;
    auto info = sv::get_json(opt, "/get_model_info", &err);
    if (!info && err.rfind("cannot reach", 0) == 0) fail("{} (is the server running?)", err);
    if (info && info->contains("vocab_size") && (*info)["vocab_size"].is_number_integer())
      vocab = (*info)["vocab_size"].get<int>();
    if (vocab <= 0) {
      vocab = 32000;
      log_line("the server does not report vocab_size; random token ids below 32000 (set --random-vocab-size)");
    }
  }
  std::vector<sv::RequestSpec> ds =
      sv::random_dataset(a.num_prompts, a.input_len, a.output_len, a.range_ratio, vocab, a.seed, as_text);

  sv::BenchResult r = sv::run_benchmark(opt, ds, log_line);
  std::cout << sv::format_report(r.summary) << std::flush;

  if (!a.output_file.empty()) {
    nlohmann::json j = sv::to_json(r.summary, r.requests);
    j["base_url"] = opt.base_url;
    j["model"] = r.model;
    j["dataset_name"] = a.dataset;
    j["num_prompts"] = a.num_prompts;
    j["random_input_len"] = a.input_len;
    j["random_output_len"] = a.output_len;
    j["random_range_ratio"] = a.range_ratio;
    j["seed"] = a.seed;
    j["stream"] = opt.stream;
    std::ofstream f(a.output_file);
    if (!f) fail("cannot write {}", a.output_file);
    f << j.dump(2) << "\n";
  }
  if (!a.plot.empty()) {
    std::ofstream f(a.plot);
    if (!f) fail("cannot write {}", a.plot);
    f << sv::cdf_plot_svg(r.requests, "bench-serving " + a.backend + ": " + std::to_string(r.summary.completed) +
                                          " requests, rate " + a.request_rate);
  }
  if (r.summary.completed == 0) fail("every request failed; the first error: {}", r.summary.first_error);
}

}  // namespace

void register_bench_serving(CLI::App& app) {
  auto a = std::make_shared<ServingArgs>();
  CLI::App* c = app.add_subcommand(
      "bench-serving",
      "online serving benchmark against a running server over HTTP (TTFT, TPOT, ITL, E2E latency, throughput), "
      "like python -m sglang.bench_serving");
  c->add_option("--backend", a->backend,
                "sglang-oai (POST /v1/completions), sglang-oai-chat (/v1/chat/completions) or sglang (/generate)")
      ->check(CLI::IsMember({"sglang-oai", "sglang-oai-chat", "sglang", "sglang-native", "vllm", "openai",
                             "openai-chat", "vllm-chat", "lmdeploy"}));
  c->add_option("--base-url", a->base_url, "server URL, e.g. http://127.0.0.1:30000 (overrides --host/--port)");
  c->add_option("--host", a->host, "server host");
  c->add_option("--port", a->port, "server port")->check(number_between(1, 65535, "a port number, 1 to 65535"));
  c->add_option("--model", a->model, "model name in requests (default: the first of GET /v1/models)");
  c->add_option("--api-key", a->api_key, "bearer token (default: $OPENAI_API_KEY)");
  c->add_option("--dataset-name", a->dataset, "dataset: random");
  c->add_option("--num-prompts", a->num_prompts, "requests to send")->check(kPositive);
  c->add_option("--random-input-len", a->input_len, "prompt tokens (the maximum with --random-range-ratio)")
      ->check(kPositive);
  c->add_option("--random-output-len", a->output_len, "output tokens (the maximum with --random-range-ratio)")
      ->check(kPositive);
  c->add_option("--random-range-ratio", a->range_ratio, "lengths are uniform in [ratio * len, len]")
      ->check(CLI::Range(0.0, 1.0));
  c->add_option("--random-vocab-size", a->vocab,
                "random prompt ids are below this (default: the server's /get_model_info vocab_size, else 32000)");
  c->add_option("--seed", a->seed, "seed of the dataset and of the arrival times");
  c->add_option("--request-rate", a->request_rate,
                "requests per second, Poisson arrivals; inf sends all at once");
  c->add_option("--max-concurrency", a->max_concurrency, "most requests in flight (default: no limit)")
      ->check(kNonNegative);
  c->add_option("--warmup-requests", a->warmup, "requests sent (and checked) before the benchmark")
      ->check(kNonNegative);
  c->add_flag("--disable-stream", a->disable_stream, "non-streaming requests (TTFT is then the whole latency)");
  c->add_flag("--disable-ignore-eos", a->disable_ignore_eos, "let requests stop at EOS");
  c->add_option("--request-timeout", a->timeout_s, "seconds before a request counts as failed")
      ->check(kPositive);
  c->add_option("--output-file", a->output_file, "write every figure and the per-request arrays to this JSON file");
  c->add_option("--extra-request-body", a->extra_body, "JSON object merged into every request body");
  c->add_option("--plot", a->plot, "write the CDF of TTFT and E2E latency to this SVG file");
  c->callback([a] { run(*a); });
}

}  // namespace mimo::cli
