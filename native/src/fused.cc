// Fused kernels: one pass over memory where tfjs's autograd would run a chain of element-wise ops
// (GELU and its gradient, layer norm forward and backward, the AdamW update). Every loop splits work
// by rows or elements only, and sums across rows (the layer-norm weight gradients) run over columns,
// each column in row order, so a result never depends on the thread count.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "fastmath.h"
#include "kernels.h"
#include "pool.h"

namespace af {
namespace {
constexpr int64_t kGrain = 1 << 14;
constexpr float kGeluC = 0.7978845608028654f;  // √(2/π)
constexpr float kGeluA = 0.044715f;
}  // namespace

void gelu_new(const float* x, float* out, int64_t n) {
  parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; i++) {
      float v = x[i];
      out[i] = 0.5f * v * (1.0f + fast_tanh(kGeluC * (v + kGeluA * v * v * v)));
    }
  });
}

void gelu_new_grad(const float* x, const float* dy, float* dx, int64_t n) {
  parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; i++) {
      float v = x[i];
      float t = fast_tanh(kGeluC * (v + kGeluA * v * v * v));
      // d/dx ½x(1+tanh u) = ½(1+t) + ½x(1−t²)·u',  u' = √(2/π)(1 + 3·0.044715 x²)
      float d = 0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * kGeluC * (1.0f + 3.0f * kGeluA * v * v);
      dx[i] = dy[i] * d;
    }
  });
}

void layer_norm(const float* x, const float* g, const float* b, float* out, float* mean, float* rstd, int64_t rows,
                int64_t cols, float eps) {
  int64_t grain = std::max<int64_t>(1, kGrain / std::max<int64_t>(cols, 1));
  parallel_for(rows, grain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      const float* xr = x + r * cols;
      double s = 0;
      for (int64_t j = 0; j < cols; j++) s += xr[j];
      float mu = (float)(s / (double)cols);
      double q = 0;
      for (int64_t j = 0; j < cols; j++) {
        double d = (double)(xr[j] - mu);
        q += d * d;
      }
      // biased variance, ε inside the root (torch.nn.LayerNorm)
      float rs = (float)(1.0 / std::sqrt(q / (double)cols + (double)eps));
      mean[r] = mu;
      rstd[r] = rs;
      float* o = out + r * cols;
      for (int64_t j = 0; j < cols; j++) o[j] = (xr[j] - mu) * rs * g[j] + b[j];
    }
  });
}

void layer_norm_grad(const float* x, const float* g, const float* mean, const float* rstd, const float* dy, float* dx,
                     float* dg, float* db, int64_t rows, int64_t cols) {
  // dx = rstd·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂)) with dx̂ = dy·g, row by row
  int64_t grain = std::max<int64_t>(1, kGrain / std::max<int64_t>(cols, 1));
  parallel_for(rows, grain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      const float* xr = x + r * cols;
      const float* dr = dy + r * cols;
      float mu = mean[r], rs = rstd[r];
      double s1 = 0, s2 = 0;
      for (int64_t j = 0; j < cols; j++) {
        float dh = dr[j] * g[j];
        s1 += dh;
        s2 += (double)dh * (double)((xr[j] - mu) * rs);
      }
      float a = (float)(s1 / (double)cols), c = (float)(s2 / (double)cols);
      float* o = dx + r * cols;
      for (int64_t j = 0; j < cols; j++) o[j] = rs * (dr[j] * g[j] - a - (xr[j] - mu) * rs * c);
    }
  });
  // dg = Σ_rows dy·x̂, db = Σ_rows dy: split by columns, each summed over the rows in order
  int64_t cgrain = std::max<int64_t>(1, kGrain / std::max<int64_t>(rows, 1));
  parallel_for(cols, cgrain, [&](int64_t c0, int64_t c1) {
    int64_t w = c1 - c0;
    std::vector<double> sg(w, 0.0), sb(w, 0.0);
    for (int64_t r = 0; r < rows; r++) {
      const float* xr = x + r * cols;
      const float* dr = dy + r * cols;
      float mu = mean[r], rs = rstd[r];
      for (int64_t j = 0; j < w; j++) {
        float d = dr[c0 + j];
        sg[j] += (double)(d * ((xr[c0 + j] - mu) * rs));
        sb[j] += d;
      }
    }
    for (int64_t j = 0; j < w; j++) {
      dg[c0 + j] = (float)sg[j];
      db[c0 + j] = (float)sb[j];
    }
  });
}

void token_logp(const float* x, const int32_t* ids, float* out, float* stats, int64_t batch, int64_t t, int64_t v) {
  int64_t rows = batch * (t - 1);
  int64_t grain = std::max<int64_t>(1, kGrain / std::max<int64_t>(1, v));
  parallel_for(rows, grain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      int64_t b = r / (t - 1), q = r % (t - 1);
      const float* xr = x + (b * t + q) * v;
      int32_t target = ids[b * t + q + 1];
      // as softmax_rows(log) computes a row, then its target element
      float mx = -std::numeric_limits<float>::infinity();
      bool nan = false;
      for (int64_t j = 0; j < v; j++) {
        if (xr[j] != xr[j]) nan = true;
        mx = xr[j] > mx ? xr[j] : mx;
      }
      if (nan) mx = std::numeric_limits<float>::quiet_NaN();
      float sum = 0;
      for (int64_t j = 0; j < v; j++) sum += fast_exp(xr[j] - mx);
      float ls = std::log(sum);
      stats[2 * r] = mx;
      stats[2 * r + 1] = ls;
      out[r] = target >= 0 && target < v ? (xr[target] - mx) - ls : std::numeric_limits<float>::quiet_NaN();
    }
  });
}

void token_logp_grad(const float* x, const int32_t* ids, const float* stats, const float* dy, float* dx, int64_t batch,
                     int64_t t, int64_t v) {
  int64_t rows = batch * t;
  int64_t grain = std::max<int64_t>(1, kGrain / std::max<int64_t>(1, v));
  parallel_for(rows, grain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      int64_t b = r / t, q = r % t;
      float* o = dx + r * v;
      if (q == t - 1) {  // the last position predicts nothing
        std::fill(o, o + v, 0.0f);
        continue;
      }
      int64_t k = b * (t - 1) + q;
      const float* xr = x + r * v;
      float mx = stats[2 * k], ls = stats[2 * k + 1], d = dy[k];
      int32_t target = ids[b * t + q + 1];
      // d/dx_j of (x_target − logsumexp x) = [j = target] − softmax_j
      for (int64_t j = 0; j < v; j++) o[j] = -d * fast_exp((xr[j] - mx) - ls);
      if (target >= 0 && target < v) o[target] += d;
    }
  });
}

void adamw(const float* p, const float* g, const float* m, const float* v, float* p1, float* m1, float* v1, int64_t n,
           const AdamWScalars& s) {
  // The same float32 operations, in the same order, as src/ml/train/optimizer.ts's tensor chain, so
  // the result is bit-identical to it on this backend (built with -ffp-contract=off: no fused
  // multiply-adds that the chain does not have).
  parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; i++) {
      float gi = g[i];
      float pd = s.decay ? p[i] * s.decay_factor : p[i];
      float mi = m[i] * s.beta1 + gi * s.one_minus_beta1;
      float vi = v[i] * s.beta2 + (gi * gi) * s.one_minus_beta2;
      float denom = std::sqrt(vi) / s.bc2_sqrt + s.eps;
      m1[i] = mi;
      v1[i] = vi;
      p1[i] = pd - s.step_size * (mi / denom);
    }
  });
}

void scaled_masked_softmax(const float* x, const float* bias, float* out, int64_t batch, int64_t heads, int64_t t,
                           int64_t s, bool bias_per_batch, float scale) {
  int64_t rows = batch * heads * t;
  int64_t grain = std::max<int64_t>(1, kGrain / std::max<int64_t>(1, s));
  parallel_for(rows, grain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      int64_t b = r / (heads * t), q = r % t;
      const float* xr = x + r * s;
      const float* br = bias + ((bias_per_batch ? b : 0) * t + q) * s;
      float* o = out + r * s;
      // z = x·scale + bias, rounded as the chain's Multiply then Add are
      float mx = -std::numeric_limits<float>::infinity();
      bool nan = false;
      for (int64_t j = 0; j < s; j++) {
        float z = xr[j] * scale;
        z = z + br[j];
        o[j] = z;
        if (z != z) nan = true;
        mx = z > mx ? z : mx;
      }
      if (nan) mx = std::numeric_limits<float>::quiet_NaN();
      float sum = 0;
      for (int64_t j = 0; j < s; j++) {
        float e = fast_exp(o[j] - mx);
        o[j] = e;
        sum += e;
      }
      float inv = 1.0f / sum;
      for (int64_t j = 0; j < s; j++) o[j] *= inv;
    }
  });
}

void softmax_grad(const float* y, const float* dy, float* dx, int64_t rows, int64_t cols, float scale) {
  int64_t grain = std::max<int64_t>(1, kGrain / std::max<int64_t>(1, cols));
  parallel_for(rows, grain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      const float* yr = y + r * cols;
      const float* dr = dy + r * cols;
      float dot = 0;
      for (int64_t j = 0; j < cols; j++) dot += dr[j] * yr[j];
      float* o = dx + r * cols;
      for (int64_t j = 0; j < cols; j++) o[j] = scale * (yr[j] * (dr[j] - dot));
    }
  });
}

}  // namespace af
