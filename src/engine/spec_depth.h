// `--speculative-num-steps auto`: picks the MTP draft depth (0..max) for
// each decode step from the batch size, the acceptance measured on recent
// verify steps and the measured cost of verify and draft steps. Deep when
// a step is memory-bound (a verify of 4 tokens costs about one) and drafts
// are accepted; off when compute-bound (verify cost grows with tokens).
#pragma once

#include <array>
#include <cstdint>
#include <map>

namespace mimo {

class SpecDepthController {
 public:
  explicit SpecDepthController(int max_depth) : max_(max_depth) {}
  int choose(int batch);
  // One decode step: depth used, batch size, drafts accepted, drafts offered,
  // seconds in the target forward and in drafting.
  void observe(int depth, int batch, int64_t accepted, int64_t offered, double forward_s, double draft_s);
  double acceptance() const { return accept_; }
  int last() const { return last_; }

 private:
  static int bucket(int batch);
  double expected_tokens(int depth) const;  // per request per step
  int max_;
  int last_ = 0;
  int64_t steps_ = 0;
  double accept_ = 0.7;  // per-draft acceptance probability (optimistic start, revised at once)
  // Step seconds by (batch bucket, depth): the fastest of the last four
  // samples (other load and warm-up only ever slow a step down; four samples
  // still follow costs that grow with the context), and the step each depth
  // was last measured at, so stale depths get measured again.
  struct Cost {
    std::array<double, 4> recent{};
    int samples = 0;
    int64_t at = 0;
    double seconds() const;
  };
  std::map<int, std::array<Cost, 4>> cost_;
  int best(const std::array<Cost, 4>& c) const;  // the depth with the most tokens per second
};

}  // namespace mimo
