#include "pool.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace af {
namespace {

struct Pool {
  std::vector<std::thread> workers;
  std::mutex mu;
  std::condition_variable start_cv, done_cv;
  const std::function<void(int64_t, int64_t)>* job = nullptr;
  int64_t n = 0;
  int chunks = 0;
  uint64_t generation = 0;
  int pending = 0;
  bool stop = false;

  void chunk(int i, int64_t* b, int64_t* e) const {
    int64_t per = n / chunks, rem = n % chunks;
    *b = i * per + std::min<int64_t>(i, rem);
    *e = *b + per + (i < rem ? 1 : 0);
  }

  void worker(int idx) {
    uint64_t seen = 0;
    for (;;) {
      std::unique_lock<std::mutex> lk(mu);
      start_cv.wait(lk, [&] { return stop || generation != seen; });
      if (stop) return;
      seen = generation;
      int my = idx + 1;  // chunk 0 belongs to the caller
      if (my >= chunks) continue;
      int64_t b, e;
      chunk(my, &b, &e);
      const auto* fn = job;
      lk.unlock();
      if (e > b) (*fn)(b, e);
      lk.lock();
      if (--pending == 0) done_cv.notify_one();
    }
  }

  void resize(int t) {
    shutdown();
    stop = false;
    for (int i = 0; i < t - 1; i++) workers.emplace_back([this, i] { worker(i); });
  }

  void shutdown() {
    {
      std::lock_guard<std::mutex> lk(mu);
      stop = true;
    }
    start_cv.notify_all();
    for (auto& w : workers) w.join();
    workers.clear();
  }

  ~Pool() { shutdown(); }
};

Pool& pool() {
  static Pool p;
  return p;
}
int g_threads = 1;
std::mutex g_run;  // one parallel region at a time (the JS thread is the only caller)

}  // namespace

void set_threads(int n) {
  n = std::max(1, std::min(n, 256));
  std::lock_guard<std::mutex> lk(g_run);
  if (n == g_threads && (int)pool().workers.size() == n - 1) return;
  g_threads = n;
  pool().resize(n);
}

int threads() { return g_threads; }

void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  int t = g_threads;
  if (grain < 1) grain = 1;
  int64_t want = n / grain;
  int chunks = (int)std::min<int64_t>(t, std::max<int64_t>(1, want));
  if (chunks <= 1) {
    fn(0, n);
    return;
  }
  std::lock_guard<std::mutex> run(g_run);
  Pool& p = pool();
  {
    std::lock_guard<std::mutex> lk(p.mu);
    p.job = &fn;
    p.n = n;
    p.chunks = chunks;
    p.pending = chunks - 1;
    p.generation++;
  }
  p.start_cv.notify_all();
  int64_t b, e;
  p.chunk(0, &b, &e);
  fn(b, e);
  std::unique_lock<std::mutex> lk(p.mu);
  p.done_cv.wait(lk, [&] { return p.pending == 0; });
}

}  // namespace af
