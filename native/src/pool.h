// A fixed-size thread pool. Work is split into as many contiguous chunks as there are threads, by a
// rule that depends only on the range and the thread count, and no result ever combines partial sums
// from two chunks, so a fixed thread count gives bit-identical output run to run.
#pragma once
#include <cstdint>
#include <functional>

namespace af {
void set_threads(int n);
int threads();
// Calls fn(begin, end) over [0, n) in at most threads() chunks; runs inline when n < grain * 2.
void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);
}  // namespace af
