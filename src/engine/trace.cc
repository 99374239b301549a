#include "engine/trace.h"

#include <fstream>

#include "core/log.h"

namespace mimo {

TraceRecorder::TraceRecorder(std::string path) : path_(std::move(path)), t0_(std::chrono::steady_clock::now()) {}

TraceRecorder::~TraceRecorder() { write(); }

void TraceRecorder::span(const char* name, int tid, std::chrono::steady_clock::time_point begin,
                         std::chrono::steady_clock::time_point end, const std::string& args_json) {
  auto us = [&](std::chrono::steady_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::microseconds>(t - t0_).count();
  };
  std::lock_guard<std::mutex> lk(mu_);
  events_.push_back({name, tid, us(begin), std::max<int64_t>(1, us(end) - us(begin)), args_json});
}

void TraceRecorder::write() {
  std::lock_guard<std::mutex> lk(mu_);
  if (written_) return;
  written_ = true;
  std::ofstream out(path_);
  if (!out) {
    spdlog::error("cannot write the profile trace to '{}'", path_);
    return;
  }
  out << "{\"traceEvents\":[\n";
  out << "{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":" << kTraceEngineThread
      << ",\"args\":{\"name\":\"engine (scheduler, sampling, outputs)\"}},\n";
  out << "{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":" << kTraceModelThread
      << ",\"args\":{\"name\":\"model (forward passes)\"}}";
  for (auto& e : events_) {
    out << ",\n{\"name\":\"" << e.name << "\",\"ph\":\"X\",\"pid\":1,\"tid\":" << e.tid << ",\"ts\":" << e.ts_us
        << ",\"dur\":" << e.dur_us;
    if (!e.args.empty()) out << ",\"args\":" << e.args;
    out << "}";
  }
  out << "\n],\"displayTimeUnit\":\"ms\"}\n";
  spdlog::info("wrote profile trace with {} spans to {}", events_.size(), path_);
}

}  // namespace mimo
