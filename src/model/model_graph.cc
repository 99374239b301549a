// Model step graphs: decode and verify steps padded to a bucketed batch and
// replayed from a capture (see Model::enable_graphs).
//
// A graph fixes every argument of every op, so whatever changes from step
// to step lives in device buffers the graph owns (token ids, positions,
// slot tables), and whatever sizes a launch is fixed by the key: the padded
// number of sequences, the rows per sequence, and a context capacity (a
// power of two at least the longest context, which bounds the slot tables
// and the attention's split count). Padding sequences attend over the KV
// cache's pad slot only, so they never touch a request's KV.
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

void Model::enable_graphs(int max_bs) {
  graph_max_bs_ = be_.can_capture() && comm_.size() == 1 ? std::max(0, max_bs) : 0;
  graphs_.clear();
}

Model::Graph Model::make_graph(int S, int q, int kv_cap) {
  // Layout (I32): ids [T], positions [T], q_start [S+1], kv_len [S], rows [T],
  // then per pool table_start [S] and out_slots [T]; the tables last, so a
  // step copies only the part of each it uses.
  const int64_t T = int64_t(S) * q;
  Graph g;
  int64_t off = 0;
  auto carve = [&](int64_t n) {
    int64_t at = off;
    off += n;
    return at;
  };
  const int64_t o_ids = carve(T), o_pos = carve(T), o_qs = carve(S + 1), o_kvl = carve(S), o_rows = carve(T);
  int64_t o_ts[2] = {0, 0}, o_os[2] = {0, 0};
  bool used[2] = {used_pool(AttnKind::Full), used_pool(AttnKind::Sliding)};
  for (int p = 0; p < 2; p++)
    if (used[p]) {
      o_ts[p] = carve(S);
      o_os[p] = carve(T);
    }
  g.header = off;
  for (int p = 0; p < 2; p++)
    if (used[p]) g.table_off[p] = carve(int64_t(S) * kv_cap);
  g.buf = be_.alloc({off}, DType::I32);
  auto part = [&](int64_t at, int64_t n) { return g.buf.slice_rows(at, at + n); };
  g.in.T = T;
  g.in.R = T;
  g.in.ids = part(o_ids, T);
  g.in.rows = part(o_rows, T);
  for (int p = 0; p < 2; p++) {
    if (!used[p]) continue;
    AttnMeta& m = g.in.meta[p];
    m.positions = part(o_pos, T);
    m.q_start = part(o_qs, S + 1);
    m.kv_len = part(o_kvl, S);
    m.table_start = part(o_ts[p], S);
    m.out_slots = part(o_os[p], T);
    m.table = part(g.table_off[p], int64_t(S) * kv_cap);
    m.num_seqs = S;
    m.max_q_len = q;
    m.max_kv_len = kv_cap;
  }
  return g;
}

const Tensor* Model::forward_graphed(const StepBatch& b, KvCache& kv) {
  const int S = b.num_seqs(), T = b.num_tokens();
  if (graph_max_bs_ == 0 || S == 0 || S > graph_max_bs_) return nullptr;
  const int q = b.q_start[1] - b.q_start[0];
  if (q < 1 || q > kMaxGraphRows || T != S * q || int(b.logit_rows.size()) != T) return nullptr;
  int max_kv = 0;
  for (int s = 0; s < S; s++) {
    if (b.q_start[size_t(s) + 1] - b.q_start[size_t(s)] != q) return nullptr;
    max_kv = std::max(max_kv, b.kv_len[size_t(s)]);
  }
  for (int i = 0; i < T; i++)
    if (b.logit_rows[size_t(i)] != i) return nullptr;

  const int Sp = seq_bucket(S), cap = kv_bucket(max_kv);
  auto key = std::make_tuple(kv.id(), Sp, q, cap);
  auto it = graphs_.find(key);
  if (it == graphs_.end()) {
    // Graphs of caches that are gone will never run again.
    std::erase_if(graphs_, [](const auto& e) { return e.second.kv_alive.expired(); });
    it = graphs_.emplace(key, make_graph(Sp, q, cap)).first;
    it->second.kv_alive = kv.lifetime();
  }
  Graph& g = it->second;

  // The header, padded: sequence s >= S holds q rows at positions 0..q-1,
  // all on the pad slot.
  const int64_t Tp = int64_t(Sp) * q;
  stage_.assign(size_t(g.header), 0);
  int32_t* w = stage_.data();
  auto put = [&](const std::vector<int32_t>& v, int64_t n, int32_t fill) {
    std::copy(v.begin(), v.end(), w);
    std::fill(w + v.size(), w + n, fill);
    w += n;
  };
  put(b.tokens, Tp, 0);
  std::copy(b.positions.begin(), b.positions.end(), w);
  for (int64_t t = T; t < Tp; t++) w[t] = int32_t((t - T) % q);
  w += Tp;
  for (int s = 0; s <= Sp; s++) w[s] = s <= S ? b.q_start[size_t(s)] : s * q;
  w += Sp + 1;
  put(b.kv_len, Sp, q);
  for (int64_t t = 0; t < Tp; t++) w[t] = int32_t(t);
  w += Tp;
  int64_t used_len[2] = {0, 0};
  for (int p = 0; p < 2; p++) {
    if (g.in.meta[p].num_seqs == 0) continue;  // a pool no layer uses
    const PoolSlots& ps = b.pools[p];
    used_len[p] = int64_t(ps.table.size()) + int64_t(Sp - S) * q;
    for (int s = 0; s < Sp; s++) w[s] = s < S ? ps.table_start[size_t(s)] : int32_t(ps.table.size()) + (s - S) * q;
    w += Sp;
    put(ps.out_slots, Tp, kv.pad_slot(p));
  }
  Tensor header = g.buf.slice_rows(0, g.header);
  be_.copy_from_host(header, stage_.data());
  for (int p = 0; p < 2; p++) {
    if (used_len[p] == 0) continue;
    const PoolSlots& ps = b.pools[p];
    stage_.assign(ps.table.begin(), ps.table.end());
    stage_.resize(size_t(used_len[p]), kv.pad_slot(p));
    Tensor dst = g.buf.slice_rows(g.table_off[p], g.table_off[p] + used_len[p]);
    be_.copy_from_host(dst, stage_.data());
  }

  if (!g.graph) {
    const auto t0 = std::chrono::steady_clock::now();
    capture(g, kv);
    spdlog::debug("step graph captured: {} sequences x {} rows, context up to {} ({:.1f} ms, {} graphs held)", Sp, q,
                  cap, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count(),
                  graphs_.size());
  }
  be_.replay(*g.graph);
  graph_replays_++;
  hidden_ = g.hidden.slice_rows(0, T);
  logits_ = g.logits.slice_rows(0, T);
  return &logits_;
}

void Model::capture(Graph& g, KvCache& kv) {
  auto run = [&] {
    gws_.reset();
    cur_ = &gws_;
    run_forward(g.in, kv);
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
  run_forward(g.in, kv);
  g.graph = be_.end_capture();
  cur_ = &ws_;
  g.logits = logits_;
  g.hidden = hidden_;
  graph_captures_++;
}

}  // namespace mimo
