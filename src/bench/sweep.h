// Sweeps for `mimoserve bench-prefill` and `mimoserve bench-decode` (the
// performance issue's items 1c and 1d) and the SWA KV-memory check.
//
// bench-prefill: prefill time against input length for the checkpoint as is
// (hybrid: sliding-window + full layers) and for the same weights with every
// layer forced to full attention (SpecOverrides::all_full_attention), one
// request at a time through the Engine with the prefix cache off, so every
// run computes its whole prompt into fresh KV. Each run also reads the
// engine's KV pools after the prefill: the slots the request holds, next to
// the O(window) formula.
//
// bench-decode: decode tokens/s per request against batch size (fixed
// input length) and against input length (fixed batch): without MTP through
// run_one_batch (one forward per step over StepBatch::add_contiguous
// sequences), and through the Engine at draft depth 0 and with MTP drafts.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench/counting_backend.h"
#include "bench/one_batch.h"
#include "bench/svg_chart.h"
#include "model/model.h"

namespace mimo::bench {

// KV a request of `ctx` tokens holds by formula: every full-attention layer
// keeps all ctx tokens, every sliding layer only its window (plus `slack`
// tokens per layer). Sums nkv * (Dk + Dv) * dtype bytes layer by layer.
struct KvFormula {
  int full_layers = 0, swa_layers = 0;
  int64_t full_tokens = 0, swa_tokens = 0;  // per layer
  double full_bytes = 0, swa_bytes = 0;
  double bytes() const { return full_bytes + swa_bytes; }
};
KvFormula kv_formula(const ModelSpec& spec, int64_t ctx, DType dtype, int64_t swa_slack = 0);

// The slack the scheduler keeps at rest over the formula, per pool, for a
// request whose positions [0, ctx) have KV. Pools hand out whole pages, so
// the full pool holds ceil(ctx / page) pages; the SWA pool frees slid-out
// slots in whole pages below floor((ctx - W) / page) * page (the next query
// reads keys from ctx - W + 1 on; one more is kept so the prefix cache can
// vouch for a whole window), so it holds
// ceil(ctx / page) * page - floor((ctx - W) / page) * page slots once ctx > W:
// W plus up to 2 * (page - 1). With page 1 both slacks are 0.
int64_t full_rest_slack(int64_t ctx, int page_size);
int64_t swa_rest_slack(int64_t ctx, int window, int page_size);

// KV slots in use as the engine's pool allocators report them.
struct KvMeasured {
  int64_t full_slots = 0, swa_slots = 0;            // right after the step's bookkeeping
  int64_t step_full_slots = 0, step_swa_slots = 0;  // while the step ran (the prefill chunk's SWA slots too)
  double bytes = 0, step_bytes = 0;
};

struct PrefillOptions {
  std::vector<int> input_lens = {1024, 2048, 4096, 8192};
  int chunked_prefill_size = 0;  // 0: the whole prompt in one chunk (one forward, like bench-one-batch)
  int page_size = 1;
  int warmup_len = 256;
  uint64_t seed = 1;
  bool all_full = true;          // also run the all-full-attention variant
  int repeats = 1;               // runs per length and variant (alternating); the fastest is kept
};

struct PrefillPoint {
  std::string variant;  // "hybrid" | "all-full"
  int input_len = 0;
  double seconds = 0;   // model time of the prefill forward(s)
  double flops = 0, weight_bytes = 0;
  double op_s[kNumOpKinds] = {};
  KvMeasured kv;
  KvFormula formula;        // slack 0: the pure O(window) figure
  int64_t expected_slack = 0;       // swa_rest_slack at this length
  int64_t expected_full_slack = 0;  // full_rest_slack at this length
  double tok_s() const { return seconds > 0 ? input_len / seconds : 0; }
};

// `hybrid` as loaded; `all_full` the same weights with every layer full
// (nullptr: hybrid only). Both must run on `cb`.
std::vector<PrefillPoint> run_prefill_sweep(Model& hybrid, Model* all_full, CountingBackend& cb,
                                            const PrefillOptions& opt);
std::string format_prefill(const MachineFigures& m, const std::vector<PrefillPoint>& pts);
nlohmann::json prefill_json(const MachineFigures& m, const std::vector<PrefillPoint>& pts);
std::vector<chart::Panel> prefill_plot(const std::vector<PrefillPoint>& pts);

struct DecodeOptions {
  std::vector<int> batch_sizes = {1, 2, 4, 8, 16, 32};
  int input_len = 512;                                      // for the batch-size sweep
  std::vector<int> input_lens = {512, 1024, 2048, 4096, 8192};  // for the input-length sweep
  int batch_size = 1;                                       // for the input-length sweep
  int output_len = 16;
  int mtp_steps = 3;            // draft depth of the MTP curve (0: no MTP curve)
  bool engine_baseline = true;  // also run depth 0 through the engine
  bool synthetic_prefill = true;  // plain curve: see OneBatchOptions::synthetic_prefill
  uint64_t seed = 1;
  bool paired_probes = true;
};

struct DecodePoint {
  std::string sweep;  // "batch" | "input_len"
  std::string mode;   // "plain" (run_one_batch) | "engine" (depth 0) | "mtp" (depth mtp_steps)
  int depth = 0, batch = 0, input_len = 0, output_len = 0;
  double tok_s_per_req = 0, total_tok_s = 0;
  double step_s = 0;          // plain: median step latency; engine: wall / target steps
  double bytes_per_step = 0;  // weights + KV read (CountingBackend)
  double gb_s = 0;            // bytes read / time
  double frac_bw_paired = 0;  // plain only: against the bandwidth probed around each step
  double accept_len = 0;      // mtp only
  double experts_per_layer = 0;  // plain only
};

std::vector<DecodePoint> run_decode_sweep(Model& model, CountingBackend& cb, const DecodeOptions& opt);
std::string format_decode(const MachineFigures& m, const std::vector<DecodePoint>& pts);
nlohmann::json decode_json(const MachineFigures& m, const std::vector<DecodePoint>& pts);
std::vector<chart::Panel> decode_plot(const std::vector<DecodePoint>& pts);

nlohmann::json machine_json(const MachineFigures& m);
std::string machine_line(const MachineFigures& m);

}  // namespace mimo::bench
