// `--speculative-num-steps auto`: picks the MTP draft depth (0..max) for
// each decode step from the batch size, the acceptance measured on recent
// verify steps and the measured cost of verify and draft steps. Deep when
// a step is memory-bound (a verify of 4 tokens costs about one) and drafts
// are accepted; off when compute-bound (verify cost grows with tokens).
//
// Acceptance is kept per draft position: p_k = P(draft k accepted | drafts
// 1..k-1 accepted), counted from every verify (a verify of d drafts that
// accepted a < d of them also says what any deeper depth would have got:
// the same a). The expected tokens of a step at depth d are then
// 1 + p_1 + p_1 p_2 + ... (the chain rule: no independence assumed), and
// MTP layer k's own quality shows in its own p_k.
//
// That pooled estimate is then scaled per depth by what steps at that depth
// actually got against what it predicted for them. Hard tokens come in
// runs, and a depth changes where the next step starts (after a rejected
// second draft, say), so the same layers accept differently at different
// depths: on the default model at batch 16, MTP layer 1's drafts were
// accepted 85% of the time at depth 1, 78% at depth 2 and 81% at depth 3,
// and the pooled estimate, fed mostly by the depth in use, ranked depth 2
// above depth 1 at batch 1 where it ran 10% slower.
//
// Costs are measured per batch-size bucket (powers of two) and depth by
// running that depth: a new batch size starts from the nearest known one's
// best depth, and only the best depth's neighbours are re-measured, on a
// schedule that caps what re-measuring a worse depth may cost (spec_depth.cc).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>

namespace mimo {

class SpecDepthController {
 public:
  static constexpr int kMaxDepth = 3;  // MiMo-V2-Flash has 3 MTP layers
  // Counts indexed by draft depth 0..kMaxDepth.
  using PerDepth = std::array<int64_t, kMaxDepth + 1>;
  explicit SpecDepthController(int max_depth);
  int choose(int batch);
  // One request's verify: `drafts` drafts offered, the first `accepted` of them accepted.
  void record_verify(int drafts, int accepted);
  // One decode step: the depth whose drafts it verified (0: none), the batch
  // size, and its seconds from the draft before it to the next one.
  void observe(int depth, int batch, double step_s);
  // Tokens a request gains per step at this depth, by the current estimate
  // (the pooled per-position one times the depth's correction).
  double expected_tokens(int depth) const;
  // Acceptance per position, cost and samples per batch size and depth (for logs).
  std::string summary() const;

 private:
  static int bucket(int batch);
  int max_;
  int last_ = 0;
  int hold_ = 0;         // steps to stay at last_ (a re-measure runs three)
  int prev_depth_ = -1;  // the depth the previous observed step verified
  int streak_ = 0;       // steps in a row at prev_depth_
  int64_t steps_ = 0;
  // Decayed counts per draft position (an optimistic prior of 0.7, revised
  // within a few verifies).
  std::array<double, kMaxDepth> trials_{}, hits_{};
  // Per depth: decayed sums of the tokens its verifies got and of what the
  // pooled estimate predicted for them (their ratio is the correction).
  std::array<double, kMaxDepth + 1> got_{}, predicted_{};
  double pooled_tokens(int depth) const;
  double correction(int depth) const;
  // Step seconds by (batch bucket, depth): the median of the last nine
  // samples (robust to the odd slow step from other load, and unbiased where
  // the fastest of a few was not: short, jittery depth-0 steps looked ~15%
  // cheaper than they were on average, which kept batch 1 at depth 0), and
  // the step each depth was last measured at, so stale depths get measured
  // again.
  struct Cost {
    static constexpr int kWindow = 9;
    std::array<double, kWindow> recent{};
    int samples = 0;
    int64_t at = 0;
    double seconds() const;
  };
  std::map<int, std::array<Cost, kMaxDepth + 1>> cost_;
  // The measured depth with the most tokens per second; -1 if none is measured.
  int best(const std::array<Cost, kMaxDepth + 1>& c) const;
};

}  // namespace mimo
