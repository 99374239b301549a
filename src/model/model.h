// The MiMo-V2-Flash decoder on a Backend: embedding, hybrid full/sliding
// attention with sinks, dense or MoE FFN, final norm, lm_head. One call runs
// one StepBatch (any mix of prefill chunks and decode tokens).
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <tuple>

#include "dist/comm.h"
#include "kv/kv_cache.h"
#include "model/batch.h"
#include "model/spec.h"
#include "model/weights.h"
#include "ops/backend.h"

namespace mimo {

class Model {
 public:
  Model(ModelSpec spec, ModelWeights weights, Backend& backend, Communicator* comm = nullptr);

  // Runs the step. Returns logits [logit_rows, V] on the device; they and
  // hidden() stay valid until the next forward.
  const Tensor& forward(const StepBatch& batch, KvCache& kv);
  // Post-final-norm hidden states [T, hidden] of the last step (what lm_head
  // reads, and what MTP layers take as input).
  const Tensor& hidden() const { return hidden_; }

  // MTP layer k (multi-token prediction) over a step. Row t of the batch is
  // position p = positions[t] with input token tokens[t] = token_{p+k+1}
  // and hidden_in[t] = the target's post-norm hidden state H_p; its KV goes
  // to the layer's own buffers, addressed with the full pool's slot tables
  // (pools[0]). Returns logits [logit_rows, V] predicting token_{p+k+2};
  // valid until the next forward or mtp_forward (which also ends hidden()).
  const Tensor& mtp_forward(int k, const StepBatch& batch, const Tensor& hidden_in, KvCache& kv);
  int num_mtp_layers() const { return int(w_.mtp.size()); }

  // Step graphs (CUDA graphs on the GPU): when the backend can capture,
  // forward() and mtp_forward() run steps of at most max_bs sequences with
  // 1..kMaxGraphRows rows each (decode, verify, draft), whose logits rows are
  // all rows or at most one per sequence, as one replayed graph per (step
  // kind, padded batch size, rows per sequence, context bucket). Sequences
  // are padded to the same number of rows and the batch to a bucket, the
  // padding on the KV cache's pad slot; inputs go to buffers all graphs share.
  // Other steps, and every step with max_bs = 0 or several ranks, run op by
  // op. Outputs are the same either way.
  static constexpr int kMaxGraphRows = 8;
  // max_graphs: how many graphs may be held at once (the least recently
  // used goes first); each holds its recorded launches on the device.
  void enable_graphs(int max_bs, int max_graphs = 256);
  // Counters, readable from any thread.
  // Bytes of temporaries an op-by-op step has needed at most: one layer's
  // worth (plus the step's inputs, residual and logits), whatever the depth.
  size_t workspace_high_water() const { return ws_.high_water(); }
  int graph_captures() const { return graph_captures_.load(std::memory_order_relaxed); }
  int64_t graph_replays() const { return graph_replays_.load(std::memory_order_relaxed); }

  const ModelSpec& spec() const { return spec_; }
  const ModelWeights& weights() const { return w_; }
  Backend& backend() { return be_; }

 private:
  // One step's inputs on the device, and the op sequence that runs it.
  struct StepInputs {
    Tensor ids, rows;
    AttnMeta meta[2];
    int64_t T = 0, R = 0;
  };
  // An op-by-op step's inputs, uploaded into the workspace (pools: which
  // pools' slot tables the step reads).
  StepInputs upload_inputs(const StepBatch& b, const bool pools[2]);
  const Tensor& run_forward(const StepInputs& in, KvCache& kv);
  const Tensor& run_mtp(int k, const StepInputs& in, const Tensor& hidden_in, KvCache& kv);
  // The input buffers every graph reads, one set for all (graphs run one at
  // a time): regions at fixed offsets sized for the largest step so far; a
  // step that needs more grows them and drops every graph.
  struct GraphInputs {
    int64_t seqs = 0, rows = 0, table = 0;  // capacities (table: entries per pool)
    Tensor buf;                             // I32, the regions below
    Tensor hidden;                          // F32 [rows, hidden]: an MTP step's given hidden states
    int64_t ids = 0, pos = 0, qs = 0, kvl = 0, logit_rows = 0, hidden_rows = 0, ts[2] = {0, 0}, os[2] = {0, 0};
    int64_t header = 0, tables[2] = {0, 0};  // buf[0, header) is copied whole each step; tables in part
  };
  struct Graph {
    int fn = -1;  // -1: the target model, k >= 0: MTP layer k
    StepInputs in;
    Tensor hidden_rows;  // I32 [Tp] target: padded row of each given row; MTP: given row of each padded row
    std::unique_ptr<OpGraph> graph;
    Tensor logits, hidden;
    std::weak_ptr<const void> kv_alive;  // the KvCache whose buffers the graph writes
    bool failed = false;                 // its capture failed: the step runs op by op
    int64_t used = 0;                    // graph_replays_ when it last ran (least recently used goes first)
  };
  // Runs the step (fn as in Graph) as a graph when it qualifies; null when
  // it does not.
  const Tensor* graphed(int fn, const StepBatch& b, const Tensor* hidden_in, KvCache& kv);
  void run_graph_body(Graph& g, KvCache& kv);
  void capture(Graph& g, KvCache& kv);
  Graph make_graph(int fn, int seqs, int rows, int kv_cap, int logit_rows);
  void ensure_graph_inputs(int64_t seqs, int64_t rows, int64_t table);

  void attention(const LayerSpec& ls, const AttnWeights& aw, const AttnMeta& meta, Tensor& kc, Tensor& vc,
                 const Tensor& x, Tensor& out);
  void ffn(const LayerSpec& ls, const LayerWeights& lw, const Tensor& x, Tensor& out);
  AttnMeta upload_meta(const StepBatch& b, int pool, const Tensor& positions, const Tensor& q_start,
                       const Tensor& kv_len);
  Tensor to_device(const std::vector<int32_t>& v);
  bool used_pool(AttnKind k) const { return spec_.count(k) > 0; }

  ModelSpec spec_;
  ModelWeights w_;
  Backend& be_;
  SingleRank single_;
  Communicator& comm_;
  Workspace ws_;   // op-by-op steps' temporaries
  Workspace gws_;  // graph steps' temporaries: one block all graphs share (they run one at a time)
  Workspace* cur_ = &ws_;
  Tensor hidden_, logits_;
  int graph_max_bs_ = 0, graph_limit_ = 0;
  // (KvCache::id(), fn, seqs, rows per seq, context capacity, logits rows)
  std::map<std::tuple<uint64_t, int, int, int, int, int>, Graph> graphs_;
  GraphInputs gin_;
  std::vector<int32_t> stage_, pmap_;                  // host staging for graph inputs
  std::atomic<int> graph_captures_{0};
  std::atomic<int64_t> graph_replays_{0};
};

}  // namespace mimo
