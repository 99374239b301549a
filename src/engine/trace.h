// A Chrome trace (chrome://tracing, Perfetto) of what each thread did:
// complete events ("ph": "X") with microsecond timestamps, one track per
// thread. Cheap enough to leave on while profiling; off (a null recorder)
// otherwise.
#pragma once

#include <chrono>
#include <mutex>
#include <string>
#include <vector>

namespace mimo {

class TraceRecorder {
 public:
  explicit TraceRecorder(std::string path);
  ~TraceRecorder();  // writes the file
  void span(const char* name, int tid, std::chrono::steady_clock::time_point begin,
            std::chrono::steady_clock::time_point end, const std::string& args_json = "");
  void write();

 private:
  struct Event {
    const char* name;
    int tid;
    int64_t ts_us, dur_us;
    std::string args;
  };
  std::string path_;
  std::chrono::steady_clock::time_point t0_;
  std::mutex mu_;
  std::vector<Event> events_;
  bool written_ = false;
};

// RAII span; does nothing when the recorder is null.
class TraceSpan {
 public:
  TraceSpan(TraceRecorder* t, const char* name, int tid)
      : t_(t), name_(name), tid_(tid), begin_(std::chrono::steady_clock::now()) {}
  ~TraceSpan() {
    if (t_) t_->span(name_, tid_, begin_, std::chrono::steady_clock::now(), args_);
  }
  void args(std::string a) { args_ = std::move(a); }

 private:
  TraceRecorder* t_;
  const char* name_;
  int tid_;
  std::chrono::steady_clock::time_point begin_;
  std::string args_;
};

// Thread ids for the trace's tracks.
constexpr int kTraceEngineThread = 1, kTraceModelThread = 2;

}  // namespace mimo
