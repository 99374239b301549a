// A request's state inside the scheduler: its tokens, where their KV lives
// in each pool, what the prefix cache lent it, and its sampling state. The
// scheduler owns Reqs; the engine reads and appends tokens between steps.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/sampler.h"

namespace mimo {

struct RadixNode;

enum class ReqStatus { Waiting, Running, Finished };

struct Req {
  uint64_t seq = 0;          // arrival order
  std::string id;
  std::vector<int32_t> tokens;  // prompt + output so far
  int prompt_len = 0;
  SamplingParams params;
  std::unique_ptr<Sampler> sampler;

  // KV bookkeeping. Positions [0, computed) have KV in the cache.
  // full_slots/swa_slots cover positions [0, allocated); swa_slots[i] == -1
  // once position i slid out of the window (or the cache tombstoned it).
  int64_t computed = 0;
  std::vector<int32_t> full_slots, swa_slots;
  int64_t prefix_len = 0;          // positions [0, prefix_len) are owned by the radix cache (locked)
  RadixNode* prefix_node = nullptr;
  int64_t swa_freed_upto = 0;      // own SWA slots below this position are already freed
  bool matched = false;            // prefix matched since (re)admission

  ReqStatus status = ReqStatus::Waiting;
  bool aborted = false;
  int retractions = 0;
  int cached_tokens = 0;           // prompt tokens served from the prefix cache at first admission
  const Req* wait_for = nullptr;   // n > 1: siblings wait until the first has its prompt cached

  // Speculative decoding (MTP). drafts follow `tokens` and are verified by
  // the next step; MTP layer k has KV computed from the right inputs for
  // positions [0, mtp_done[k]); hist holds the target's hidden states of
  // positions [hist_begin, hist_begin + rows) for the next draft step.
  std::vector<int32_t> drafts;
  int64_t mtp_done[3] = {0, 0, 0};
  int64_t hist_begin = 0;
  std::vector<float> hist;
  int64_t spec_verifies = 0, spec_accepted = 0;  // for the accept length

  // Output bookkeeping (engine side).
  int64_t output_len() const { return int64_t(tokens.size()) - prompt_len; }
  // Positions [first, second) of a run [begin, begin + len) whose logits give
  // the logprob of the prompt token after them (params.prompt_logprobs_start);
  // the prompt's last position is the sampling row, not one of these.
  std::pair<int64_t, int64_t> prompt_logit_rows(int64_t begin, int64_t len) const {
    if (params.prompt_logprobs_start < 0) return {0, 0};
    const int64_t lo = std::max<int64_t>({begin, int64_t(params.prompt_logprobs_start) - 1, 0});
    const int64_t hi = std::min<int64_t>(begin + len, prompt_len - 1);
    return {lo, std::max(lo, hi)};
  }
  std::chrono::steady_clock::time_point arrival;
  std::string text;                // decoded output so far (when the engine has a codec)
  size_t text_sent = 0;            // bytes of `text` already streamed
  size_t tokens_sent = 0;          // output tokens already streamed
  size_t tokens_texted = 0;        // output tokens already run through the detokenizer
  size_t text_limit = SIZE_MAX;    // output tokens whose text may show (a stop token's does not)
  std::vector<TokenLogprob> lps_pending;  // logprobs of tokens not yet streamed
  std::vector<TokenLogprob> prompt_lps;   // params.prompt_logprobs_start: the prompt's, sent with the first output
  bool prompt_lps_sent = false;
  bool stop_pending = false;       // a stop string matched while the request was in flight
  std::string stop_matched;
};

}  // namespace mimo
