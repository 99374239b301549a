// `mimoserve bench-prefill` and `mimoserve bench-decode`: the performance
// issue's prefill-vs-length (hybrid against all-full attention, with the SWA
// KV-memory check) and decode-vs-batch / decode-vs-length sweeps, each next
// to this machine's measured read bandwidth and peak FLOP/s, with --json
// and --plot (SVG) outputs. The measuring is in src/bench/sweep.*.
#include <fstream>
#include <iostream>
#include <sstream>

#include <CLI/CLI.hpp>

#include "bench/sweep.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "core/error.h"
#include "core/log.h"
#include "core/thread_pool.h"
#include "loader/load_model.h"

namespace mimo::cli {

namespace {

struct Common {
  std::string model_path, json, plot, dtype = "auto", log_level = "warning", device = "auto";
  int threads = 0;
  uint64_t seed = 1;
  int64_t bw_mib = 1024, gemm_n = 1536;
  bool skip_machine = false;
};

void add_common(CLI::App* c, Common& a) {
  c->add_option("--model-path", a.model_path, "checkpoint directory (default: the embedded model)");
  c->add_option("--threads", a.threads, "CPU threads (default: all cores)")->check(kNonNegative);
  c->add_option("--device", a.device, "cpu | cuda | auto (cuda when built with it and a GPU is present)")
      ->capture_default_str();
  c->add_option("--json", a.json, "also write the results to this JSON file");
  c->add_option("--plot", a.plot, "also write the curves to this SVG file");
  c->add_option("--dtype", a.dtype, "weight dtype: auto|float32|bfloat16 (auto keeps FP8 checkpoints FP8)")
      ->check(CLI::IsMember({"auto", "float32", "bfloat16", "fp32", "bf16"}));
  c->add_option("--seed", a.seed, "seed of the random prompts");
  c->add_option("--bandwidth-mib", a.bw_mib, "buffer size of the read-bandwidth probe")->check(kPositive);
  c->add_option("--gemm-n", a.gemm_n, "n of the n x n x n GEMM peak probe")->check(kPositive);
  c->add_flag("--skip-machine", a.skip_machine, "do not measure bandwidth and peak FLOP/s");
  c->add_option("--log-level", a.log_level);
}

// Probes the machine before and after `body` (the better figure of the two).
template <typename F>
bench::MachineFigures with_machine(const Common& a, Backend& be, F&& body) {
  bench::MachineFigures m;
  if (!a.skip_machine) m = bench::measure_machine(be, size_t(a.bw_mib) << 20, a.gemm_n);
  body();
  if (!a.skip_machine) m = bench::best_of(m, bench::measure_machine(be, size_t(a.bw_mib) << 20, a.gemm_n));
  m.threads = ThreadPool::global().size();
  return m;
}

void write_json(const std::string& path, nlohmann::json j) {
  if (path.empty()) return;
  std::ofstream f(path);
  if (!f) fail("cannot write {}", path);
  f << j.dump(2) << "\n";
}

struct PrefillArgs : Common {
  std::string input_lens = "1024,2048,4096,8192";
  int chunk = 0, page_size = 1, warmup_len = 256, repeats = 1;
  bool hybrid_only = false;
};

void prefill(const PrefillArgs& a) {
  set_log_level(a.log_level);
  if (a.threads > 0) ThreadPool::set_global_threads(a.threads);
  bench::PrefillOptions opt;
  opt.input_lens = parse_ints(a.input_lens, "--input-lens", 1);
  opt.chunked_prefill_size = a.chunk;
  opt.page_size = a.page_size;
  opt.warmup_len = a.warmup_len;
  opt.repeats = a.repeats;
  opt.seed = a.seed;
  opt.all_full = !a.hybrid_only;
  auto backend = make_backend(a.device);
  bench::CountingBackend counter(*backend);
  ModelLoadOptions mo;
  mo.dtype = a.dtype;
  mo.load_mtp = false;
  LoadedModel lm = load_model(resolve_model_path(a.model_path), counter, mo);
  // The all-full variant: the same weights (shared storage) under the
  // debug override's spec, so one load serves both.
  ModelSpec full_spec = lm.model->spec();
  SpecOverrides ov;
  ov.all_full_attention = true;
  apply_overrides(full_spec, ov);
  Model all_full(full_spec, lm.model->weights(), counter);
  std::vector<bench::PrefillPoint> pts;
  bench::MachineFigures m = with_machine(a, *backend, [&] {
    pts = bench::run_prefill_sweep(*lm.model, opt.all_full ? &all_full : nullptr, counter, opt);
  });
  const ModelSpec& s = lm.model->spec();
  std::cout << "model: " << lm.path << " on " << backend->name() << " (" << s.count(AttnKind::Full) << " full + "
            << s.count(AttnKind::Sliding) << " sliding-window layers)\n"
            << bench::format_prefill(m, pts);
  nlohmann::json j = bench::prefill_json(m, pts);
  j["model_path"] = lm.path;
  j["backend"] = backend->name();
  j["full_layers"] = s.count(AttnKind::Full);
  j["swa_layers"] = s.count(AttnKind::Sliding);
  j["page_size"] = a.page_size;
  j["repeats"] = a.repeats;
  write_json(a.json, j);
  if (!a.plot.empty()) bench::chart::write(a.plot, bench::prefill_plot(pts));
}

struct DecodeArgs : Common {
  std::string batch_sizes = "1,2,4,8,16,32", input_lens = "512,1024,2048,4096,8192";
  int input_len = 512, batch_size = 1, output_len = 16, mtp_steps = 3;
  bool no_engine_baseline = false, real_prefill = false, no_probes = false;
};

void decode(const DecodeArgs& a) {
  set_log_level(a.log_level);
  if (a.threads > 0) ThreadPool::set_global_threads(a.threads);
  bench::DecodeOptions opt;
  opt.batch_sizes = parse_ints(a.batch_sizes, "--batch-sizes", 1);
  opt.input_lens = parse_ints(a.input_lens, "--input-lens", 2);
  opt.input_len = a.input_len;
  opt.batch_size = a.batch_size;
  opt.output_len = a.output_len;
  opt.mtp_steps = a.mtp_steps;
  opt.engine_baseline = !a.no_engine_baseline;
  opt.synthetic_prefill = !a.real_prefill;
  opt.paired_probes = !a.no_probes;
  opt.seed = a.seed;
  auto backend = make_backend(a.device);
  // The paired probes are CPU ones (read bandwidth on the pool).
  if (backend->device() != Device::CPU) opt.paired_probes = false;
  bench::CountingBackend counter(*backend);
  ModelLoadOptions mo;
  mo.dtype = a.dtype;
  LoadedModel lm = load_model(resolve_model_path(a.model_path), counter, mo);
  std::vector<bench::DecodePoint> pts;
  bench::MachineFigures m = with_machine(a, *backend, [&] { pts = bench::run_decode_sweep(*lm.model, counter, opt); });
  std::cout << "model: " << lm.path << " on " << backend->name() << " (" << lm.model->num_mtp_layers()
            << " MTP layers)\n"
            << bench::format_decode(m, pts);
  nlohmann::json j = bench::decode_json(m, pts);
  j["model_path"] = lm.path;
  j["backend"] = backend->name();
  j["mtp_layers"] = lm.model->num_mtp_layers();
  j["synthetic_prefill"] = opt.synthetic_prefill;
  write_json(a.json, j);
  if (!a.plot.empty()) bench::chart::write(a.plot, bench::decode_plot(pts));
}

}  // namespace

void register_bench_sweeps(CLI::App& app) {
  {
    auto a = std::make_shared<PrefillArgs>();
    CLI::App* c = app.add_subcommand(
        "bench-prefill",
        "prefill time vs input length, hybrid SWA against all-full attention, and the SWA KV memory per request");
    add_common(c, *a);
    c->add_option("--input-lens", a->input_lens, "comma-separated prompt lengths");
    c->add_option("--chunked-prefill-size", a->chunk, "prefill chunk (default 0: the whole prompt in one step)")
        ->check(kNonNegative);
    c->add_option("--page-size", a->page_size, "KV page size of the engine's pools")->check(kPositive);
    c->add_option("--warmup-len", a->warmup_len, "prompt length of the untimed warm-up run")
        ->check(kPositive);
    c->add_option("--repeats", a->repeats, "runs per length and variant, alternating; the fastest is kept")
        ->check(kPositive);
    c->add_flag("--hybrid-only", a->hybrid_only, "skip the all-full-attention variant");
    c->callback([a] { prefill(*a); });
  }
  {
    auto a = std::make_shared<DecodeArgs>();
    CLI::App* c = app.add_subcommand(
        "bench-decode", "decode tok/s per request vs batch size and vs input length, without and with MTP");
    add_common(c, *a);
    c->add_option("--batch-sizes", a->batch_sizes, "batch sizes of the batch sweep");
    c->add_option("--input-len", a->input_len, "prompt tokens in the batch sweep")->check(CLI::Range(2, 1 << 24));
    c->add_option("--input-lens", a->input_lens, "prompt lengths of the input-length sweep");
    c->add_option("--batch-size", a->batch_size, "batch of the input-length sweep")->check(kPositive);
    c->add_option("--output-len", a->output_len, "tokens per request (one from prefill, the rest decode)")
        ->check(CLI::Range(2, 1 << 20));
    c->add_option("--mtp-steps", a->mtp_steps, "MTP draft depth of the MTP curve (0: none)")->check(CLI::Range(0, 3));
    c->add_flag("--no-engine-baseline", a->no_engine_baseline, "skip depth 0 through the engine");
    c->add_flag("--real-prefill", a->real_prefill,
                "no-MTP curve: compute the prompts (default: zeroed KV of the same size, decode reads the same bytes)");
    c->add_flag("--no-paired-probes", a->no_probes, "do not probe the read bandwidth around each decode round");
    c->callback([a] { decode(*a); });
  }
}

}  // namespace mimo::cli
