// One model step as the runtime describes it on the host: the tokens of
// several sequences (prefill chunks, decode tokens, verify runs), where each
// token's KV goes, and which rows need logits. The model uploads it once
// per step; nothing flows back to the host until the caller reads outputs.
#pragma once

#include <cstdint>
#include <vector>

namespace mimo {

struct PoolSlots {
  std::vector<int32_t> table_start;  // [S] offset of each sequence in `table`
  std::vector<int32_t> table;        // per sequence: slot of positions 0..kv_len-1 (-1 = not held)
  std::vector<int32_t> out_slots;    // [T] slot each new token's K/V is written to
};

struct StepBatch {
  std::vector<int32_t> tokens;     // [T]
  std::vector<int32_t> positions;  // [T]
  std::vector<int32_t> q_start;    // [S + 1]
  std::vector<int32_t> kv_len;     // [S] context length after this step
  PoolSlots pools[2];              // kPoolFull, kPoolSwa
  std::vector<int32_t> logit_rows; // rows of the step whose logits are wanted

  int num_seqs() const { return int(kv_len.size()); }
  int num_tokens() const { return int(tokens.size()); }

  // Appends a sequence whose tokens sit at positions [start, start + n) and
  // whose KV lives at slot slot_base + position in both pools (a contiguous
  // per-sequence region: the simple cache).
  void add_contiguous(const std::vector<int32_t>& toks, int32_t start, bool all_logits, int32_t slot_base = 0);
  // Checks internal consistency (sizes, ranges); a broken batch is a bug.
  void validate(int64_t full_slots, int64_t swa_slots) const;
};

}  // namespace mimo
