// `mimoserve bench-one-batch`: static-batch latency and throughput (like
// sglang.bench_one_batch), next to this machine's measured read bandwidth
// and FLOP/s so the figures say how close the run came to the hardware.
#include <fstream>
#include <iostream>
#include <sstream>

#include <CLI/CLI.hpp>

#include "bench/one_batch.h"
#include "bench/svg_chart.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "core/error.h"
#include "core/log.h"
#include "core/thread_pool.h"
#include "loader/load_model.h"

namespace mimo::cli {

namespace {

struct BenchArgs {
  std::string model_path;
  std::string batch_sizes = "1";
  int input_len = 512, output_len = 32;
  int threads = 0;
  std::string json, plot;
  std::string dtype = "auto";
  std::string kv_cache_dtype = "auto";
  std::string device = "auto";
  uint64_t seed = 1;
  int64_t bw_mib = 1024, gemm_n = 1536;
  bool skip_machine = false;
  bool no_interleave = false, no_probes = false, disable_cuda_graph = false;
  std::string log_level = "warning";
};

void run(const BenchArgs& a) {
  set_log_level(a.log_level);
  if (a.threads > 0) ThreadPool::set_global_threads(a.threads);
  bench::OneBatchOptions opt;
  opt.batch_sizes = parse_ints(a.batch_sizes, "--batch-size", 1);
  opt.input_len = a.input_len;
  opt.output_len = a.output_len;
  opt.seed = a.seed;
  opt.interleave = !a.no_interleave;
  opt.paired_probes = !a.no_probes;
  opt.gemm_n = a.gemm_n;
  opt.graphs = !a.disable_cuda_graph;
  auto backend = make_backend(a.device);
  // The paired probes are CPU ones (FMA loop, read bandwidth on the pool).
  if (backend->device() != Device::CPU) opt.paired_probes = false;
  bench::CountingBackend counter(*backend);
  bench::MachineFigures m;
  if (!a.skip_machine) m = bench::measure_machine(*backend, size_t(a.bw_mib) << 20, a.gemm_n);
  m.threads = ThreadPool::global().size();
  ModelLoadOptions mo;
  mo.dtype = a.dtype;
  LoadedModel lm = load_model(resolve_model_path(a.model_path), counter, mo);
  const bool on_cpu = backend->device() == Device::CPU;
  if (std::string why = kv_cache_dtype_from_flag(a.kv_cache_dtype, lm.weight_dtype, on_cpu, &opt.kv_dtype); !why.empty())
    fail("{}", why);
  std::vector<bench::OneBatchResult> rs = bench::run_one_batch(*lm.model, counter, opt);
  // Measured again after the run: the machine's figures are the best of both.
  if (!a.skip_machine) m = bench::best_of(m, bench::measure_machine(*backend, size_t(a.bw_mib) << 20, a.gemm_n));
  std::cout << "model: " << lm.path << " on " << backend->name() << "\n" << bench::format_report(m, rs);
  if (!a.json.empty()) {
    std::ofstream f(a.json);
    if (!f) fail("cannot write {}", a.json);
    nlohmann::json j = bench::to_json(m, rs);
    j["model_path"] = lm.path;
    j["backend"] = backend->name();
    f << j.dump(2) << "\n";
  }
  if (!a.plot.empty()) {
    namespace ch = bench::chart;
    ch::Panel pre = ch::panel("Prefill throughput vs batch size", "batch size", "prefill tok/s", true);
    ch::Panel dec = ch::panel("Decode throughput vs batch size", "batch size", "decode tok/s", true);
    ch::Series pt = ch::series(fmt::format("input {}", a.input_len)), dt = ch::series("total"),
               dr = ch::series("per request");
    for (auto& r : rs) {
      pt.x.push_back(r.batch), pt.y.push_back(r.prefill_tok_s());
      dt.x.push_back(r.batch), dt.y.push_back(r.decode_tok_s());
      dr.x.push_back(r.batch), dr.y.push_back(r.decode_median_s > 0 ? 1 / r.decode_median_s : 0);
    }
    pre.series = {pt};
    dec.series = {dt, dr};
    ch::write(a.plot, {pre, dec});
  }
}

}  // namespace

void register_bench_commands(CLI::App& app) {
  auto a = std::make_shared<BenchArgs>();
  CLI::App* c = app.add_subcommand("bench-one-batch",
                                   "static-batch prefill/decode latency and throughput, with the machine's measured "
                                   "read bandwidth and peak FLOP/s");
  c->add_option("--model-path", a->model_path, "checkpoint directory")->required();
  c->add_option("--batch-size", a->batch_sizes, "comma-separated batch sizes, e.g. 1,16");
  c->add_option("--input-len", a->input_len, "prompt tokens per sequence")->check(kPositive);
  c->add_option("--output-len", a->output_len, "tokens per sequence (1 from prefill, the rest decode steps)")
      ->check(kPositive);
  c->add_option("--threads", a->threads, "CPU threads (default: all cores)")->check(kNonNegative);
  c->add_option("--device", a->device, "cpu | cuda | auto (cuda when built with it and a GPU is present)")
      ->capture_default_str();
  c->add_option("--json", a->json, "also write the results to this JSON file");
  c->add_option("--plot", a->plot, "also write throughput vs batch size to this SVG file");
  c->add_option("--kv-cache-dtype", a->kv_cache_dtype, "KV cache: auto (the weights' compute dtype) | bfloat16 | float32 | fp8_e4m3 (CPU)");
  c->add_option("--dtype", a->dtype, "weight dtype: auto|float32|bfloat16 (auto keeps FP8 checkpoints FP8)")
      ->check(CLI::IsMember({"auto", "float32", "bfloat16", "fp32", "bf16"}));
  c->add_option("--seed", a->seed, "seed of the random prompts");
  c->add_option("--bandwidth-mib", a->bw_mib, "buffer size of the read-bandwidth probe")->check(kPositive);
  c->add_option("--gemm-n", a->gemm_n, "n of the n x n x n GEMM peak probe")->check(kPositive);
  c->add_flag("--skip-machine", a->skip_machine, "do not measure bandwidth and peak FLOP/s");
  c->add_flag("--no-interleave", a->no_interleave,
              "run each batch size's decode steps in turn (default: all batch sizes' steps in rounds)");
  c->add_flag("--no-paired-probes", a->no_probes,
              "do not probe FMA peak around each prefill and read bandwidth around each decode round");
  c->add_flag("--disable-cuda-graph", a->disable_cuda_graph,
              "time decode steps op by op instead of as CUDA graph replays (CUDA only)");
  c->add_option("--log-level", a->log_level);
  c->callback([a] { run(*a); });
}

}  // namespace mimo::cli
