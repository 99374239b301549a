#include "model/batch.h"

#include "core/error.h"

namespace mimo {

void StepBatch::add_contiguous(const std::vector<int32_t>& toks, int32_t start, bool all_logits, int32_t slot_base) {
  if (q_start.empty()) q_start.push_back(0);
  int32_t n = int32_t(toks.size()), row0 = int32_t(tokens.size());
  for (int32_t i = 0; i < n; i++) {
    tokens.push_back(toks[size_t(i)]);
    positions.push_back(start + i);
    if (all_logits || i == n - 1) logit_rows.push_back(row0 + i);
  }
  q_start.push_back(row0 + n);
  kv_len.push_back(start + n);
  for (auto& p : pools) {
    p.table_start.push_back(int32_t(p.table.size()));
    for (int32_t j = 0; j < start + n; j++) p.table.push_back(slot_base + j);
    for (int32_t i = 0; i < n; i++) p.out_slots.push_back(slot_base + start + i);
  }
}

void StepBatch::validate(int64_t full_slots, int64_t swa_slots) const {
  // A pool with no slots is one this forward does not use: not checked.
  int T = num_tokens(), S = num_seqs();
  MIMO_ASSERT(int(positions.size()) == T && int(q_start.size()) == S + 1 && q_start[0] == 0 && q_start[size_t(S)] == T);
  int64_t slots[2] = {full_slots, swa_slots};
  for (int p = 0; p < 2; p++) {
    if (slots[p] == 0) continue;
    MIMO_ASSERT(int(pools[p].table_start.size()) == S && int(pools[p].out_slots.size()) == T);
    for (auto s : pools[p].out_slots) MIMO_ASSERT(s >= 0 && s < slots[p], "out slot {} of pool {}", s, p);
  }
  for (int s = 0; s < S; s++)
    for (int32_t r = q_start[size_t(s)]; r < q_start[size_t(s) + 1]; r++)
      MIMO_ASSERT(positions[size_t(r)] < kv_len[size_t(s)]);
  for (auto r : logit_rows) MIMO_ASSERT(r >= 0 && r < T);
}

}  // namespace mimo
