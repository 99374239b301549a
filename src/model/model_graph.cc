// Model step graphs: decode, verify and draft steps padded to a bucketed
// batch and replayed from a capture (see Model::enable_graphs).
//
// A graph fixes every argument of every op, so whatever changes from step
// to step lives in device buffers the graphs read (token ids, positions,
// slot tables, row maps), and whatever sizes a launch is fixed by the key:
// the step kind, the padded number of sequences, the rows per sequence, a
// context capacity (a power of two at least the longest context, which
// bounds the slot tables and the attention's split count) and the number
// of logits rows.
//
// The padded batch gives every sequence q rows: sequence s holds rows
// [s q, s q + q), its real rows first. A padding row inside a sequence
// repeats its last position; a padding sequence holds positions 0..q-1 over
// the pad slot alone. Every padding row writes its K/V to the pad slot, so
// no request's KV changes. Row maps carry the given rows to their padded
// places and back (logits rows, hidden states).
//
// Memory: the input buffers are one set all graphs read (sized for the
// largest batch and the largest slot tables so far), the activations one
// workspace, so a graph itself costs only its recorded launches.
#include <algorithm>
#include <bit>
#include <chrono>

#include "core/error.h"
#include "core/log.h"
#include "model/model.h"

namespace mimo {

namespace {

// Padded batch sizes: 1, 2, 4, 8, then multiples of 8 (SGLang's buckets).
int seq_bucket(int n) { return n <= 8 ? int(std::bit_ceil(unsigned(n))) : (n + 7) / 8 * 8; }

int kv_bucket(int n) { return int(std::max(64u, std::bit_ceil(unsigned(n)))); }

}  // namespace

void Model::enable_graphs(int max_bs, int max_graphs) {
  graph_max_bs_ = be_.can_capture() && comm_.size() == 1 ? std::max(0, max_bs) : 0;
  graph_limit_ = std::max(1, max_graphs);
  graphs_.clear();
  gin_ = GraphInputs();
}

void Model::ensure_graph_inputs(int64_t seqs, int64_t rows, int64_t table) {
  GraphInputs& gi = gin_;
  if (seqs <= gi.seqs && rows <= gi.rows && table <= gi.table) return;
  graphs_.clear();  // they read the old buffers
  // Room for the largest batch at once; tables grow by powers of two.
  gi.seqs = std::max<int64_t>({gi.seqs, seqs, seq_bucket(std::max(graph_max_bs_, 1))});
  gi.rows = std::max<int64_t>({gi.rows, rows, gi.seqs * kMaxGraphRows});
  gi.table = std::max<int64_t>({gi.table, gi.seqs * kv_bucket(1), int64_t(std::bit_ceil(uint64_t(std::max<int64_t>(table, 1))))});
  int64_t off = 0;
  auto carve = [&](int64_t n) {
    int64_t at = off;
    off += n;
    return at;
  };
  gi.ids = carve(gi.rows), gi.pos = carve(gi.rows), gi.qs = carve(gi.seqs + 1), gi.kvl = carve(gi.seqs);
  gi.logit_rows = carve(gi.rows), gi.hidden_rows = carve(gi.rows);
  for (int p = 0; p < 2; p++) gi.ts[p] = carve(gi.seqs), gi.os[p] = carve(gi.rows);
  gi.header = off;
  for (int p = 0; p < 2; p++) gi.tables[p] = carve(gi.table);
  gi.buf = Tensor();  // the old buffers go before the new ones come
  gi.hidden = Tensor();
  gi.buf = be_.alloc({off}, DType::I32);
  if (num_mtp_layers() > 0) gi.hidden = be_.alloc({gi.rows, spec_.hidden_size}, DType::F32);
}

Model::Graph Model::make_graph(int fn, int S, int q, int kv_cap, int R) {
  const int64_t T = int64_t(S) * q;
  const GraphInputs& gi = gin_;
  Graph g;
  g.fn = fn;
  auto part = [&](int64_t at, int64_t n) { return gi.buf.slice_rows(at, at + n); };
  g.in.T = T;
  g.in.R = R;
  g.in.ids = part(gi.ids, T);
  g.in.rows = part(gi.logit_rows, R);
  g.hidden_rows = part(gi.hidden_rows, T);
  const bool used[2] = {fn >= 0 || used_pool(AttnKind::Full), fn < 0 && used_pool(AttnKind::Sliding)};
  for (int p = 0; p < 2; p++) {
    if (!used[p]) continue;
    AttnMeta& m = g.in.meta[p];
    m.positions = part(gi.pos, T);
    m.q_start = part(gi.qs, S + 1);
    m.kv_len = part(gi.kvl, S);
    m.table_start = part(gi.ts[p], S);
    m.out_slots = part(gi.os[p], T);
    m.table = part(gi.tables[p], int64_t(S) * kv_cap);
    m.num_seqs = S;
    m.max_q_len = q;
    m.max_kv_len = kv_cap;
  }
  return g;
}

const Tensor* Model::graphed(int fn, const StepBatch& b, const Tensor* hidden_in, KvCache& kv) {
  const int S = b.num_seqs(), T = b.num_tokens(), R = int(b.logit_rows.size());
  if (graph_max_bs_ == 0 || S == 0 || S > graph_max_bs_) return nullptr;
  int q = 0, max_kv = 0;
  for (int s = 0; s < S; s++) {
    const int n = b.q_start[size_t(s) + 1] - b.q_start[size_t(s)];
    if (n < 1 || n > kMaxGraphRows) return nullptr;
    q = std::max(q, n);
    max_kv = std::max(max_kv, b.kv_len[size_t(s)]);
  }
  const int Sp = seq_bucket(S), cap = kv_bucket(max_kv);
  const int Tp = Sp * q;
  // Logits for every row, or for at most one row per sequence.
  const int Rp = R == T ? Tp : R <= S ? Sp : -1;
  if (Rp < 0) return nullptr;

  ensure_graph_inputs(Sp, Tp, int64_t(Sp) * cap);
  auto key = std::make_tuple(kv.id(), fn, Sp, q, cap, Rp);
  auto it = graphs_.find(key);
  if (it == graphs_.end()) {
    // Graphs of caches that are gone will never run again; past the limit,
    // the least recently used goes.
    std::erase_if(graphs_, [](const auto& e) { return e.second.kv_alive.expired(); });
    if (int(graphs_.size()) >= graph_limit_)
      graphs_.erase(std::min_element(graphs_.begin(), graphs_.end(), [](const auto& a, const auto& b) {
        return a.second.used < b.second.used;
      }));
    it = graphs_.emplace(key, make_graph(fn, Sp, q, cap, Rp)).first;
    it->second.kv_alive = kv.lifetime();
  }
  Graph& g = it->second;
  if (g.failed) return nullptr;

  // The padded place of each given row.
  pmap_.resize(size_t(T));
  for (int s = 0; s < S; s++)
    for (int r = b.q_start[size_t(s)], i = 0; r < b.q_start[size_t(s) + 1]; r++, i++) pmap_[size_t(r)] = s * q + i;
  const GraphInputs& gi = gin_;
  stage_.assign(size_t(gi.header), 0);
  int32_t* const st = stage_.data();
  int32_t *ids = st + gi.ids, *pos = st + gi.pos, *qs = st + gi.qs, *kvl = st + gi.kvl, *rows = st + gi.logit_rows,
          *hrows = st + gi.hidden_rows;
  for (int s = 0; s < Sp; s++) {
    const int r0 = s < S ? b.q_start[size_t(s)] : 0, n = s < S ? b.q_start[size_t(s) + 1] - r0 : 0;
    for (int i = 0; i < q; i++) {
      const int t = s * q + i;
      ids[t] = i < n ? b.tokens[size_t(r0 + i)] : 0;
      pos[t] = i < n ? b.positions[size_t(r0 + i)] : n > 0 ? b.positions[size_t(r0 + n - 1)] : i;
      if (fn >= 0) hrows[t] = i < n ? r0 + i : 0;  // MTP: padded row <- given row
    }
    qs[s] = s * q;
    kvl[s] = s < S ? b.kv_len[size_t(s)] : q;
  }
  qs[Sp] = Tp;
  for (int i = 0; i < R; i++) rows[i] = pmap_[size_t(b.logit_rows[size_t(i)])];
  if (fn < 0)
    for (int t = 0; t < T; t++) hrows[t] = pmap_[size_t(t)];  // target: given row <- padded row
  int64_t used_len[2] = {0, 0};
  for (int p = 0; p < 2; p++) {
    if (g.in.meta[p].num_seqs == 0) continue;  // a pool this step does not use
    const PoolSlots& ps = b.pools[p];
    used_len[p] = int64_t(ps.table.size()) + int64_t(Sp - S) * q;
    int32_t *ts = st + gi.ts[p], *os = st + gi.os[p];
    for (int s = 0; s < Sp; s++) ts[s] = s < S ? ps.table_start[size_t(s)] : int32_t(ps.table.size()) + (s - S) * q;
    std::fill(os, os + Tp, kv.pad_slot(p));
    for (int t = 0; t < T; t++) os[pmap_[size_t(t)]] = ps.out_slots[size_t(t)];
  }
  Tensor header = gi.buf.slice_rows(0, gi.header);
  be_.copy_from_host(header, stage_.data());
  for (int p = 0; p < 2; p++) {
    if (used_len[p] == 0) continue;
    const PoolSlots& ps = b.pools[p];
    stage_.assign(ps.table.begin(), ps.table.end());
    stage_.resize(size_t(used_len[p]), kv.pad_slot(p));
    Tensor dst = gi.buf.slice_rows(gi.tables[p], gi.tables[p] + used_len[p]);
    be_.copy_from_host(dst, stage_.data());
  }
  if (fn >= 0) {
    Tensor dst = gi.hidden.slice_rows(0, T);
    be_.convert(*hidden_in, dst);  // a device copy, outside the graph
  }

  if (!g.graph) {
    const auto t0 = std::chrono::steady_clock::now();
    try {
      capture(g, kv);
    } catch (const std::exception& e) {
      // This shape runs op by op from now on (the op-by-op run reports any
      // error that is not the capture's own).
      g.failed = true;
      cur_ = &ws_;
      spdlog::warn("step graph capture failed ({} sequences x {} rows, context up to {}): {}; these steps run op "
                   "by op",
                   Sp, q, cap, e.what());
      return nullptr;
    }
    spdlog::debug("step graph captured: {}, {} sequences x {} rows, context up to {}, {} logits rows ({:.1f} ms, {} "
                  "graphs held)",
                  fn < 0 ? std::string("target") : fmt::format("MTP layer {}", fn), Sp, q, cap, Rp,
                  std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count(),
                  graphs_.size());
  }
  be_.replay(*g.graph);
  g.used = ++graph_replays_;
  logits_ = g.logits.slice_rows(0, R);
  if (fn < 0) hidden_ = g.hidden.slice_rows(0, T);
  return &logits_;
}

void Model::run_graph_body(Graph& g, KvCache& kv) {
  const int64_t Tp = g.in.T, H = spec_.hidden_size;
  if (g.fn < 0) {
    run_forward(g.in, kv);
    // hidden() in the given rows' order.
    Tensor h = cur_->take({Tp, H}, DType::F32);
    be_.gather_rows(hidden_, g.hidden_rows, h);
    hidden_ = h;
  } else {
    Tensor h = cur_->take({Tp, H}, DType::F32);
    be_.gather_rows(gin_.hidden.slice_rows(0, Tp), g.hidden_rows, h);
    run_mtp(g.fn, g.in, h, kv);
  }
}

void Model::capture(Graph& g, KvCache& kv) {
  auto run = [&] {
    gws_.reset();
    cur_ = &gws_;
    run_graph_body(g, kv);
    cur_ = &ws_;
  };
  // One run op by op first: the backend sizes its scratch memory, and the
  // workspace learns its high-water mark. If the workspace had to grow, the
  // other graphs point into the block it leaves, so they go.
  run();
  if (!gws_.settled()) {
    for (auto it = graphs_.begin(); it != graphs_.end();)
      it = &it->second == &g ? std::next(it) : graphs_.erase(it);
    run();
    MIMO_ASSERT(gws_.settled(), "graph workspace still growing after a second run");
  }
  gws_.reset();
  cur_ = &gws_;
  be_.begin_capture();
  try {
    run_graph_body(g, kv);
    g.graph = be_.end_capture();
  } catch (...) {
    be_.abort_capture();
    cur_ = &ws_;
    throw;
  }
  cur_ = &ws_;
  g.logits = logits_;
  g.hidden = hidden_;
  graph_captures_++;
}

}  // namespace mimo
