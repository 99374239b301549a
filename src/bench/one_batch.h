// `bench-one-batch`: a static batch run through the model with no server,
// like sglang.bench_one_batch. Every sequence gets its own KV region of one
// KvCache (StepBatch::add_contiguous with a slot base), so each step is ONE
// forward over the whole batch: a prefill of batch x input_len tokens, then
// output_len - 1 decode steps of one token per sequence, greedy.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench/counting_backend.h"
#include "model/model.h"

namespace mimo::bench {

struct MachineFigures {
  int threads = 0;
  bool device = false;     // a GPU: read_bw is its copy bandwidth (read + write), no FMA probe
  double read_bw = 0;      // bytes/s, streaming read of a buffer >> LLC
  double fma_peak = 0;     // FLOP/s, register-only FMA loop on every thread
  double gemm_peak = 0;    // FLOP/s, backend.linear n x n x n, fp32 or bf16 weights (gemm_flops)
  int64_t gemm_n = 0;
};
MachineFigures measure_machine(Backend& backend, size_t bw_bytes, int64_t gemm_n);
// The better of two measurements, figure by figure (a shared machine's
// other load only ever lowers them).
MachineFigures best_of(const MachineFigures& a, const MachineFigures& b);

struct OneBatchOptions {
  std::vector<int> batch_sizes = {1};
  int input_len = 512;
  int output_len = 32;
  uint64_t seed = 1;
  DType kv_dtype = DType::BF16;
  // On a shared machine other load changes over a run. Interleaving runs
  // the decode steps of all batch sizes in turns (so their throughputs are
  // compared under the same conditions), and paired probes measure the
  // machine right before and after each prefill (FMA peak and GEMM peak,
  // the latter a gemm_n^3 linear on the inner backend) and each round
  // of decode steps (read bandwidth), so each phase is divided by what the
  // machine gave at that moment.
  bool interleave = true;
  bool paired_probes = true;
  size_t probe_bytes = size_t(256) << 20;
  // Decode-only sweeps (bench-decode): the prompts' KV is left zeroed instead
  // of computed, and decoding starts at position input_len from a random
  // token. A decode step reads the same weights and the same KV bytes either
  // way (attention cost does not depend on the values), so decode figures
  // hold while the run skips batch x input_len tokens of prefill.
  bool synthetic_prefill = false;
  int64_t gemm_n = 1536;
  // On a backend that captures graphs (CUDA), decode steps are timed as
  // graph replays, as the server runs them; each step first runs op by op
  // through the counter (untimed; it writes the same KV) for its byte and
  // FLOP counts. Off: every step is timed op by op.
  bool graphs = true;
};

struct OneBatchResult {
  int batch = 0, input_len = 0, output_len = 0;
  double prefill_s = 0, prefill_flops = 0;
  double decode_median_s = 0;          // median step latency
  double decode_bytes = 0;             // weights + KV read, median over steps
  double decode_bw = 0;                // median over steps of bytes / time
  double decode_flops = 0;             // median over steps
  double experts_per_layer = 0;        // distinct routed experts per MoE layer and step (mean)
  double prefill_frac_fma_paired = 0;  // prefill FLOP/s over the FMA peak probed around it
  double prefill_frac_gemm_paired = 0; // prefill FLOP/s over the GEMM peak probed around it
  double decode_frac_bw_paired = 0;    // median over steps of GB/s over the read bandwidth probed around it
  int decode_steps = 0;
  bool decode_graphs = false;          // decode steps were timed as graph replays
  double prefill_cpu = 0, decode_cpu = 0;  // process CPU time / (wall time x threads): < 1 on a busy machine
  double prefill_op_s[kNumOpKinds] = {};  // time by op family in the prefill
  double decode_op_s[kNumOpKinds] = {};      // median over decode steps
  double decode_op_bytes[kNumOpKinds] = {};  // what each family read, median over decode steps
  double prefill_tok_s() const { return prefill_s > 0 ? batch * double(input_len) / prefill_s : 0; }
  double decode_tok_s() const { return decode_median_s > 0 ? batch / decode_median_s : 0; }
};

// `model` must run on `counter` (load it through the CountingBackend).
std::vector<OneBatchResult> run_one_batch(Model& model, CountingBackend& counter, const OneBatchOptions& opt);

std::string format_report(const MachineFigures& m, const std::vector<OneBatchResult>& r);
nlohmann::json to_json(const MachineFigures& m, const std::vector<OneBatchResult>& r);

}  // namespace mimo::bench
