// A persistent pool of worker threads for data-parallel kernels. The calling
// thread takes part, so a pool of N runs N-way. Workers spin briefly before
// sleeping, so back-to-back kernels of a decode step do not pay a wake-up each.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace mimo {

class ThreadPool {
 public:
  explicit ThreadPool(int num_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return num_threads_; }

  // Runs fn(tid, nthreads) on every thread (tid 0 is the caller) and waits.
  void run(const std::function<void(int, int)>& fn);

  // Splits [0, n) into contiguous ranges of at least `grain` items and runs
  // fn(begin, end) for each; returns when all are done.
  void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

  // The process-wide pool used by CPU kernels (sized by set_global_threads or
  // the number of online CPUs).
  static ThreadPool& global();
  static void set_global_threads(int n);

 private:
  void worker(int tid);

  int num_threads_;
  std::vector<std::thread> threads_;
  const std::function<void(int, int)>* job_ = nullptr;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
  std::mutex run_mu_;  // one job at a time; kernels never nest run()
};

}  // namespace mimo
