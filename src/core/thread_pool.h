// A persistent pool of worker threads for data-parallel kernels. Work is cut
// into chunks that the caller and the workers claim from a shared counter,
// so a worker that the OS has not scheduled yet (a busy machine, HTTP
// threads) delays nothing: the caller takes its chunks. Workers spin briefly
// before sleeping, so back-to-back kernels of a decode step do not pay a
// wake-up each.
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

  // Runs fn(chunk) for chunk in [0, num_chunks) across the pool; returns when
  // all are done. Calls from different threads are serialised.
  void run_chunks(int64_t num_chunks, const std::function<void(int64_t)>& fn);

  // Runs fn(tid, nthreads) once per thread slot (tid 0 may run on any thread).
  void run(const std::function<void(int, int)>& fn);

  // Splits [0, n) into contiguous ranges of at least `grain` items and runs
  // fn(begin, end) for each; returns when all are done.
  void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

  // The process-wide pool used by CPU kernels (sized by set_global_threads or
  // the number of online CPUs).
  static ThreadPool& global();
  static void set_global_threads(int n);

 private:
  void worker();
  void work_on(uint32_t job);

  int num_threads_;
  std::vector<std::thread> threads_;
  std::mutex run_mu_;
  // The current job. next_ packs (job id << 32 | next chunk); a thread may
  // run a chunk only after claiming it with a CAS that also checks the job
  // id, so a late worker can never run a chunk of a job that has ended.
  std::atomic<const std::function<void(int64_t)>*> fn_{nullptr};
  std::atomic<int64_t> num_chunks_{0};
  std::atomic<uint64_t> next_{0};
  std::atomic<int64_t> done_{0};
  uint32_t job_id_ = 0;
  std::atomic<uint64_t> generation_{0};
  std::atomic<bool> stop_{false};
};

}  // namespace mimo
