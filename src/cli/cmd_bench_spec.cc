// `mimoserve bench-spec`: what MTP speculative decoding buys on this
// machine. For each batch size and draft depth (0..3 and auto) it runs the
// same greedy requests through the engine and reports decode tokens/s per
// request, the accept length, and the model's idle time between steps with
// and without overlap scheduling, and (on a GPU) how many forwards per step
// ran as CUDA graphs (target and drafts: up to 1 + depth); then a mixed load (a burst of short
// requests with one long one) where the best depth changes mid-run.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/error.h"
#include "core/log.h"
#include "core/thread_pool.h"
#include "engine/engine.h"
#include "loader/load_model.h"
#include "tokenizer/tokenizer.h"

namespace mimo::cli {

namespace {

struct Args {
  std::string model_path, heldout, json_out, batch_sizes = "1,32", depths = "0,1,2,3,auto", device = "auto";
  std::string sections = "decode,overlap,mixed", log_level = "info";
  int input_len = 64, output_len = 64, threads = 0, repeats = 3;
  bool fresh_engines = false;
};

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string x;
  while (std::getline(ss, x, ','))
    if (!x.empty()) out.push_back(x);
  return out;
}

struct RunResult {
  double decode_tps_per_req = 0, total_tps = 0, wall_s = 0, accept_len = 0, idle = 0;
  double graphs_per_step = 0;  // forwards (target and draft) replayed as graphs per engine step
  SpecDepthController::PerDepth steps_by_depth{};
  std::vector<std::vector<int32_t>> outputs;  // every request's tokens, to check against depth 0
};

// Runs of one configuration, interleaved with the others' (this machine's
// speed drifts by tens of percent within seconds): the median of each figure.
RunResult median(std::vector<RunResult> rs) {
  auto med = [&](double RunResult::*f) {
    std::vector<double> v;
    for (auto& r : rs) v.push_back(r.*f);
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
  };
  RunResult m = rs.front();
  m.decode_tps_per_req = med(&RunResult::decode_tps_per_req);
  m.total_tps = med(&RunResult::total_tps);
  m.wall_s = med(&RunResult::wall_s);
  m.idle = med(&RunResult::idle);
  m.accept_len = med(&RunResult::accept_len);
  m.graphs_per_step = med(&RunResult::graphs_per_step);
  m.steps_by_depth = {};
  for (auto& r : rs)
    for (size_t d = 0; d < m.steps_by_depth.size(); d++) m.steps_by_depth[d] += r.steps_by_depth[d];
  return m;
}

std::string depth_mix(const SpecDepthController::PerDepth& n) {
  const int64_t t = std::accumulate(n.begin(), n.end(), int64_t(0));
  std::string s;
  for (size_t d = 0; d < n.size(); d++)
    if (n[d]) s += fmt::format("{}{}: {:.0f}%", s.empty() ? "" : ", ", d, 100.0 * double(n[d]) / double(std::max<int64_t>(t, 1)));
  return s;
}

// An engine for runs of these requests at this depth (-1: auto).
std::unique_ptr<Engine> make_engine(Model& model, const std::vector<std::vector<int32_t>>& prompts,
                                    const std::vector<int>& out_lens, int depth, bool overlap) {
  EngineConfig c;
  c.kv_dtype = model.weights().dtype;
  // A pool for what the run holds at once (each request's prompt, output
  // and draft over-allocation), not a quarter of memory: the engine faults
  // its whole pool in at start, and a run starts dozens of engines.
  c.max_total_tokens = 256;
  for (size_t i = 0; i < prompts.size(); i++) c.max_total_tokens += int64_t(prompts[i].size()) + out_lens[i] + 8;
  c.speculative_auto = depth < 0;
  c.speculative_num_steps = depth < 0 ? std::min(3, model.num_mtp_layers()) : depth;
  c.disable_overlap_schedule = !overlap;
  c.chunked_prefill_size = 4096;
  return std::make_unique<Engine>(c, model);
}

// Greedy requests, all submitted at once; decode rate counts tokens after
// each request's first one. The engine's counters are read before and
// after, so an engine can serve several runs.
RunResult run(Engine& e, const std::vector<std::vector<int32_t>>& prompts, const std::vector<int>& out_lens) {
  const EngineStats s0 = e.stats();
  std::vector<std::shared_ptr<RequestHandle>> hs;
  auto t0 = std::chrono::steady_clock::now();
  for (size_t i = 0; i < prompts.size(); i++) {
    EngineRequest r;
    r.input_ids = prompts[i];
    r.sampling.max_new_tokens = out_lens[i];
    r.sampling.ignore_eos = true;
    hs.push_back(e.submit(r)[0]);
  }
  std::vector<double> first(hs.size()), last(hs.size());
  std::vector<int64_t> count(hs.size());
  std::vector<std::vector<int32_t>> outs(hs.size());
  std::vector<std::thread> ts;
  for (size_t i = 0; i < hs.size(); i++)
    ts.emplace_back([&, i] {
      EngineOutput o;
      bool got_first = false;
      while (hs[i]->next(&o, std::chrono::seconds(600))) {
        double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (!got_first && !o.token_ids.empty()) {
          got_first = true;
          first[i] = t;
          count[i] = -1;  // the first token is prefill's
        }
        count[i] += int64_t(o.token_ids.size());
        outs[i].insert(outs[i].end(), o.token_ids.begin(), o.token_ids.end());
        last[i] = t;
        if (o.finished) break;
      }
    });
  for (auto& t : ts) t.join();
  RunResult r;
  r.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  double rate = 0;
  int64_t total = 0;
  for (size_t i = 0; i < hs.size(); i++) {
    if (last[i] > first[i]) rate += double(count[i]) / (last[i] - first[i]);
    total += count[i] + 1;
  }
  r.decode_tps_per_req = rate / double(hs.size());
  r.total_tps = double(total) / r.wall_s;
  const EngineStats s = e.settled_stats().since(s0);
  r.accept_len = s.avg_spec_accept_length();
  r.idle = s.model_idle_fraction();
  r.graphs_per_step = s.steps > 0 ? double(s.graph_steps) / double(s.steps) : 0.0;
  r.steps_by_depth = s.decode_steps_by_depth;
  r.outputs = std::move(outs);
  return r;
}

// A run on an engine of its own.
RunResult run(Model& model, const std::vector<std::vector<int32_t>>& prompts, const std::vector<int>& out_lens,
              int depth, bool overlap) {
  return run(*make_engine(model, prompts, out_lens, depth, overlap), prompts, out_lens);
}

void bench(const Args& a) {
  const std::vector<std::string> sections = split(a.sections);
  for (auto& x : sections)
    if (x != "decode" && x != "overlap" && x != "mixed")
      fail("--sections: unknown section '{}' (decode, overlap, mixed)", x);
  set_log_level(a.log_level);
  if (a.threads > 0) ThreadPool::set_global_threads(a.threads);
  auto be = make_backend(a.device);
  std::string path = resolve_model_path(a.model_path);
  LoadedModel lm = load_model(path, *be);
  Model& m = *lm.model;
  if (m.num_mtp_layers() == 0) fail("'{}' has no MTP layers: nothing to speculate with", path);
  const std::vector<int> batch_sizes = parse_ints(a.batch_sizes, "--batch-sizes", 1);
  std::vector<int> depths;  // -1: auto
  for (auto& d : split(a.depths)) {
    if (d == "auto") {
      depths.push_back(-1);
      continue;
    }
    const int k = parse_ints(d, "--depths (0-3 or auto)", 0).front();
    if (k > m.num_mtp_layers())
      fail("--depths: depth {} needs {} MTP layers; '{}' has {}", k, k, path, m.num_mtp_layers());
    depths.push_back(k);
  }
  if (depths.empty()) fail("--depths is empty");
  // Prompts: consecutive windows of held-out text, or seeded token ids.
  std::vector<int32_t> pool;
  const bool has_tokenizer = std::filesystem::exists(std::filesystem::path(path) / "tokenizer.json");
  std::string held = a.heldout.empty() ? (std::filesystem::path(path) / "heldout.txt").string() : a.heldout;
  if (!a.heldout.empty() && !std::filesystem::is_regular_file(a.heldout))
    fail("--heldout: no such file '{}'", a.heldout);
  if (!a.heldout.empty() && !has_tokenizer) fail("--heldout: '{}' has no tokenizer.json to encode it with", path);
  if (std::filesystem::exists(held) && has_tokenizer) {
    std::ifstream in(held);
    std::stringstream ss;
    ss << in.rdbuf();
    pool = Tokenizer::load(path).encode(ss.str());
    std::printf("prompts: windows of %s (%zu tokens)\n", held.c_str(), pool.size());
  } else {
    for (int i = 0; i < 100000; i++) pool.push_back(int32_t((int64_t(i) * 7919 + 13) % m.spec().vocab_size));
    std::printf("prompts: seeded token ids (no held-out text found)\n");
  }
  if (size_t(a.input_len) + 1 >= pool.size())
    fail("--input-len {} does not fit in the {} tokens of held-out text", a.input_len, pool.size());
  auto prompts_for = [&](int n, int len) {
    std::vector<std::vector<int32_t>> ps;
    for (int i = 0; i < n; i++) {
      size_t off = (size_t(i) * 977) % std::max<size_t>(1, pool.size() - size_t(len) - 1);
      ps.emplace_back(pool.begin() + long(off), pool.begin() + long(off) + len);
    }
    return ps;
  };
  nlohmann::json out = nlohmann::json::object();
  std::printf("\nmodel %s on %s\n", path.c_str(), be->name().c_str());
  std::printf("%-6s %-6s %14s %12s %12s %10s %12s  %s\n", "batch", "depth", "tok/s per req", "total tok/s",
              "accept len", "idle %", "graphs/step", "greedy = depth 0");
  auto wants = [&](const char* section) { return std::find(sections.begin(), sections.end(), section) != sections.end(); };
  const int R = std::max(1, a.repeats);
  // Every depth of a batch size runs once per round, R rounds: each figure
  // is the median of R runs interleaved with the other depths'. Each depth
  // keeps one engine across its rounds (prefix cache flushed in between), as
  // a server keeps its own: auto depth carries what it measured from one
  // round into the next, as it would from one request to the next, so only
  // the first round is a cold start (--fresh-engines: every run cold).
  auto rounds = [&](const std::vector<std::vector<int32_t>>& ps, const std::vector<int>& lens) {
    std::vector<std::vector<RunResult>> rs(depths.size());
    std::vector<std::unique_ptr<Engine>> es(depths.size());
    for (int round = 0; round < R; round++)
      for (size_t i = 0; i < depths.size(); i++) {
        if (!es[i]) es[i] = make_engine(m, ps, lens, depths[i], true);
        else es[i]->flush_cache();
        rs[i].push_back(run(*es[i], ps, lens));
        if (a.fresh_engines) es[i].reset();
      }
    return rs;
  };
  int mismatches = 0;
  for (int bs : wants("decode") ? batch_sizes : std::vector<int>{}) {
    auto ps = prompts_for(bs, a.input_len);
    std::vector<int> lens(size_t(bs), a.output_len);
    // Greedy outputs must not depend on the depth: every run is checked
    // against plain decoding of the same prompts.
    std::vector<std::vector<int32_t>> plain = run(m, ps, lens, 0, true).outputs;
    auto rs = rounds(ps, lens);
    for (size_t i = 0; i < depths.size(); i++) {
      if (rs[i].empty()) continue;
      int differ = 0;
      for (auto& r : rs[i])
        for (size_t j = 0; j < plain.size(); j++) differ += r.outputs[j] != plain[j];
      mismatches += differ;
      RunResult r = median(rs[i]);
      std::string dn = depths[i] < 0 ? "auto" : std::to_string(depths[i]);
      std::printf("%-6d %-6s %14.1f %12.1f %12.2f %10.1f %12.2f  %s\n", bs, dn.c_str(), r.decode_tps_per_req,
                  r.total_tps, r.accept_len, 100 * r.idle, r.graphs_per_step,
                  differ ? fmt::format("NO ({} of {} request outputs differ)", differ, plain.size() * rs[i].size()).c_str()
                         : "yes");
      if (depths[i] < 0) std::printf("%-6s auto's decode steps by depth: %s\n", "", depth_mix(r.steps_by_depth).c_str());
      out["decode"][std::to_string(bs)][dn] = {{"tok_s_per_req", r.decode_tps_per_req}, {"total_tok_s", r.total_tps},
                                               {"accept_length", r.accept_len}, {"model_idle_fraction", r.idle},
                                               {"graphs_per_step", r.graphs_per_step},
                                               {"steps_by_depth", r.steps_by_depth}};
    }
  }
  // Overlap: the model's idle time between steps, same load, on and off.
  if (wants("overlap")) {
    int d = std::min(3, m.num_mtp_layers());
    auto ps = prompts_for(4, a.input_len);
    std::vector<int> lens(4, a.output_len);
    std::vector<RunResult> on, off;
    for (int round = 0; round < R; round++) {
      on.push_back(run(m, ps, lens, d, true));
      off.push_back(run(m, ps, lens, d, false));
    }
    double idle_on = median(on).idle, idle_off = median(off).idle;
    std::printf("\nmodel idle between steps (batch 4, depth %d): %.1f%% with overlap, %.1f%% without\n", d,
                100 * idle_on, 100 * idle_off);
    out["overlap"] = {{"idle_with", idle_on}, {"idle_without", idle_off}};
  }
  // Mixed load: 32 requests of --output-len tokens and one of 8x that; the
  // batch runs at 33 and then at 1, each phase taking a comparable share of
  // the wall time on the default model (32 x 16 tokens had made the batch-33
  // phase ~5% of it, so the load was batch 1 with a short prelude).
  if (wants("mixed")) {
    auto ps = prompts_for(33, a.input_len);
    std::vector<int> lens(33, a.output_len);
    lens[0] = 8 * a.output_len;
    std::printf("\nmixed load (32 x %d tokens + 1 x %d tokens):\n", a.output_len, lens[0]);
    auto rs = rounds(ps, lens);
    for (size_t i = 0; i < depths.size(); i++) {
      if (rs[i].empty()) continue;
      RunResult r = median(rs[i]);
      std::string dn = depths[i] < 0 ? "auto" : std::to_string(depths[i]);
      std::printf("  depth %-5s wall %.2f s  total %.1f tok/s%s\n", dn.c_str(), r.wall_s, r.total_tps,
                  depths[i] < 0 ? ("  (decode steps by depth: " + depth_mix(r.steps_by_depth) + ")").c_str() : "");
      out["mixed"][dn] = {{"wall_s", r.wall_s}, {"total_tok_s", r.total_tps}, {"steps_by_depth", r.steps_by_depth}};
    }
  }
  if (!a.json_out.empty()) std::ofstream(a.json_out) << out.dump(2) << "\n";
  if (mismatches) fail("{} greedy request outputs with speculation differ from plain decoding", mismatches);
}

}  // namespace

void register_bench_spec(CLI::App& app) {
  auto a = std::make_shared<Args>();
  CLI::App* c = app.add_subcommand("bench-spec", "speculative decoding (MTP): speed, accept length, overlap, auto depth");
  c->add_option("--model-path", a->model_path, "checkpoint with MTP layers (default: the embedded model)");
  c->add_option("--heldout", a->heldout, "text to draw prompts from (default: MODEL/heldout.txt)");
  c->add_option("--batch-sizes", a->batch_sizes, "batch sizes of the decode section")->capture_default_str();
  c->add_option("--depths", a->depths, "draft depths to compare, e.g. 0,1,2,3,auto")->capture_default_str();
  c->add_option("--input-len", a->input_len, "prompt tokens per request")->check(kPositive)->capture_default_str();
  c->add_option("--output-len", a->output_len, "tokens each request generates (the mixed load's long one: 8x)")
      ->check(kPositive)
      ->capture_default_str();
  c->add_option("--threads", a->threads, "CPU compute threads (default: all cores)")->check(kNonNegative);
  c->add_option("--repeats", a->repeats, "runs of each configuration, interleaved; figures are their medians")
      ->check(kPositive)
      ->capture_default_str();
  c->add_option("--sections", a->sections, "what to run: decode, overlap, mixed (comma-separated)")
      ->capture_default_str();
  c->add_flag("--fresh-engines", a->fresh_engines,
              "a new engine for every run of the decode and mixed sections (auto depth starts cold each time); by "
              "default each depth keeps one engine across its rounds, as a server does");
  c->add_option("--device", a->device, "cpu | cuda | auto")->capture_default_str();
  c->add_option("--log-level", a->log_level, "debug prints the auto depth's measured costs after each run")
      ->capture_default_str();
  c->add_option("--json", a->json_out, "write the figures here");
  c->callback([a] { bench(*a); });
}

}  // namespace mimo::cli
