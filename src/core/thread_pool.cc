#include "core/thread_pool.h"

#include <algorithm>
#include <memory>

#if defined(__x86_64__)
#include <immintrin.h>
#define MIMO_PAUSE() _mm_pause()
#else
#define MIMO_PAUSE() ((void)0)
#endif

namespace mimo {

ThreadPool::ThreadPool(int num_threads) : num_threads_(std::max(1, num_threads)) {
  for (int i = 1; i < num_threads_; i++) threads_.emplace_back([this] { worker(); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true);
  generation_.fetch_add(1);
  generation_.notify_all();
  for (auto& t : threads_) t.join();
}

void ThreadPool::work_on(uint32_t job) {
  uint64_t v = next_.load(std::memory_order_acquire);
  for (;;) {
    if (uint32_t(v >> 32) != job) return;
    int64_t c = int64_t(v & 0xffffffffu);
    if (c >= num_chunks_.load(std::memory_order_acquire)) return;
    if (!next_.compare_exchange_weak(v, v + 1, std::memory_order_acq_rel)) continue;
    (*fn_.load(std::memory_order_acquire))(c);
    done_.fetch_add(1, std::memory_order_acq_rel);
    v = next_.load(std::memory_order_acquire);
  }
}

void ThreadPool::worker() {
  uint64_t seen = 0;
  for (;;) {
    uint64_t g = generation_.load(std::memory_order_acquire);
    // Kernels of a step follow each other within microseconds: spin on the
    // CPU for those, then yield-spin, so that another runnable thread on this
    // core (the engine thread after a forward, an HTTP thread) gets it at
    // once instead of after the spin; then sleep.
    for (int spin = 0; g == seen && spin < 4000; spin++) {
      if (spin < 500) MIMO_PAUSE();
      else std::this_thread::yield();
      g = generation_.load(std::memory_order_acquire);
    }
    if (g == seen) {
      generation_.wait(seen, std::memory_order_acquire);
      continue;
    }
    seen = g;
    if (stop_.load()) return;
    work_on(uint32_t(next_.load(std::memory_order_acquire) >> 32));
  }
}

void ThreadPool::run_chunks(int64_t num_chunks, const std::function<void(int64_t)>& fn) {
  if (num_chunks <= 0) return;
  if (num_threads_ == 1 || num_chunks == 1) {
    for (int64_t c = 0; c < num_chunks; c++) fn(c);
    return;
  }
  std::lock_guard<std::mutex> lk(run_mu_);
  uint32_t job = ++job_id_;
  fn_.store(&fn, std::memory_order_relaxed);
  num_chunks_.store(num_chunks, std::memory_order_relaxed);
  done_.store(0, std::memory_order_relaxed);
  next_.store(uint64_t(job) << 32, std::memory_order_release);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  generation_.notify_all();
  work_on(job);
  // Only chunks that a running worker has claimed can still be in flight.
  while (done_.load(std::memory_order_acquire) != num_chunks) MIMO_PAUSE();
  // Close the job before the next one changes num_chunks_: a worker that
  // read next_ as (this job, chunk c >= num_chunks) could otherwise compare
  // c with the next job's larger count, claim c with its CAS (next_ still
  // this job's) and run the next job's fn on a chunk that job does not have,
  // counting one done_ too many (run_chunks then waited forever).
  next_.store((uint64_t(job) << 32) | 0xffffffffu, std::memory_order_release);
}

void ThreadPool::run(const std::function<void(int, int)>& fn) {
  int n = num_threads_;
  run_chunks(n, [&](int64_t c) { fn(int(c), n); });
}

void ThreadPool::parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  // A few chunks per thread, so the caller can cover for a late worker.
  int64_t chunks = std::min<int64_t>(int64_t(num_threads_) * 4, (n + grain - 1) / grain);
  if (chunks <= 1) {
    fn(0, n);
    return;
  }
  run_chunks(chunks, [&](int64_t c) {
    int64_t b = n * c / chunks, e = n * (c + 1) / chunks;
    if (b < e) fn(b, e);
  });
}

namespace {
std::mutex g_mu;
std::unique_ptr<ThreadPool> g_pool;
int g_threads = 0;
}  // namespace

ThreadPool& ThreadPool::global() {
  std::lock_guard<std::mutex> lk(g_mu);
  if (!g_pool) {
    int n = g_threads > 0 ? g_threads : int(std::max(1u, std::thread::hardware_concurrency()));
    g_pool = std::make_unique<ThreadPool>(n);
  }
  return *g_pool;
}

void ThreadPool::set_global_threads(int n) {
  std::lock_guard<std::mutex> lk(g_mu);
  g_threads = n;
  g_pool.reset();
}

}  // namespace mimo
