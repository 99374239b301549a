#include "bench/sweep.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>
#include <thread>

#include "core/error.h"
#include "core/log.h"
#include "core/thread_pool.h"
#include "engine/engine.h"
#include "kv/kv_cache.h"

namespace mimo::bench {

namespace {

using Clock = std::chrono::steady_clock;
double secs(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

std::vector<int32_t> random_tokens(std::mt19937_64& g, int64_t vocab, int n) {
  std::uniform_int_distribution<int32_t> d(0, int32_t(vocab - 1));
  std::vector<int32_t> v(static_cast<size_t>(n));
  for (auto& t : v) t = d(g);
  return v;
}

// What the requests of one submit produced: per request, its rate.
struct Collected {
  double wall_s = 0;
  std::vector<double> rate;
  int64_t tokens = 0;
};

Collected submit_and_collect(Engine& e, const std::vector<std::vector<int32_t>>& prompts, int max_new) {
  std::vector<std::shared_ptr<RequestHandle>> hs;
  const auto t0 = Clock::now();
  for (auto& p : prompts) {
    EngineRequest r;
    r.input_ids = p;
    r.sampling.max_new_tokens = max_new;
    r.sampling.ignore_eos = true;
    hs.push_back(e.submit(r)[0]);
  }
  std::vector<double> first(hs.size()), last(hs.size());
  std::vector<int64_t> count(hs.size());
  std::vector<std::string> errors(hs.size());
  std::vector<std::thread> ts;
  for (size_t i = 0; i < hs.size(); i++)
    ts.emplace_back([&, i] {
      EngineOutput o;
      bool got_first = false;
      while (hs[i]->next(&o, std::chrono::seconds(3600))) {
        double t = secs(t0, Clock::now());
        if (!got_first && !o.token_ids.empty()) {
          got_first = true;
          first[i] = t;
          count[i] = -1;  // the first token is the prefill's
        }
        count[i] += int64_t(o.token_ids.size());
        last[i] = t;
        if (!o.error.empty()) errors[i] = o.error;
        if (o.finished) return;
      }
      errors[i] = "timed out";
    });
  for (auto& t : ts) t.join();
  for (auto& err : errors)
    if (!err.empty()) fail("benchmark request failed: {}", err);
  Collected c;
  c.wall_s = secs(t0, Clock::now());
  // The rate of a request is its tokens over the time from submit to its
  // last token: the engine hands tokens out in bursts (overlap, MTP), so a
  // first-to-last-token rate can divide by almost nothing. The prompts the
  // decode sweeps submit share a cached prefix, so their prefill is one
  // step of a few tokens per request, like a decode step.
  for (size_t i = 0; i < hs.size(); i++) {
    c.rate.push_back(last[i] > 0 ? double(count[i] + 1) / last[i] : 0.0);
    c.tokens += count[i] + 1;
  }
  return c;
}

double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0 : s / double(v.size());
}

int window_of(const ModelSpec& spec) {
  for (auto& l : spec.layers)
    if (l.attn.kind == AttnKind::Sliding) return l.attn.window;
  return 0;
}

// One prefill through a fresh engine: prefix cache off (fresh KV), one
// chunk unless asked otherwise, one new token (so the prefill is the only
// forward and the counters hold it alone).
PrefillPoint prefill_once(Model& model, CountingBackend& cb, const PrefillOptions& opt, const std::string& variant,
                          const std::vector<int32_t>& prompt) {
  const int L = int(prompt.size());
  EngineConfig c;
  c.kv_dtype = model.weights().dtype;
  c.disable_radix_cache = true;
  c.disable_overlap_schedule = true;
  c.page_size = opt.page_size;
  c.chunked_prefill_size = opt.chunked_prefill_size > 0 ? opt.chunked_prefill_size : L;
  c.max_prefill_tokens = std::max(L, c.chunked_prefill_size);
  c.context_length = L + 64;
  c.max_total_tokens = L + 8 * opt.page_size + 64;
  c.max_running_requests = 1;
  Engine e(c, model);
  cb.counts().clear();
  submit_and_collect(e, {prompt}, 1);
  e.shutdown(true);  // the engine thread has ended: stats and counters are final
  EngineStats s = e.stats();
  PrefillPoint p;
  p.variant = variant;
  p.input_len = L;
  p.seconds = s.model_busy_seconds;
  p.flops = cb.counts().flops;
  p.weight_bytes = cb.counts().weight_bytes();
  for (int k = 0; k < kNumOpKinds; k++) p.op_s[k] = cb.counts().seconds[k];
  KvCache probe(model.spec(), model.backend(), c.kv_dtype, {0, 0});
  const double bf = double(probe.bytes_per_token(kPoolFull)), bs = double(probe.bytes_per_token(kPoolSwa));
  p.kv.full_slots = s.after_step_full_used;
  p.kv.swa_slots = s.after_step_swa_used;
  p.kv.step_full_slots = s.step_full_used_max;
  p.kv.step_swa_slots = s.step_swa_used_max;
  p.kv.bytes = double(p.kv.full_slots) * bf + double(p.kv.swa_slots) * bs;
  p.kv.step_bytes = double(p.kv.step_full_slots) * bf + double(p.kv.step_swa_slots) * bs;
  p.formula = kv_formula(model.spec(), L, c.kv_dtype, 0);
  p.expected_slack = swa_rest_slack(L, window_of(model.spec()), opt.page_size);
  p.expected_full_slack = full_rest_slack(L, opt.page_size);
  return p;
}

std::string pct(double f) { return fmt::format("{:.1f}%", 100 * f); }

}  // namespace

KvFormula kv_formula(const ModelSpec& spec, int64_t ctx, DType dtype, int64_t swa_slack) {
  KvFormula f;
  const double b = double(dtype_size(dtype));
  f.full_tokens = ctx;
  for (auto& l : spec.layers) {
    const double per_token = double(l.attn.num_kv_heads) * (l.attn.head_dim + l.attn.v_head_dim) * b;
    if (l.attn.kind == AttnKind::Full || l.attn.window <= 0) {
      f.full_layers++;
      f.full_bytes += double(ctx) * per_token;
    } else {
      f.swa_layers++;
      f.swa_tokens = std::min<int64_t>(ctx, l.attn.window + swa_slack);
      f.swa_bytes += double(f.swa_tokens) * per_token;
    }
  }
  return f;
}

int64_t full_rest_slack(int64_t ctx, int page_size) {
  const int64_t p = std::max(1, page_size);
  return (ctx + p - 1) / p * p - ctx;
}

int64_t swa_rest_slack(int64_t ctx, int window, int page_size) {
  if (window <= 0) return 0;
  const int64_t p = std::max(1, page_size);
  const int64_t held = (ctx + p - 1) / p * p - (ctx > window ? (ctx - window) / p * p : 0);
  return held - std::min<int64_t>(ctx, window);
}

std::vector<PrefillPoint> run_prefill_sweep(Model& hybrid, Model* all_full, CountingBackend& cb,
                                            const PrefillOptions& opt) {
  MIMO_CHECK(!opt.input_lens.empty(), "no input lengths");
  for (int L : opt.input_lens) MIMO_CHECK(L > 0, "input length {} must be positive", L);
  MIMO_CHECK(opt.page_size >= 1, "--page-size must be >= 1");
  MIMO_CHECK(opt.repeats >= 1, "--repeats must be >= 1");
  std::mt19937_64 g(opt.seed);
  const int64_t V = hybrid.spec().vocab_size;
  // Warm-up: faults the weights in and grows each model's workspace.
  for (Model* m : {&hybrid, all_full})
    if (m) prefill_once(*m, cb, opt, "warm-up", random_tokens(g, V, std::max(1, opt.warmup_len)));
  std::vector<PrefillPoint> out;
  for (int L : opt.input_lens) {
    // The same prompt for both variants, one right after the other, so a
    // shared machine's load changes hit both alike.
    // With repeats, the runs alternate and the fastest of each variant is
    // kept (another process's load only ever slows a run down).
    std::vector<int32_t> prompt = random_tokens(g, V, L);
    PrefillPoint best_h, best_f;
    for (int rep = 0; rep < std::max(1, opt.repeats); rep++) {
      PrefillPoint h = prefill_once(hybrid, cb, opt, "hybrid", prompt);
      spdlog::info("prefill {} hybrid: {:.3f} s", L, h.seconds);
      if (rep == 0 || h.seconds < best_h.seconds) best_h = h;
      if (all_full) {
        PrefillPoint f = prefill_once(*all_full, cb, opt, "all-full", prompt);
        spdlog::info("prefill {} all-full: {:.3f} s", L, f.seconds);
        if (rep == 0 || f.seconds < best_f.seconds) best_f = f;
      }
    }
    out.push_back(best_h);
    if (all_full) out.push_back(best_f);
  }
  return out;
}

std::string machine_line(const MachineFigures& m) {
  return fmt::format(
      "machine: {} threads; streaming read {:.1f} GB/s; fp32 FMA-loop peak {:.1f} GFLOP/s; GEMM (linear {}^3, fp32 "
      "or bf16 weights) {:.1f} GFLOP/s\n",
      m.threads, m.read_bw / 1e9, m.fma_peak / 1e9, m.gemm_n, m.gemm_peak / 1e9);
}

nlohmann::json machine_json(const MachineFigures& m) {
  return {{"threads", m.threads},
          {"read_bandwidth_gb_s", m.read_bw / 1e9},
          {"fma_peak_gflop_s", m.fma_peak / 1e9},
          {"gemm_peak_gflop_s", m.gemm_peak / 1e9},
          {"gemm_n", m.gemm_n}};
}

namespace {
const PrefillPoint* find_point(const std::vector<PrefillPoint>& pts, const std::string& v, int L) {
  for (auto& p : pts)
    if (p.variant == v && p.input_len == L) return &p;
  return nullptr;
}
std::vector<int> lens_of(const std::vector<PrefillPoint>& pts) {
  std::vector<int> lens;
  for (auto& p : pts)
    if (std::find(lens.begin(), lens.end(), p.input_len) == lens.end()) lens.push_back(p.input_len);
  return lens;
}
}  // namespace

std::string format_prefill(const MachineFigures& m, const std::vector<PrefillPoint>& pts) {
  std::string s = machine_line(m);
  s += fmt::format("{:>6} | {:>10} {:>10} {:>6} | {:>8} {:>8} | {:>7} {:>7} | {:>10} {:>10}\n", "len", "hybrid_ms",
                   "allfull_ms", "ratio", "hyb_tok/s", "full_tok/s", "hyb%gemm", "full%gemm", "hyb_KV_MB",
                   "full_KV_MB");
  for (int L : lens_of(pts)) {
    const PrefillPoint* h = find_point(pts, "hybrid", L);
    const PrefillPoint* f = find_point(pts, "all-full", L);
    auto gemm = [&](const PrefillPoint* p) {
      return p && p->seconds > 0 && m.gemm_peak > 0 ? pct(p->flops / p->seconds / m.gemm_peak) : std::string("-");
    };
    s += fmt::format("{:>6} | {:>10.1f} {:>10} {:>6} | {:>8.1f} {:>8} | {:>7} {:>7} | {:>10.2f} {:>10}\n", L,
                     h ? h->seconds * 1e3 : 0.0, f ? fmt::format("{:.1f}", f->seconds * 1e3) : "-",
                     h && f && h->seconds > 0 ? fmt::format("{:.2f}", f->seconds / h->seconds) : "-",
                     h ? h->tok_s() : 0.0, f ? fmt::format("{:.1f}", f->tok_s()) : "-", gemm(h), gemm(f),
                     h ? h->kv.bytes / 1e6 : 0.0, f ? fmt::format("{:.2f}", f->kv.bytes / 1e6) : "-");
  }
  s += "(ratio = all-full ms / hybrid ms; %gemm = counted FLOPs / time over the GEMM peak; KV = bytes of the slots "
       "the request holds after its prefill, from the engine's pool allocators)\n\n";
  s += "SWA KV memory (hybrid; measured slots vs the O(window) formula: full layers keep ctx tokens, sliding layers "
       "W):\n";
  s += fmt::format("{:>6} | {:>9} {:>9} {:>9} | {:>10} {:>10} {:>6} | {:>9} {:>12}\n", "ctx", "full_slot", "swa_slot",
                   "expect", "meas_MB", "formula_MB", "ratio", "step_swa", "step_MB");
  for (auto& p : pts) {
    if (p.variant != "hybrid") continue;
    s += fmt::format("{:>6} | {:>9} {:>9} {:>9} | {:>10.3f} {:>10.3f} {:>6.3f} | {:>9} {:>12.3f}\n", p.input_len,
                     p.kv.full_slots, p.kv.swa_slots,
                     fmt::format("{}/{}", p.formula.full_tokens + p.expected_full_slack,
                                 p.formula.swa_tokens + p.expected_slack), p.kv.bytes / 1e6,
                     p.formula.bytes() / 1e6, p.formula.bytes() > 0 ? p.kv.bytes / p.formula.bytes() : 0.0,
                     p.kv.step_swa_slots, p.kv.step_bytes / 1e6);
  }
  s += "(slots: per pool, each slot holds one token of every layer of the pool; expect: full/SWA slots by the "
       "formula plus the page rounding the scheduler keeps (0 with page 1); ratio: measured bytes / formula bytes "
       "without slack; step_*: held while the prefill step ran, when the chunk's SWA slots are all still "
       "allocated: SWA slots past the window are freed after the step)\n";
  return s;
}

nlohmann::json prefill_json(const MachineFigures& m, const std::vector<PrefillPoint>& pts) {
  nlohmann::json j;
  j["machine"] = machine_json(m);
  j["results"] = nlohmann::json::array();
  for (auto& p : pts) {
    const double fs = p.seconds > 0 ? p.flops / p.seconds : 0;
    nlohmann::json r = {{"variant", p.variant},
                        {"input_len", p.input_len},
                        {"prefill_s", p.seconds},
                        {"prefill_tok_s", p.tok_s()},
                        {"gflop", p.flops / 1e9},
                        {"gflop_s", fs / 1e9},
                        {"frac_gemm_peak", m.gemm_peak > 0 ? fs / m.gemm_peak : 0.0},
                        {"frac_fma_peak", m.fma_peak > 0 ? fs / m.fma_peak : 0.0},
                        {"kv_full_slots", p.kv.full_slots},
                        {"kv_swa_slots", p.kv.swa_slots},
                        {"kv_bytes", p.kv.bytes},
                        {"kv_step_full_slots", p.kv.step_full_slots},
                        {"kv_step_swa_slots", p.kv.step_swa_slots},
                        {"kv_step_bytes", p.kv.step_bytes},
                        {"kv_formula_bytes", p.formula.bytes()},
                        {"kv_formula_full_bytes", p.formula.full_bytes},
                        {"kv_formula_swa_bytes", p.formula.swa_bytes},
                        {"kv_formula_swa_tokens", p.formula.swa_tokens},
                        {"kv_expected_swa_slack", p.expected_slack},
                        {"kv_expected_full_slack", p.expected_full_slack},
                        {"kv_measured_over_formula", p.formula.bytes() > 0 ? p.kv.bytes / p.formula.bytes() : 0.0}};
    for (int k = 0; k < kNumOpKinds; k++) r["op_seconds"][op_kind_name(k)] = p.op_s[k];
    j["results"].push_back(r);
  }
  for (int L : lens_of(pts)) {
    const PrefillPoint* h = find_point(pts, "hybrid", L);
    const PrefillPoint* f = find_point(pts, "all-full", L);
    if (h && f && h->seconds > 0) j["ratio_all_full_over_hybrid"][std::to_string(L)] = f->seconds / h->seconds;
  }
  return j;
}

std::vector<chart::Panel> prefill_plot(const std::vector<PrefillPoint>& pts) {
  chart::Panel t = chart::panel("Prefill time vs input length (batch 1, fresh KV)", "input tokens", "prefill ms", true);
  chart::Panel r = chart::panel("Prefill time ratio all-full / hybrid", "input tokens", "ratio", true);
  chart::Panel k = chart::panel("KV bytes held per request after prefill", "input tokens", "MB", true);
  chart::Series th = chart::series("hybrid"), tf = chart::series("all-full"),
                ratio = chart::series("all-full / hybrid"), kh = chart::series("hybrid (measured)"),
                kf = chart::series("hybrid (O(window) formula)", true), ka = chart::series("all-full (measured)");
  for (int L : lens_of(pts)) {
    const PrefillPoint* h = find_point(pts, "hybrid", L);
    const PrefillPoint* f = find_point(pts, "all-full", L);
    if (h) {
      th.x.push_back(L), th.y.push_back(h->seconds * 1e3);
      kh.x.push_back(L), kh.y.push_back(h->kv.bytes / 1e6);
      kf.x.push_back(L), kf.y.push_back(h->formula.bytes() / 1e6);
    }
    if (f) {
      tf.x.push_back(L), tf.y.push_back(f->seconds * 1e3);
      ka.x.push_back(L), ka.y.push_back(f->kv.bytes / 1e6);
    }
    if (h && f && h->seconds > 0) ratio.x.push_back(L), ratio.y.push_back(f->seconds / h->seconds);
  }
  t.series = {th, tf};
  r.series = {ratio};
  k.series = {kh, kf, ka};
  return {t, r, k};
}

// ---------------------------------------------------------------- decode

namespace {

struct EngineCurve {
  int depth = 0;
  std::vector<DecodePoint> pts;
};

// One engine at `depth`; the prompts of a measured submit share all but
// their last token with a prefix computed once beforehand (prefix cache on),
// so each sweep point prefills a handful of tokens instead of
// batch x input_len, while every request still decodes its own tokens
// (distinct last prompt tokens: the sequences diverge).
DecodePoint engine_point(Engine& e, CountingBackend& cb, std::mt19937_64& g, const std::vector<int32_t>& base,
                         int L, int B, int out_len, int64_t V) {
  std::vector<std::vector<int32_t>> prompts;
  for (int b = 0; b < B; b++) {
    std::vector<int32_t> p(base.begin(), base.begin() + (L - 1));
    p.push_back(random_tokens(g, V, 1)[0]);
    prompts.push_back(std::move(p));
  }
  EngineStats s0 = e.stats();
  cb.counts().clear();
  Collected c = submit_and_collect(e, prompts, out_len);
  const EngineStats d = e.settled_stats().since(s0);
  DecodePoint p;
  p.batch = B;
  p.input_len = L;
  p.output_len = out_len;
  p.tok_s_per_req = mean(c.rate);
  p.total_tok_s = p.tok_s_per_req * B;
  const int64_t steps = d.steps;
  const double bytes = cb.counts().total_bytes();
  p.step_s = steps > 0 ? c.wall_s / double(steps) : 0;
  p.bytes_per_step = steps > 0 ? bytes / double(steps) : 0;
  p.gb_s = c.wall_s > 0 ? bytes / c.wall_s / 1e9 : 0;
  p.accept_len = d.avg_spec_accept_length();
  return p;
}

EngineConfig engine_config(Model& model, int depth, int64_t tokens, int context) {
  EngineConfig c;
  c.kv_dtype = model.weights().dtype;
  c.speculative_num_steps = depth;
  c.chunked_prefill_size = 4096;
  c.max_total_tokens = tokens;
  c.context_length = context;
  c.swa_full_tokens_ratio = 1.0;  // the prefix's SWA KV stays in the cache for the requests that match it
  return c;
}

}  // namespace

std::vector<DecodePoint> run_decode_sweep(Model& model, CountingBackend& cb, const DecodeOptions& opt) {
  MIMO_CHECK(!opt.batch_sizes.empty() && !opt.input_lens.empty(), "no batch sizes or input lengths");
  for (int b : opt.batch_sizes) MIMO_CHECK(b > 0, "batch size {} must be positive", b);
  for (int l : opt.input_lens) MIMO_CHECK(l > 1, "input length {} must be at least 2", l);
  MIMO_CHECK(opt.input_len > 1, "--input-len must be at least 2");
  MIMO_CHECK(opt.batch_size > 0, "--batch-size must be positive");
  MIMO_CHECK(opt.output_len >= 2, "--output-len must be at least 2 (one prefill token, then decode steps)");
  MIMO_CHECK(opt.mtp_steps >= 0 && opt.mtp_steps <= 3, "--mtp-steps must be between 0 and 3");
  const int64_t V = model.spec().vocab_size;
  std::vector<DecodePoint> out;
  auto plain = [&](const std::string& sweep, std::vector<int> bs, int L) {
    OneBatchOptions o;
    o.batch_sizes = std::move(bs);
    o.input_len = L;
    o.output_len = opt.output_len;
    o.seed = opt.seed;
    o.kv_dtype = model.weights().dtype;
    o.paired_probes = opt.paired_probes;
    o.synthetic_prefill = opt.synthetic_prefill;
    for (const OneBatchResult& r : run_one_batch(model, cb, o)) {
      DecodePoint p;
      p.sweep = sweep;
      p.mode = "plain";
      p.batch = r.batch;
      p.input_len = r.input_len;
      p.output_len = r.output_len;
      p.step_s = r.decode_median_s;
      p.tok_s_per_req = r.decode_median_s > 0 ? 1.0 / r.decode_median_s : 0;
      p.total_tok_s = r.decode_tok_s();
      p.bytes_per_step = r.decode_bytes;
      p.gb_s = r.decode_bw / 1e9;
      p.frac_bw_paired = r.decode_frac_bw_paired;
      p.experts_per_layer = r.experts_per_layer;
      out.push_back(p);
      spdlog::info("plain {} batch {} len {}: {:.2f} tok/s per request", sweep, p.batch, p.input_len, p.tok_s_per_req);
    }
  };
  plain("batch", opt.batch_sizes, opt.input_len);
  for (int L : opt.input_lens) plain("input_len", {opt.batch_size}, L);

  std::vector<int> depths;
  if (opt.engine_baseline) depths.push_back(0);
  if (opt.mtp_steps > 0) {
    if (model.num_mtp_layers() < opt.mtp_steps)
      spdlog::warn("the checkpoint has {} MTP layers: no MTP curve (make one with make-checkpoint --mtp-layers 3)",
                   model.num_mtp_layers());
    else
      depths.push_back(opt.mtp_steps);
  }
  std::mt19937_64 g(opt.seed + 17);
  const int max_b = *std::max_element(opt.batch_sizes.begin(), opt.batch_sizes.end());
  const int max_l = *std::max_element(opt.input_lens.begin(), opt.input_lens.end());
  const int slack = opt.output_len + 16;
  for (int d : depths) {
    const std::string mode = d == 0 ? "engine" : "mtp";
    {
      std::vector<int32_t> base = random_tokens(g, V, opt.input_len);
      Engine e(engine_config(model, d, int64_t(opt.input_len) + int64_t(max_b) * slack * 2 + 256,
                             opt.input_len + slack + 64),
               model);
      submit_and_collect(e, {std::vector<int32_t>(base.begin(), base.end() - 1)}, 1);  // the shared prefix
      submit_and_collect(e, {base}, std::min(opt.output_len, 4));                    // warm-up
      for (int B : opt.batch_sizes) {
        DecodePoint p = engine_point(e, cb, g, base, opt.input_len, B, opt.output_len, V);
        p.sweep = "batch";
        p.mode = mode;
        p.depth = d;
        out.push_back(p);
        spdlog::info("{} batch {}: {:.2f} tok/s per request", mode, B, p.tok_s_per_req);
      }
    }
    {
      std::vector<int32_t> base = random_tokens(g, V, max_l);
      Engine e(engine_config(model, d, int64_t(max_l) * 2 + int64_t(opt.batch_size) * slack * 2 * int64_t(opt.input_lens.size()) + 256,
                             max_l + slack + 64),
               model);
      submit_and_collect(e, {std::vector<int32_t>(base.begin(), base.end() - 1)}, 1);
      for (int L : opt.input_lens) {
        DecodePoint p = engine_point(e, cb, g, base, L, opt.batch_size, opt.output_len, V);
        p.sweep = "input_len";
        p.mode = mode;
        p.depth = d;
        out.push_back(p);
        spdlog::info("{} input {}: {:.2f} tok/s per request", mode, L, p.tok_s_per_req);
      }
    }
  }
  return out;
}

std::string format_decode(const MachineFigures& m, const std::vector<DecodePoint>& pts) {
  std::string s = machine_line(m);
  auto table = [&](const std::string& sweep, const char* title) {
    s += title;
    s += fmt::format("{:<7} {:>5} {:>6} {:>5} | {:>10} {:>10} {:>8} | {:>8} {:>7} {:>6} {:>6} | {:>6} {:>7}\n", "mode",
                     "depth", "batch", "in", "tok/s/req", "total", "x_b1", "MB/step", "GB/s", "%bw", "%bw*", "accept",
                     "experts");
    for (auto& p : pts) {
      if (p.sweep != sweep) continue;
      double b1 = 0;
      for (auto& q : pts)
        if (q.sweep == sweep && q.mode == p.mode && q.batch == 1 && q.input_len == p.input_len) b1 = q.total_tok_s;
      s += fmt::format(
          "{:<7} {:>5} {:>6} {:>5} | {:>10.2f} {:>10.2f} {:>8} | {:>8.1f} {:>7.2f} {:>6} {:>6} | {:>6} {:>7}\n",
          p.mode, p.depth, p.batch, p.input_len, p.tok_s_per_req, p.total_tok_s,
          b1 > 0 ? fmt::format("{:.2f}", p.total_tok_s / b1) : "-", p.bytes_per_step / 1e6, p.gb_s,
          m.read_bw > 0 ? pct(p.gb_s * 1e9 / m.read_bw) : "-", p.mode == "plain" ? pct(p.frac_bw_paired) : "-",
          p.depth > 0 ? fmt::format("{:.2f}", p.accept_len) : "-",
          p.mode == "plain" ? fmt::format("{:.1f}", p.experts_per_layer) : "-");
    }
  };
  table("batch", "decode vs batch size:\n");
  table("input_len", "\ndecode vs input length:\n");
  s += "(plain: run_one_batch, one forward per step, median step; engine/mtp: through the Engine, per-request rate "
       "= its tokens / time from submit to its last token (the prompts share a cached prefix, so the prefill is one "
       "step of a few tokens), MTP drafts at `depth`; x_b1 = total tok/s over batch 1's; %bw = bytes "
       "read per step (weights + KV, counted) / step time over the streaming read bandwidth; %bw* against the "
       "bandwidth probed around each step; experts = distinct routed experts per MoE layer and step)\n";
  return s;
}

nlohmann::json decode_json(const MachineFigures& m, const std::vector<DecodePoint>& pts) {
  nlohmann::json j;
  j["machine"] = machine_json(m);
  j["results"] = nlohmann::json::array();
  for (auto& p : pts) {
    double b1 = 0;
    for (auto& q : pts)
      if (q.sweep == p.sweep && q.mode == p.mode && q.batch == 1 && q.input_len == p.input_len) b1 = q.total_tok_s;
    j["results"].push_back({{"sweep", p.sweep},
                            {"mode", p.mode},
                            {"depth", p.depth},
                            {"batch_size", p.batch},
                            {"input_len", p.input_len},
                            {"output_len", p.output_len},
                            {"tok_s_per_request", p.tok_s_per_req},
                            {"total_tok_s", p.total_tok_s},
                            {"speedup_vs_batch1", b1 > 0 ? p.total_tok_s / b1 : 0.0},
                            {"step_s", p.step_s},
                            {"bytes_per_step", p.bytes_per_step},
                            {"read_gb_s", p.gb_s},
                            {"frac_read_bw", m.read_bw > 0 ? p.gb_s * 1e9 / m.read_bw : 0.0},
                            {"frac_read_bw_paired", p.frac_bw_paired},
                            {"accept_length", p.accept_len},
                            {"routed_experts_per_moe_layer", p.experts_per_layer}});
  }
  return j;
}

std::vector<chart::Panel> decode_plot(const std::vector<DecodePoint>& pts) {
  chart::Panel per = chart::panel("Decode tok/s per request vs batch size", "batch size", "tok/s per request", true);
  chart::Panel tot = chart::panel("Decode total tok/s vs batch size", "batch size", "total tok/s", true);
  chart::Panel len = chart::panel("Decode tok/s per request vs input length", "input tokens", "tok/s per request", true);
  std::vector<std::string> modes;
  for (auto& p : pts)
    if (std::find(modes.begin(), modes.end(), p.mode) == modes.end()) modes.push_back(p.mode);
  for (auto& mode : modes) {
    chart::Series a, b, c;
    int depth = 0;
    for (auto& p : pts) {
      if (p.mode != mode) continue;
      depth = p.depth;
      if (p.sweep == "batch") {
        a.x.push_back(p.batch), a.y.push_back(p.tok_s_per_req);
        b.x.push_back(p.batch), b.y.push_back(p.total_tok_s);
      } else {
        c.x.push_back(p.input_len), c.y.push_back(p.tok_s_per_req);
      }
    }
    std::string name = mode == "plain" ? "no MTP (one batch)" : mode == "engine" ? "no MTP (engine)"
                                                                                 : fmt::format("MTP depth {}", depth);
    a.name = b.name = c.name = name;
    a.dashed = b.dashed = c.dashed = mode == "engine";
    per.series.push_back(a), tot.series.push_back(b), len.series.push_back(c);
  }
  return {per, tot, len};
}

}  // namespace mimo::bench
