#include "core/log.h"

#include <unistd.h>

#include <cstdio>

#include "core/error.h"

namespace mimo {

void set_log_level(const std::string& level) {
  std::string l = level == "warning" ? "warn" : level;
  auto lv = spdlog::level::from_str(l);
  if (lv == spdlog::level::off && l != "off") fail("unknown --log-level '{}'", level);
  spdlog::set_level(lv);
}

ProgressBar::ProgressBar(std::string label, uint64_t total_bytes)
    : label_(std::move(label)), total_(total_bytes), start_(std::chrono::steady_clock::now()),
      enabled_(isatty(STDERR_FILENO) != 0) {}

ProgressBar::~ProgressBar() { finish(); }

void ProgressBar::add(uint64_t bytes) {
  done_.fetch_add(bytes);
  if (!enabled_) return;
  int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start_).count();
  int64_t last = last_draw_ns_.load();
  if (now - last > 100'000'000 && last_draw_ns_.compare_exchange_strong(last, now)) draw(false);
}

void ProgressBar::finish() {
  if (finished_) return;
  finished_ = true;
  if (enabled_) draw(true);
}

void ProgressBar::draw(bool final) {
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  double done = double(done_.load()), total = double(total_);
  double rate = secs > 0 ? done / secs : 0;
  double eta = rate > 0 ? (total - done) / rate : 0;
  int width = 30, fill = total > 0 ? int(width * done / total) : width;
  std::string bar(size_t(fill), '#');
  bar.resize(size_t(width), '.');
  std::fprintf(stderr, "\r%s [%s] %.1f/%.1f MB  %.1f MB/s  ETA %.0fs   %s", label_.c_str(), bar.c_str(), done / 1e6,
               total / 1e6, rate / 1e6, eta, final ? "\n" : "");
  std::fflush(stderr);
}

}  // namespace mimo
