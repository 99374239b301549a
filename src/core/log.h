// Logging (spdlog) and a terminal progress bar.
#pragma once

#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

namespace mimo {

// "debug", "info", "warning", "error", "critical" (SGLang's names) or spdlog's.
void set_log_level(const std::string& level);

// Prints "label  done/total MB  rate MB/s  ETA" on stderr when it is a
// terminal, at most every 100 ms; silent otherwise. Thread-safe.
class ProgressBar {
 public:
  ProgressBar(std::string label, uint64_t total_bytes);
  ~ProgressBar();
  void add(uint64_t bytes);
  void finish();

 private:
  void draw(bool final);
  std::string label_;
  uint64_t total_;
  std::atomic<uint64_t> done_{0};
  std::atomic<int64_t> last_draw_ns_{0};
  std::chrono::steady_clock::time_point start_;
  bool enabled_;
  bool finished_ = false;
};

}  // namespace mimo
