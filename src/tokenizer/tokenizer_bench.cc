// Encode throughput on a JSONL file of strings (e.g. build/tokenizer-ref/
// bench.jsonl or corpus.jsonl), single-threaded with a cold and a warm piece
// cache, then with several threads sharing one Tokenizer as HTTP threads do.
//
//   tokenizer_bench MODEL_DIR TEXTS.jsonl [threads...]
//
// Prints wall-clock MB/s (and CPU-time MB/s for one thread, which is steadier
// on a shared machine).
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "tokenizer/tokenizer.h"

namespace {

double thread_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s MODEL_DIR TEXTS.jsonl [threads...]\n", argv[0]);
    return 2;
  }
  try {
    const mimo::Tokenizer tok = mimo::Tokenizer::load(argv[1]);
    std::vector<std::string> texts;
    size_t bytes = 0;
    std::ifstream f(argv[2]);
    for (std::string line; std::getline(f, line);) {
      if (line.empty()) continue;
      texts.push_back(nlohmann::json::parse(line).get<std::string>());
      bytes += texts.back().size();
    }
    MIMO_CHECK(!texts.empty(), "{}: no strings", argv[2]);
    size_t tokens = 0;
    auto pass = [&](size_t* sink) {
      for (const auto& s : texts) *sink += tok.encode(s).size();
    };
    using clock = std::chrono::steady_clock;
    const double mb = double(bytes) / 1e6;

    tok.clear_cache();
    auto t0 = clock::now();
    double c0 = thread_cpu_seconds();
    pass(&tokens);
    const double cold_wall = std::chrono::duration<double>(clock::now() - t0).count();
    const double cold_cpu = thread_cpu_seconds() - c0;
    const int reps = std::max(1, int(20 / mb));  // about 20 MB per measurement
    t0 = clock::now();
    c0 = thread_cpu_seconds();
    size_t sink = 0;
    for (int r = 0; r < reps; ++r) pass(&sink);
    const double warm_wall = std::chrono::duration<double>(clock::now() - t0).count();
    const double warm_cpu = thread_cpu_seconds() - c0;
    std::printf("%s: %zu strings, %.2f MB, %.2f bytes/token\n", argv[2], texts.size(), mb, double(bytes) / tokens);
    std::printf("1 thread: cold cache %.1f MB/s (cpu %.1f), warm %.1f MB/s (cpu %.1f)\n", mb / cold_wall,
                mb / cold_cpu, mb * reps / warm_wall, mb * reps / warm_cpu);

    for (int a = 3; a < argc; ++a) {
      const int n = std::atoi(argv[a]);
      if (n < 1) continue;
      std::vector<std::thread> threads;
      std::vector<size_t> sinks(size_t(n), 0);
      t0 = clock::now();
      for (int t = 0; t < n; ++t) {
        threads.emplace_back([&, t] {
          for (int r = 0; r < reps; ++r) pass(&sinks[t]);
        });
      }
      for (auto& th : threads) th.join();
      const double wall = std::chrono::duration<double>(clock::now() - t0).count();
      std::printf("%d threads: %.1f MB/s total, %.1f MB/s per thread\n", n, mb * reps * n / wall, mb * reps / wall);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tokenizer_bench: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
