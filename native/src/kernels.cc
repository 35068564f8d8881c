#include "kernels.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>
#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

#include "fastmath.h"
#include "pool.h"

// The standard CBLAS entry point, declared here so any CBLAS (OpenBLAS, MKL's mkl_rt, BLIS, the
// reference libcblas) links without its own header.
extern "C" void cblas_sgemm(int order, int ta, int tb, int m, int n, int k, float alpha, const float* a, int lda,
                            const float* b, int ldb, float beta, float* c, int ldc);

namespace af {
namespace {
constexpr int kRowMajor = 101, kNoTrans = 111, kTrans = 112;
constexpr int64_t kGrain = 1 << 14;  // elements per chunk below which threads cost more than they save

// One product C[m0:m1, n0:n1] of op(A) op(B), all row-major.
void gemm_block(const float* a, const float* b, float* c, int64_t m, int64_t n, int64_t k, bool ta, bool tb,
                int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
  int64_t mm = m1 - m0, nn = n1 - n0;
  if (mm <= 0 || nn <= 0) return;
  const float* ap = ta ? a + m0 : a + m0 * k;  // op(A) rows m0.. : A^T columns when transposed
  const float* bp = tb ? b + n0 * k : b + n0;
  cblas_sgemm(kRowMajor, ta ? kTrans : kNoTrans, tb ? kTrans : kNoTrans, (int)mm, (int)nn, (int)k, 1.0f, ap,
              (int)(ta ? m : k), bp, (int)(tb ? k : n), 0.0f, c + m0 * n + n0, (int)n);
}

// One product with every output element summed over k in order, in one accumulator, vectorised over
// the columns: its value then depends on nothing but its row of A and column of B, never on M, N or
// where the row sits in the batch, and zero terms appended to K (padding) leave it unchanged. Used for
// the small products (attention), whose N and K follow the batch's padded length.
#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
// The same per-element std::fma chain as the portable loop below, with its accumulators held in SIMD
// registers: 6 rows × 2 vectors of columns, A's 6 rows packed so each k step broadcasts from one line.
// A fused multiply-add instruction rounds exactly as std::fma does, so the bits are the portable
// loop's.
#if defined(__AVX512F__)
struct Vec {
  using T = __m512;
  static constexpr int64_t W = 16;
  static T zero() { return _mm512_setzero_ps(); }
  static T load(const float* p) { return _mm512_loadu_ps(p); }
  static T bcast(float x) { return _mm512_set1_ps(x); }
  static T fma(T a, T b, T c) { return _mm512_fmadd_ps(a, b, c); }
  static void store(float* p, T v) { _mm512_storeu_ps(p, v); }
};
#else
struct Vec {
  using T = __m256;
  static constexpr int64_t W = 8;
  static T zero() { return _mm256_setzero_ps(); }
  static T load(const float* p) { return _mm256_loadu_ps(p); }
  static T bcast(float x) { return _mm256_set1_ps(x); }
  static T fma(T a, T b, T c) { return _mm256_fmadd_ps(a, b, c); }
  static void store(float* p, T v) { _mm256_storeu_ps(p, v); }
};
#endif
template <int R, int V>
inline void ordered_block(const float* ap, const float* bk, float* c, int64_t n, int64_t k, int64_t j0) {
  typename Vec::T acc[R][V];
  for (int r = 0; r < R; r++)
    for (int v = 0; v < V; v++) acc[r][v] = Vec::zero();
  for (int64_t q = 0; q < k; q++) {
    typename Vec::T bv[V];
    for (int v = 0; v < V; v++) bv[v] = Vec::load(bk + q * n + j0 + v * Vec::W);
    for (int r = 0; r < R; r++) {
      typename Vec::T av = Vec::bcast(ap[q * R + r]);
      for (int v = 0; v < V; v++) acc[r][v] = Vec::fma(av, bv[v], acc[r][v]);
    }
  }
  for (int r = 0; r < R; r++)
    for (int v = 0; v < V; v++) Vec::store(c + r * n + j0 + v * Vec::W, acc[r][v]);
}
template <int R>
void ordered_rows(const float* ap, const float* bk, float* c, int64_t n, int64_t k) {
  int64_t j0 = 0;
  for (; j0 + 2 * Vec::W <= n; j0 += 2 * Vec::W) ordered_block<R, 2>(ap, bk, c, n, k, j0);
  for (; j0 + Vec::W <= n; j0 += Vec::W) ordered_block<R, 1>(ap, bk, c, n, k, j0);
  for (int r = 0; r < R; r++)
    for (int64_t j = j0; j < n; j++) {
      float acc = 0.0f;
      for (int64_t q = 0; q < k; q++) acc = std::fma(ap[q * R + r], bk[q * n + j], acc);
      c[r * n + j] = acc;
    }
}
#define AF_SIMD_ORDERED 1
#endif

void gemm_ordered(const float* a, const float* b, float* c, int64_t m, int64_t n, int64_t k, bool ta, bool tb,
                  std::vector<float>& scratch) {
  const float* bk = b;
  if (tb) {  // B is [n, k]: lay it out as [k, n] so rows of B are contiguous
    scratch.resize(k * n);
    for (int64_t j = 0; j < n; j++)
      for (int64_t q = 0; q < k; q++) scratch[q * n + j] = b[j * k + q];
    bk = scratch.data();
  }
#ifdef AF_SIMD_ORDERED
  {
    constexpr int64_t R = 6;
    std::vector<float> ap(k * R);
    int64_t i = 0;
    for (; i + R <= m; i += R) {
      for (int64_t q = 0; q < k; q++)
        for (int64_t r = 0; r < R; r++) ap[q * R + r] = ta ? a[q * m + i + r] : a[(i + r) * k + q];
      ordered_rows<R>(ap.data(), bk, c + i * n, n, k);
    }
    for (; i < m; i++) {
      for (int64_t q = 0; q < k; q++) ap[q] = ta ? a[q * m + i] : a[i * k + q];
      ordered_rows<1>(ap.data(), bk, c + i * n, n, k);
    }
    return;
  }
#endif
  // Register blocks of 4 rows × 16 columns, then single rows, then single columns; every path does
  // the same std::fma per element in the same k order, so where a column falls (which depends on N)
  // never changes its bits.
  auto aval = [&](int64_t i, int64_t q) { return ta ? a[q * m + i] : a[i * k + q]; };
  constexpr int64_t R = 4, W = 16;
  int64_t i = 0;
  for (; i + R <= m; i += R) {
    int64_t j0 = 0;
    for (; j0 + W <= n; j0 += W) {
      float acc[R][W] = {};
      for (int64_t q = 0; q < k; q++) {
        const float* bq = bk + q * n + j0;
        for (int64_t r = 0; r < R; r++) {
          float av = aval(i + r, q);
          for (int64_t j = 0; j < W; j++) acc[r][j] = std::fma(av, bq[j], acc[r][j]);
        }
      }
      for (int64_t r = 0; r < R; r++) std::memcpy(c + (i + r) * n + j0, acc[r], sizeof(float) * W);
    }
    for (int64_t r = 0; r < R; r++)
      for (int64_t j = j0; j < n; j++) {
        float acc = 0.0f;
        for (int64_t q = 0; q < k; q++) acc = std::fma(aval(i + r, q), bk[q * n + j], acc);
        c[(i + r) * n + j] = acc;
      }
  }
  for (; i < m; i++) {
    int64_t j0 = 0;
    for (; j0 + W <= n; j0 += W) {
      float acc[W] = {};
      for (int64_t q = 0; q < k; q++) {
        float av = aval(i, q);
        const float* bq = bk + q * n + j0;
        for (int64_t j = 0; j < W; j++) acc[j] = std::fma(av, bq[j], acc[j]);
      }
      std::memcpy(c + i * n + j0, acc, sizeof(float) * W);
    }
    for (int64_t j = j0; j < n; j++) {
      float acc = 0.0f;
      for (int64_t q = 0; q < k; q++) acc = std::fma(aval(i, q), bk[q * n + j], acc);
      c[i * n + j] = acc;
    }
  }
}

// Threads split a large product's rows at multiples of this.
constexpr int64_t kRowTile = 32;
// False when this BLAS's row results depend on the call's M or the row's position (calibrate_matmul);
// then every product takes gemm_ordered: slower, but a row's bits never depend on its batch.
bool g_blas_invariant = false;
}  // namespace

void matmul(const float* a, const float* b, float* c, int64_t batch, int64_t m, int64_t n, int64_t k, bool ta, bool tb,
            int64_t stride_a, int64_t stride_b) {
  if (batch * m * n == 0) return;
  if (k == 0) {
    std::memset(c, 0, sizeof(float) * batch * m * n);
    return;
  }
  // The kernel is chosen from N and K only (a layer's weight shape), never from M (the batch's rows),
  // so a row's result does not depend on how many rows came with it: OpenBLAS's AVX-512 sgemm gives a
  // row the same bits whatever M is (measured; its Haswell kernels do not), gemm_ordered always does.
  int64_t flops = m * n * k;
  if (batch > 1 || n * k < (1 << 13) || !g_blas_invariant) {
    // many small products (attention), or tiny layers: whole products per thread, in-order sums
    int64_t per = std::max<int64_t>(1, (1 << 16) / std::max<int64_t>(1, flops));
    parallel_for(batch, per, [&](int64_t b0, int64_t b1) {
      std::vector<float> scratch;
      for (int64_t i = b0; i < b1; i++)
        gemm_ordered(a + i * stride_a, b + i * stride_b, c + i * m * n, m, n, k, ta, tb, scratch);
    });
    return;
  }
  // one large product: rows split across threads at whole tiles
  int64_t tiles = (m + kRowTile - 1) / kRowTile;
  parallel_for(tiles, 1, [&](int64_t t0, int64_t t1) {
    gemm_block(a, b, c, m, n, k, ta, tb, t0 * kRowTile, std::min(m, t1 * kRowTile), 0, n);
  });
}

bool calibrate_matmul(int force) {
  if (force >= 0) return !(g_blas_invariant = force == 0);
  // Does this BLAS give a row the same bits whatever the M of the call? Compare rows computed in
  // calls of several sizes with the same rows of one big call.
  const int64_t k = 96, n = 160, big = 300;
  std::vector<float> a(big * k), b(k * n), ref(big * n), c(big * n);
  uint32_t s = 12345;
  auto rnd = [&] {
    s ^= s << 13, s ^= s >> 17, s ^= s << 5;
    return (float)(s % 2001) / 1000.0f - 1.0f;
  };
  for (auto& v : a) v = rnd();
  for (auto& v : b) v = rnd();
  gemm_block(a.data(), b.data(), ref.data(), big, n, k, false, false, 0, big, 0, n);
  for (int64_t m : {1, 3, 16, 17, 40, 100, 160}) {
    for (int64_t off : {0, 5}) {
      gemm_block(a.data() + off * k, b.data(), c.data(), m, n, k, false, false, 0, m, 0, n);
      if (std::memcmp(c.data(), ref.data() + off * n, sizeof(float) * m * n) != 0) return !(g_blas_invariant = false);
    }
  }
  return !(g_blas_invariant = true);
}

namespace {
template <class F, class O>
inline void binary_row(F f, const float* a, const float* b, O* o, int64_t n, int64_t sa, int64_t sb) {
  if (sa == 1 && sb == 1) {
    for (int64_t j = 0; j < n; j++) o[j] = f(a[j], b[j]);
  } else if (sa == 1 && sb == 0) {
    float bv = b[0];
    for (int64_t j = 0; j < n; j++) o[j] = f(a[j], bv);
  } else if (sa == 0 && sb == 1) {
    float av = a[0];
    for (int64_t j = 0; j < n; j++) o[j] = f(av, b[j]);
  } else {
    for (int64_t j = 0; j < n; j++) o[j] = f(a[j * sa], b[j * sb]);
  }
}

template <class F, class O>
void binary_impl(F f, const float* a, const float* b, O* out, int rank, const int64_t* shape, const int64_t* sa,
                 const int64_t* sb) {
  // merge adjacent dimensions that are contiguous in a, b and out alike
  int64_t sh[8], xa[8], xb[8];
  int r = 0;
  for (int i = 0; i < rank; i++) {
    if (shape[i] == 1) continue;
    if (r > 0 && xa[r - 1] == sa[i] * shape[i] && xb[r - 1] == sb[i] * shape[i]) {
      sh[r - 1] *= shape[i];
      xa[r - 1] = sa[i];
      xb[r - 1] = sb[i];
    } else {
      sh[r] = shape[i];
      xa[r] = sa[i];
      xb[r] = sb[i];
      r++;
    }
  }
  if (r == 0) {
    out[0] = f(a[0], b[0]);
    return;
  }
  int64_t cols = sh[r - 1];
  int64_t rows = 1;
  for (int i = 0; i < r - 1; i++) rows *= sh[i];
  if (rows == 1) {
    parallel_for(cols, kGrain, [&](int64_t c0, int64_t c1) {
      binary_row(f, a + c0 * xa[0], b + c0 * xb[0], out + c0, c1 - c0, xa[0], xb[0]);
    });
    return;
  }
  int64_t grain = std::max<int64_t>(1, kGrain / cols);
  parallel_for(rows, grain, [&](int64_t r0, int64_t r1) {
    for (int64_t row = r0; row < r1; row++) {
      int64_t rem = row, oa = 0, ob = 0;
      for (int d = r - 2; d >= 0; d--) {
        int64_t q = rem % sh[d];
        rem /= sh[d];
        oa += q * xa[d];
        ob += q * xb[d];
      }
      binary_row(f, a + oa, b + ob, out + row * cols, cols, xa[r - 1], xb[r - 1]);
    }
  });
}
}  // namespace

void binary(int op, const float* a, const float* b, float* out, int rank, const int64_t* shape, const int64_t* sa,
            const int64_t* sb) {
  switch (op) {
    case ADD: return binary_impl([](float x, float y) { return x + y; }, a, b, out, rank, shape, sa, sb);
    case SUB: return binary_impl([](float x, float y) { return x - y; }, a, b, out, rank, shape, sa, sb);
    case MUL: return binary_impl([](float x, float y) { return x * y; }, a, b, out, rank, shape, sa, sb);
    case DIV: return binary_impl([](float x, float y) { return x / y; }, a, b, out, rank, shape, sa, sb);
    // tfjs propagates NaN through maximum/minimum
    case MAXIMUM:
      return binary_impl([](float x, float y) { return (x != x || y != y) ? std::numeric_limits<float>::quiet_NaN() : (x > y ? x : y); }, a, b, out, rank, shape, sa, sb);
    case MINIMUM:
      return binary_impl([](float x, float y) { return (x != x || y != y) ? std::numeric_limits<float>::quiet_NaN() : (x < y ? x : y); }, a, b, out, rank, shape, sa, sb);
    case SQDIFF: return binary_impl([](float x, float y) { float d = x - y; return d * d; }, a, b, out, rank, shape, sa, sb);
    case POW: return binary_impl([](float x, float y) { return std::pow(x, y); }, a, b, out, rank, shape, sa, sb);
  }
}

void compare(int op, const float* a, const float* b, uint8_t* out, int rank, const int64_t* shape, const int64_t* sa,
             const int64_t* sb) {
  switch (op) {
    case EQ: return binary_impl([](float x, float y) -> uint8_t { return x == y; }, a, b, out, rank, shape, sa, sb);
    case NE: return binary_impl([](float x, float y) -> uint8_t { return x != y; }, a, b, out, rank, shape, sa, sb);
    case LT: return binary_impl([](float x, float y) -> uint8_t { return x < y; }, a, b, out, rank, shape, sa, sb);
    case LE: return binary_impl([](float x, float y) -> uint8_t { return x <= y; }, a, b, out, rank, shape, sa, sb);
    case GT: return binary_impl([](float x, float y) -> uint8_t { return x > y; }, a, b, out, rank, shape, sa, sb);
    case GE: return binary_impl([](float x, float y) -> uint8_t { return x >= y; }, a, b, out, rank, shape, sa, sb);
  }
}

void box_copy32(const uint32_t* src, const int64_t* src_shape, const int64_t* src_begin, uint32_t* dst,
                const int64_t* dst_shape, const int64_t* dst_begin, const int64_t* box, int rank) {
  int64_t total = 1;
  for (int i = 0; i < rank; i++) total *= box[i];
  if (total == 0) return;
  int64_t ss[8], ds[8];
  int64_t s = 1, d = 1;
  for (int i = rank - 1; i >= 0; i--) {
    ss[i] = s;
    ds[i] = d;
    s *= src_shape[i];
    d *= dst_shape[i];
  }
  // the last dimension is copied as a run; fold trailing dims that are whole in src, dst and box
  int last = rank - 1;
  int64_t run = box[last];
  while (last > 0 && box[last] == src_shape[last] && box[last] == dst_shape[last]) {
    last--;
    run *= box[last];
  }
  int64_t base_s = 0, base_d = 0;
  for (int i = 0; i < rank; i++) base_s += src_begin[i] * ss[i], base_d += dst_begin[i] * ds[i];
  int64_t rows = total / run;
  int64_t grain = std::max<int64_t>(1, kGrain / run);
  parallel_for(rows, grain, [&](int64_t r0, int64_t r1) {
    for (int64_t row = r0; row < r1; row++) {
      int64_t rem = row, os = base_s, od = base_d;
      for (int k = last - 1; k >= 0; k--) {
        int64_t q = rem % box[k];
        rem /= box[k];
        os += q * ss[k];
        od += q * ds[k];
      }
      std::memcpy(dst + od, src + os, sizeof(uint32_t) * run);
    }
  });
}

namespace {
template <class F>
void unary_impl(F f, const float* x, float* out, int64_t n) {
  parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; i++) out[i] = f(x[i]);
  });
}
}  // namespace

void unary(int op, const float* x, float* out, int64_t n) {
  switch (op) {
    case EXP: return unary_impl([](float v) { return fast_exp(v); }, x, out, n);
    case LOG: return unary_impl([](float v) { return std::log(v); }, x, out, n);
    case NEG: return unary_impl([](float v) { return -v; }, x, out, n);
    case TANH: return unary_impl([](float v) { return fast_tanh(v); }, x, out, n);
    case SQRT: return unary_impl([](float v) { return std::sqrt(v); }, x, out, n);
    case RSQRT: return unary_impl([](float v) { return 1.0f / std::sqrt(v); }, x, out, n);
    case SQUARE: return unary_impl([](float v) { return v * v; }, x, out, n);
    case RELU: return unary_impl([](float v) { return v < 0 ? 0.0f : v; }, x, out, n);
    case SIGMOID: return unary_impl([](float v) { return 1.0f / (1.0f + fast_exp(-v)); }, x, out, n);
    case ERF: return unary_impl([](float v) { return std::erf(v); }, x, out, n);
    case ABS: return unary_impl([](float v) { return std::fabs(v); }, x, out, n);
    case SOFTPLUS:
      // the thresholds of tfjs's cpu Softplus: identity above log(eps)+2 above, exp below
      return unary_impl(
          [](float v) {
            const float th = std::log(1.1920928955078125e-7f) + 2.0f;
            if (v > -th) return v;
            if (v < th) return std::exp(v);
            return std::log(std::exp(v) + 1.0f);
          },
          x, out, n);
    case RECIPROCAL: return unary_impl([](float v) { return 1.0f / v; }, x, out, n);
    case LOG1P: return unary_impl([](float v) { return std::log1p(v); }, x, out, n);
  }
}

void softmax_rows(const float* x, float* out, int64_t rows, int64_t cols, bool log) {
  int64_t grain = std::max<int64_t>(1, kGrain / std::max<int64_t>(1, cols));
  parallel_for(rows, grain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      const float* xr = x + r * cols;
      float* o = out + r * cols;
      float mx = -std::numeric_limits<float>::infinity();
      bool nan = false;
      for (int64_t j = 0; j < cols; j++) {
        if (xr[j] != xr[j]) nan = true;
        mx = xr[j] > mx ? xr[j] : mx;
      }
      if (nan) mx = std::numeric_limits<float>::quiet_NaN();
      float s = 0;
      for (int64_t j = 0; j < cols; j++) {
        float e = fast_exp(xr[j] - mx);
        o[j] = e;
        s += e;
      }
      if (log) {
        float ls = std::log(s);
        for (int64_t j = 0; j < cols; j++) o[j] = (xr[j] - mx) - ls;
      } else {
        float inv = 1.0f / s;
        for (int64_t j = 0; j < cols; j++) o[j] *= inv;
      }
    }
  });
}

void reduce_rows(int op, const float* x, float* out, int64_t rows, int64_t cols) {
  int64_t grain = std::max<int64_t>(1, kGrain / std::max<int64_t>(1, cols));
  parallel_for(rows, grain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      const float* xr = x + r * cols;
      float acc;
      switch (op) {
        case R_MAX:
          acc = cols ? xr[0] : -std::numeric_limits<float>::infinity();
          for (int64_t j = 1; j < cols; j++) {
            float v = xr[j];
            if (v > acc || v != v) acc = v;
            if (acc != acc) break;
          }
          break;
        case R_MIN:
          acc = cols ? xr[0] : std::numeric_limits<float>::infinity();
          for (int64_t j = 1; j < cols; j++) {
            float v = xr[j];
            if (v < acc || v != v) acc = v;
            if (acc != acc) break;
          }
          break;
        case R_PROD:
          acc = 1;
          for (int64_t j = 0; j < cols; j++) acc *= xr[j];
          break;
        default:  // sum, mean: sequential order, like tfjs cpu, so sums agree closely
          acc = 0;
          for (int64_t j = 0; j < cols; j++) acc += xr[j];
          if (op == R_MEAN) acc /= (float)cols;
      }
      out[r] = acc;
    }
  });
}

void reduce_cols(int op, const float* x, float* out, int64_t rows, int64_t cols) {
  // every column summed in row order by one thread; the columns are split across threads
  int64_t grain = std::max<int64_t>(16, kGrain / std::max<int64_t>(1, rows));
  parallel_for(cols, grain, [&](int64_t c0, int64_t c1) {
    float* o = out + c0;
    int64_t w = c1 - c0;
    std::memcpy(o, x + c0, sizeof(float) * w);
    for (int64_t r = 1; r < rows; r++) {
      const float* xr = x + r * cols + c0;
      for (int64_t j = 0; j < w; j++) o[j] += xr[j];
    }
    if (op == R_MEAN)
      for (int64_t j = 0; j < w; j++) o[j] /= (float)rows;
  });
}

namespace {
template <class T>
void transpose_impl(const T* x, T* out, int rank, const int64_t* shape, const int32_t* perm) {
  // collapse input dims that stay adjacent and in order in the output
  int64_t sh[8];
  int32_t pm[8];
  int r = 0;
  {
    // map: output dim i reads input dim perm[i]; merge perm[i+1] == perm[i] + 1
    int64_t groups_shape[8];
    int ng = 0;
    int first_in[8];
    for (int i = 0; i < rank; i++) {
      if (i > 0 && perm[i] == perm[i - 1] + 1) {
        groups_shape[ng - 1] *= shape[perm[i]];
      } else {
        first_in[ng] = perm[i];
        groups_shape[ng] = shape[perm[i]];
        ng++;
      }
    }
    // input order of the groups: sorted by their first input dim
    int order[8];
    for (int g = 0; g < ng; g++) order[g] = g;
    for (int i = 1; i < ng; i++)  // insertion sort: at most 8 groups
      for (int j = i; j > 0 && first_in[order[j - 1]] > first_in[order[j]]; j--) std::swap(order[j - 1], order[j]);
    int in_pos[8];
    for (int i = 0; i < ng; i++) in_pos[order[i]] = i;
    for (int i = 0; i < ng; i++) sh[i] = groups_shape[order[i]];  // collapsed input shape
    for (int g = 0; g < ng; g++) pm[g] = in_pos[g];                  // output dim g reads input dim
    r = ng;
  }
  int64_t in_stride[8];
  int64_t s = 1;
  for (int i = r - 1; i >= 0; i--) {
    in_stride[i] = s;
    s *= sh[i];
  }
  int64_t total = s;
  if (total == 0) return;
  if (r == 1) {
    std::memcpy(out, x, sizeof(T) * total);
    return;
  }
  int64_t osh[8], ost[8];
  for (int i = 0; i < r; i++) {
    osh[i] = sh[pm[i]];
    ost[i] = in_stride[pm[i]];
  }
  int64_t cols = osh[r - 1];
  int64_t cstride = ost[r - 1];
  int64_t rows = total / cols;
  int64_t grain = std::max<int64_t>(1, kGrain / cols);
  parallel_for(rows, grain, [&](int64_t r0, int64_t r1) {
    for (int64_t row = r0; row < r1; row++) {
      int64_t rem = row, off = 0;
      for (int d = r - 2; d >= 0; d--) {
        int64_t q = rem % osh[d];
        rem /= osh[d];
        off += q * ost[d];
      }
      const T* src = x + off;
      T* dst = out + row * cols;
      for (int64_t j = 0; j < cols; j++) dst[j] = src[j * cstride];
    }
  });
}
}  // namespace

void transpose32(const uint32_t* x, uint32_t* out, int rank, const int64_t* shape, const int32_t* perm) {
  transpose_impl(x, out, rank, shape, perm);
}

void gather32(const uint32_t* x, const int32_t* idx, uint32_t* out, int64_t outer, int64_t dim, int64_t inner,
              int64_t nidx) {
  int64_t rows = outer * nidx;
  int64_t grain = std::max<int64_t>(1, kGrain / std::max<int64_t>(1, inner));
  parallel_for(rows, grain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      int64_t o = r / nidx, i = r % nidx;
      int64_t j = idx[i];
      uint32_t* dst = out + r * inner;
      if (j < 0 || j >= dim)
        std::memset(dst, 0, sizeof(uint32_t) * inner);
      else
        std::memcpy(dst, x + (o * dim + j) * inner, sizeof(uint32_t) * inner);
    }
  });
}

void segment_sum(const float* x, const int32_t* seg, float* out, int64_t rows, int64_t inner, int64_t nseg) {
  std::memset(out, 0, sizeof(float) * nseg * inner);
  // split the columns, never the rows: every output element is summed in row order by one thread
  int64_t grain = std::max<int64_t>(16, kGrain / std::max<int64_t>(1, rows));
  parallel_for(inner, grain, [&](int64_t c0, int64_t c1) {
    for (int64_t r = 0; r < rows; r++) {
      int64_t s = seg[r];
      if (s < 0 || s >= nseg) continue;
      const float* src = x + r * inner;
      float* dst = out + s * inner;
      for (int64_t j = c0; j < c1; j++) dst[j] += src[j];
    }
  });
}

}  // namespace af
