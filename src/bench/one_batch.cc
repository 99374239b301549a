#include "bench/one_batch.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <random>

#include "core/error.h"
#include "core/log.h"
#include "core/thread_pool.h"
#include "bench/machine.h"

namespace mimo::bench {

namespace {

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
double cpu_now() {
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

std::vector<int32_t> argmax_rows(const std::vector<float>& logits, int rows, int64_t V) {
  std::vector<int32_t> ids(static_cast<size_t>(rows));
  for (int r = 0; r < rows; r++) {
    const float* p = logits.data() + int64_t(r) * V;
    ids[size_t(r)] = int32_t(std::max_element(p, p + V) - p);
  }
  return ids;
}

// One batch size's state: its own KV cache (every sequence in its own
// region) and the tokens its sequences feed next.
struct Run {
  int B = 0, out_len = 0;
  int32_t cap = 0;
  std::unique_ptr<KvCache> kv;
  std::vector<int32_t> next;
  OneBatchResult r;
  std::vector<double> times, bytes, bws, flops, fracs;
  std::vector<double> op_s[kNumOpKinds], op_bytes[kNumOpKinds];  // per step, by op family
  int64_t experts = 0;
  double cpu = 0, wall = 0;
};

Run prefill(Model& model, CountingBackend& cb, const OneBatchOptions& opt, int B, int out_len) {
  const ModelSpec& spec = model.spec();
  const int64_t V = spec.vocab_size;
  ThreadPool& pool = ThreadPool::global();
  Run run;
  run.B = B;
  run.out_len = out_len;
  run.cap = opt.input_len + out_len;
  run.kv = std::make_unique<KvCache>(spec, cb, opt.kv_dtype, std::vector<int64_t>{int64_t(B) * run.cap, int64_t(B) * run.cap});
  // Touch the cache now, so page faults of fresh memory are not timed (a
  // server's KV pool is allocated once and reused).
  for (int l = 0; l < spec.num_layers(); l++) {
    cb.zero_(run.kv->k(l));
    cb.zero_(run.kv->v(l));
  }
  std::mt19937_64 g(opt.seed);
  std::uniform_int_distribution<int32_t> tok(0, int32_t(V - 1));
  OneBatchResult& r = run.r;
  r.batch = B;
  r.input_len = opt.input_len;
  r.output_len = out_len;
  std::vector<float> logits(size_t(B) * size_t(V));
  StepBatch pb;
  for (int b = 0; b < B; b++) {
    std::vector<int32_t> prompt(static_cast<size_t>(opt.input_len));
    for (auto& t : prompt) t = tok(g);
    pb.add_contiguous(prompt, 0, false, b * run.cap);
  }
  if (opt.synthetic_prefill) {
    run.next.resize(size_t(B));
    for (auto& t : run.next) t = tok(g);
    return run;
  }
  const double fma0 = opt.paired_probes ? fma_peak_flops(pool, 0.1) : 0;
  const double gemm0 = opt.paired_probes ? gemm_flops(cb.inner(), opt.gemm_n, 2) : 0;
  cb.counts().clear();
  double t0 = now(), c0 = cpu_now();
  cb.copy_to_host(logits.data(), model.forward(pb, *run.kv));
  run.next = argmax_rows(logits, B, V);
  r.prefill_s = now() - t0;
  r.prefill_cpu = (cpu_now() - c0) / (r.prefill_s * pool.size());
  r.prefill_flops = cb.counts().flops;
  for (int k = 0; k < kNumOpKinds; k++) r.prefill_op_s[k] = cb.counts().seconds[k];
  if (opt.paired_probes) {
    const double fma = 0.5 * (fma0 + fma_peak_flops(pool, 0.1));
    if (fma > 0) r.prefill_frac_fma_paired = r.prefill_flops / r.prefill_s / fma;
    const double gemm = 0.5 * (gemm0 + gemm_flops(cb.inner(), opt.gemm_n, 2));
    if (gemm > 0) r.prefill_frac_gemm_paired = r.prefill_flops / r.prefill_s / gemm;
  }
  return run;
}

// `graphed`: the same model on the inner backend with graphs enabled, or null.
void decode_step(Model& model, Model* graphed, CountingBackend& cb, const OneBatchOptions& opt, Run& run, int i) {
  const int64_t V = model.spec().vocab_size;
  std::vector<float> logits(size_t(run.B) * size_t(V));
  StepBatch db;
  for (int b = 0; b < run.B; b++) db.add_contiguous({run.next[size_t(b)]}, opt.input_len + i, false, b * run.cap);
  cb.counts().clear();
  if (graphed) {
    // The counts come from this untimed op-by-op run (the counter reads
    // routing and metadata back, which a graph replay cannot); the timed
    // replay below computes and writes the very same.
    cb.copy_to_host(logits.data(), model.forward(db, *run.kv));
    run.r.decode_graphs = true;
  }
  const double t0 = now(), c0 = cpu_now();
  Model& timed = graphed ? *graphed : model;
  cb.copy_to_host(logits.data(), timed.forward(db, *run.kv));
  run.next = argmax_rows(logits, run.B, V);
  const double dt = now() - t0;
  run.cpu += cpu_now() - c0;
  run.wall += dt;
  const OpCounts& c = cb.counts();
  run.times.push_back(dt);
  run.bytes.push_back(c.total_bytes());
  run.bws.push_back(c.total_bytes() / dt);
  run.flops.push_back(c.flops);
  run.experts += c.experts;
  for (int k = 0; k < kNumOpKinds; k++) {
    run.op_s[k].push_back(c.seconds[k]);
    run.op_bytes[k].push_back(c.bytes[k]);
  }
}

void finish(const Model& model, Run& run) {
  OneBatchResult& r = run.r;
  const auto& layers = model.spec().layers;
  const int moe_layers =
      int(std::count_if(layers.begin(), layers.end(), [](const LayerSpec& l) { return l.ffn == FfnKind::MoE; }));
  r.decode_steps = int(run.times.size());
  // Medians, as for the step time: a step the machine preempted inside one
  // op would otherwise charge that op's family (seen: a 2.2 ms attention
  // call among 64-120 us ones).
  for (int k = 0; k < kNumOpKinds; k++) {
    r.decode_op_s[k] = median(run.op_s[k]);
    r.decode_op_bytes[k] = median(run.op_bytes[k]);
  }
  if (run.wall > 0) r.decode_cpu = run.cpu / (run.wall * ThreadPool::global().size());
  r.decode_median_s = median(run.times);
  r.decode_bytes = median(run.bytes);
  r.decode_bw = median(run.bws);
  r.decode_flops = median(run.flops);
  r.decode_frac_bw_paired = median(run.fracs);
  if (r.decode_steps > 0 && moe_layers > 0) r.experts_per_layer = double(run.experts) / r.decode_steps / moe_layers;
}

// Decode rounds: every run takes one step per round (interleaved) or all
// its steps in turn; with paired probes, the read bandwidth is probed
// between rounds and each step is divided by the mean of its neighbours.
void decode_all(Model& model, Model* graphed, CountingBackend& cb, const OneBatchOptions& opt,
                std::vector<Run>& runs) {
  ThreadPool& pool = ThreadPool::global();
  auto probe = [&] { return opt.paired_probes ? read_bandwidth(pool, opt.probe_bytes, 1) : 0.0; };
  auto round = [&](std::vector<Run*> rs, int i) {
    const double before = probe();
    std::vector<size_t> first;
    for (Run* r : rs) {
      first.push_back(r->bws.size());
      decode_step(model, graphed, cb, opt, *r, i);
    }
    const double bw = 0.5 * (before + probe());
    for (size_t k = 0; k < rs.size(); k++)
      if (bw > 0) rs[k]->fracs.push_back(rs[k]->bws[first[k]] / bw);
  };
  if (opt.interleave) {
    int steps = 0;
    for (auto& r : runs) steps = std::max(steps, r.out_len - 1);
    for (int i = 0; i < steps; i++) {
      std::vector<Run*> rs;
      for (auto& r : runs)
        if (i + 1 < r.out_len) rs.push_back(&r);
      round(rs, i);
    }
  } else {
    for (auto& r : runs)
      for (int i = 0; i + 1 < r.out_len; i++) round({&r}, i);
  }
}

}  // namespace

MachineFigures measure_machine(Backend& backend, size_t bw_bytes, int64_t gemm_n) {
  ThreadPool& pool = ThreadPool::global();
  MachineFigures m;
  m.threads = pool.size();
  m.device = backend.device() != Device::CPU;
  if (m.device) {
    m.read_bw = copy_bandwidth(backend, bw_bytes);
  } else {
    m.read_bw = read_bandwidth(pool, bw_bytes);
    m.fma_peak = fma_peak_flops(pool);
  }
  m.gemm_n = gemm_n;
  m.gemm_peak = gemm_flops(backend, gemm_n);
  return m;
}

MachineFigures best_of(const MachineFigures& a, const MachineFigures& b) {
  MachineFigures m = a;
  m.read_bw = std::max(a.read_bw, b.read_bw);
  m.fma_peak = std::max(a.fma_peak, b.fma_peak);
  m.gemm_peak = std::max(a.gemm_peak, b.gemm_peak);
  return m;
}

std::vector<OneBatchResult> run_one_batch(Model& model, CountingBackend& cb, const OneBatchOptions& opt) {
  MIMO_CHECK(opt.input_len > 0 && opt.output_len > 0, "--input-len and --output-len must be positive");
  MIMO_CHECK(!opt.batch_sizes.empty(), "no batch sizes");
  for (int B : opt.batch_sizes) MIMO_CHECK(B > 0, "batch size {} must be positive", B);
  // Warm-up (as sglang does): grows the workspace and scratch buffers and
  // faults in the weights before anything is timed. With the largest batch:
  // a prefill that grows the workspace past its warm-up size pays the kernel's
  // first touch of the new pages (measured at 512 tokens: batch 4 took 2.26-2.33
  // s after a batch-1 warm-up, 1.57-1.60 s after a batch-4 one).
  const int warm = std::min(opt.output_len, 4);
  const int warm_batch = *std::max_element(opt.batch_sizes.begin(), opt.batch_sizes.end());
  spdlog::info("warm-up: batch {}, {} + {} tokens", warm_batch, opt.input_len, warm);
  // Graph replays, on the inner backend, of the same weights.
  std::unique_ptr<Model> graphed;
  if (opt.graphs && cb.inner().can_capture()) {
    graphed = std::make_unique<Model>(model.spec(), model.weights(), cb.inner());
    graphed->enable_graphs(*std::max_element(opt.batch_sizes.begin(), opt.batch_sizes.end()));
  }
  {
    std::vector<Run> w;
    w.push_back(prefill(model, cb, opt, warm_batch, warm));
    decode_all(model, graphed.get(), cb, opt, w);
  }
  std::vector<Run> runs;
  for (int B : opt.batch_sizes) {
    runs.push_back(prefill(model, cb, opt, B, opt.output_len));
    spdlog::info("batch {}: prefill {:.3f} s", B, runs.back().r.prefill_s);
  }
  decode_all(model, graphed.get(), cb, opt, runs);
  std::vector<OneBatchResult> out;
  for (auto& r : runs) {
    finish(model, r);
    out.push_back(r.r);
    spdlog::info("batch {}: decode median {:.2f} ms", r.B, r.r.decode_median_s * 1e3);
  }
  return out;
}

std::string format_report(const MachineFigures& m, const std::vector<OneBatchResult>& rs) {
  std::string s =
      m.device ? fmt::format("device: copy bandwidth (read + write) {:.1f} GB/s; GEMM (linear {}^3, fp32 or bf16 "
                             "weights) {:.1f} GFLOP/s; %bw below is bytes read per step over this copy bandwidth\n",
                             m.read_bw / 1e9, m.gemm_n, m.gemm_peak / 1e9)
               : fmt::format("machine: {} threads; streaming read {:.1f} GB/s; fp32 FMA-loop peak {:.1f} GFLOP/s; "
                             "GEMM (linear {}^3, fp32 or bf16 weights) {:.1f} GFLOP/s\n",
                             m.threads, m.read_bw / 1e9, m.fma_peak / 1e9, m.gemm_n, m.gemm_peak / 1e9);
  s += fmt::format(
      "{:>5} {:>6} {:>6} | {:>9} {:>9} {:>8} {:>6} {:>6} {:>6} {:>6} | {:>9} {:>9} {:>8} {:>6} {:>6} {:>6} {:>7} "
      "{:>6}\n",
      "batch", "in", "out", "prefill_s", "tok/s", "GFLOP/s", "%fma", "%fma*", "%gemm", "%gemm*", "decode_ms", "tok/s", "MB/step",
      "GB/s", "%bw", "%bw*", "experts", "x b1");
  double b1 = 0;
  for (auto& r : rs)
    if (r.batch == 1) b1 = r.decode_tok_s();
  for (auto& r : rs) {
    double pf = r.prefill_s > 0 ? r.prefill_flops / r.prefill_s : 0;
    s += fmt::format(
        "{:>5} {:>6} {:>6} | {:>9.3f} {:>9.1f} {:>8.1f} {:>5.1f}% {:>5.1f}% {:>5.1f}% {:>5.1f}% | {:>9.2f} {:>9.1f} "
        "{:>8.1f} "
        "{:>6.2f} {:>5.1f}% {:>5.1f}% {:>7.1f} {:>6.2f}\n",
        r.batch, r.input_len, r.output_len, r.prefill_s, r.prefill_tok_s(), pf / 1e9,
        m.fma_peak > 0 ? 100 * pf / m.fma_peak : 0.0, 100 * r.prefill_frac_fma_paired,
        m.gemm_peak > 0 ? 100 * pf / m.gemm_peak : 0.0, 100 * r.prefill_frac_gemm_paired, r.decode_median_s * 1e3, r.decode_tok_s(),
        r.decode_bytes / 1e6, r.decode_bw / 1e9, m.read_bw > 0 ? 100 * r.decode_bw / m.read_bw : 0.0,
        100 * r.decode_frac_bw_paired, r.experts_per_layer, b1 > 0 ? r.decode_tok_s() / b1 : 0.0);
  }
  s += "(* = against the machine probed right around that phase: FMA and GEMM peaks around the prefill, read "
       "bandwidth around each round of decode steps)\n";
  if (!rs.empty() && rs[0].decode_graphs)
    s += "decode steps timed as graph replays (CUDA graphs); counts from an untimed op-by-op run of each step\n";
  // Where the time went (op families as the model calls them; "moe" is
  // routing plus experts, "linear" includes the router and lm_head). On a
  // GPU ops are asynchronous, so host clocks around them mean nothing
  // unless the backend synchronises after each (MIMOSERVE_CUDA_SYNC=1).
  if (m.device && !std::getenv("MIMOSERVE_CUDA_SYNC")) return s;
  for (auto& r : rs) {
    // `bytes`: what each family read, for its rate (decode: where a step
    // falls short of the read bandwidth).
    auto line = [&](const char* what, const double* t, double total, const double* bytes = nullptr) {
      std::string l = fmt::format("batch {:>3} {:<8}", r.batch, what);
      double acc = 0;
      for (int k = 0; k < kNumOpKinds; k++) {
        l += fmt::format(" {} {:.1f}%", op_kind_name(k), total > 0 ? 100 * t[k] / total : 0.0);
        if (bytes && bytes[k] > 0 && t[k] > 0) l += fmt::format(" ({:.1f} GB/s)", bytes[k] / t[k] / 1e9);
        acc += t[k];
      }
      l += fmt::format(" | outside ops {:.1f}%", total > 0 ? 100 * (total - acc) / total : 0.0);
      return l;
    };
    s += line("prefill", r.prefill_op_s, r.prefill_s) + fmt::format(" | cpu share {:.0f}%\n", 100 * r.prefill_cpu);
    double in_ops = 0;
    for (double v : r.decode_op_s) in_ops += v;
    s += line("decode", r.decode_op_s, std::max(in_ops, r.decode_median_s), r.decode_op_bytes) +
         fmt::format(" | cpu share {:.0f}%\n", 100 * r.decode_cpu);
  }
  return s;
}

nlohmann::json to_json(const MachineFigures& m, const std::vector<OneBatchResult>& rs) {
  nlohmann::json j;
  j["machine"] = {{"threads", m.threads},
                  {"device", m.device},
                  {"read_bandwidth_gb_s", m.read_bw / 1e9},
                  {"fma_peak_gflop_s", m.fma_peak / 1e9},
                  {"gemm_peak_gflop_s", m.gemm_peak / 1e9},
                  {"gemm_n", m.gemm_n}};
  double b1 = 0;
  for (auto& r : rs)
    if (r.batch == 1) b1 = r.decode_tok_s();
  for (auto& r : rs) {
    double pf = r.prefill_s > 0 ? r.prefill_flops / r.prefill_s : 0;
    j["results"].push_back({{"batch_size", r.batch},
                            {"input_len", r.input_len},
                            {"output_len", r.output_len},
                            {"prefill_latency_s", r.prefill_s},
                            {"prefill_throughput_tok_s", r.prefill_tok_s()},
                            {"prefill_gflop", r.prefill_flops / 1e9},
                            {"prefill_gflop_s", pf / 1e9},
                            {"prefill_frac_fma_peak", m.fma_peak > 0 ? pf / m.fma_peak : 0.0},
                            {"prefill_frac_fma_peak_paired", r.prefill_frac_fma_paired},
                            {"prefill_frac_gemm_peak", m.gemm_peak > 0 ? pf / m.gemm_peak : 0.0},
                            {"prefill_frac_gemm_peak_paired", r.prefill_frac_gemm_paired},
                            {"decode_steps", r.decode_steps},
                            {"decode_graphs", r.decode_graphs},
                            {"median_decode_latency_s", r.decode_median_s},
                            {"median_decode_throughput_tok_s", r.decode_tok_s()},
                            {"decode_bytes_per_step", r.decode_bytes},
                            {"decode_gb_s", r.decode_bw / 1e9},
                            {"decode_frac_read_bw", m.read_bw > 0 ? r.decode_bw / m.read_bw : 0.0},
                            {"decode_frac_read_bw_paired", r.decode_frac_bw_paired},
                            {"decode_gflop_per_step", r.decode_flops / 1e9},
                            {"routed_experts_per_moe_layer", r.experts_per_layer},
                            {"decode_speedup_vs_batch1", b1 > 0 ? r.decode_tok_s() / b1 : 0.0},
                            {"prefill_cpu_share", r.prefill_cpu},
                            {"decode_cpu_share", r.decode_cpu}});
    for (int k = 0; k < kNumOpKinds; k++) {
      j["results"].back()["prefill_op_seconds"][op_kind_name(k)] = r.prefill_op_s[k];
      j["results"].back()["decode_op_seconds_per_step"][op_kind_name(k)] = r.decode_op_s[k];
      j["results"].back()["decode_op_bytes_per_step"][op_kind_name(k)] = r.decode_op_bytes[k];
    }
  }
  return j;
}

}  // namespace mimo::bench
