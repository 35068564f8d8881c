// Float32 kernels on plain buffers. Shapes arrive already reduced to what each loop needs; the
// TypeScript side (src/ml/backends/native.ts) decides broadcasts and axis layouts.
#pragma once
#include <cstdint>

namespace af {

void matmul(const float* a, const float* b, float* c, int64_t batch, int64_t m, int64_t n, int64_t k, bool ta, bool tb,
            int64_t stride_a, int64_t stride_b);

// Whether large products may use BLAS: only when it computes a row the same way whatever the number of
// rows in the call and the row's place in it (checked here, once); else every product takes the
// in-order kernel. force: 0 BLAS, 1 in-order, -1 check. Returns true when in-order.
bool calibrate_matmul(int force);

enum BinaryOp { ADD = 0, SUB, MUL, DIV, MAXIMUM, MINIMUM, SQDIFF, POW };
// out[i] = op(a[ia], b[ib]) with ia, ib from per-dimension strides (0 = broadcast) over out's shape.
void binary(int op, const float* a, const float* b, float* out, int rank, const int64_t* shape, const int64_t* sa,
            const int64_t* sb);

enum UnaryOp { EXP = 0, LOG, NEG, TANH, SQRT, RSQRT, SQUARE, RELU, SIGMOID, ERF, ABS, SOFTPLUS, RECIPROCAL, LOG1P };
void unary(int op, const float* x, float* out, int64_t n);

// Row-wise over [rows, cols].
void softmax_rows(const float* x, float* out, int64_t rows, int64_t cols, bool log);
enum ReduceOp { R_SUM = 0, R_MAX, R_MIN, R_MEAN, R_PROD };
void reduce_rows(int op, const float* x, float* out, int64_t rows, int64_t cols);
// Over the leading axis of [rows, cols] (sum and mean only): out[c] = Σ_r x[r, c].
void reduce_cols(int op, const float* x, float* out, int64_t rows, int64_t cols);

// Generic transpose of a contiguous tensor of rank <= 8.
// 32-bit elements (float or int) are moved as bits.
void transpose32(const uint32_t* x, uint32_t* out, int rank, const int64_t* shape, const int32_t* perm);

// x viewed as [outer, dim, inner]; out [outer, nidx, inner]. Out-of-range indices give zeros.
void gather32(const uint32_t* x, const int32_t* idx, uint32_t* out, int64_t outer, int64_t dim, int64_t inner,
              int64_t nidx);
// out [nseg, inner] = 0; out[seg[r]] += x[r] for r in [0, rows).
void segment_sum(const float* x, const int32_t* seg, float* out, int64_t rows, int64_t inner, int64_t nseg);

// Copies the box of extent `box` at `src_begin` in src (shape src_shape) to `dst_begin` in dst (shape
// dst_shape), both contiguous, 4-byte elements: Slice is src_begin = begin, PadV2 is dst_begin = pad.
void box_copy32(const uint32_t* src, const int64_t* src_shape, const int64_t* src_begin, uint32_t* dst,
                const int64_t* dst_shape, const int64_t* dst_begin, const int64_t* box, int rank);

enum CompareOp { EQ = 0, NE, LT, LE, GT, GE };
// out (bool bytes) = cmp(a, b), broadcast as in binary().
void compare(int op, const float* a, const float* b, uint8_t* out, int rank, const int64_t* shape, const int64_t* sa,
             const int64_t* sb);

}  // namespace af

namespace af {
// Fused kernels (fused.cc).
// gelu_new (tanh approximation) and its gradient dx = dy · gelu'(x).
void gelu_new(const float* x, float* out, int64_t n);
void gelu_new_grad(const float* x, const float* dy, float* dx, int64_t n);
// Layer norm over the last axis of [rows, cols] with gain g and bias b; also writes each row's mean
// and 1/√(var + eps) for the backward pass.
void layer_norm(const float* x, const float* g, const float* b, float* out, float* mean, float* rstd, int64_t rows,
                int64_t cols, float eps);
void layer_norm_grad(const float* x, const float* g, const float* mean, const float* rstd, const float* dy, float* dx,
                     float* dg, float* db, int64_t rows, int64_t cols);
// One AdamW update of one parameter into fresh buffers (p1, m1, v1); the scalars are float32 as the
// tensor chain's tf.scalar()s are.
struct AdamWScalars {
  bool decay;
  float decay_factor, beta1, one_minus_beta1, beta2, one_minus_beta2, bc2_sqrt, eps, step_size;
};
// Attention probabilities softmax(x·scale + bias) over the last axis of x [batch, heads, t, s], with
// the mask bias [batch or 1, 1, t, s]; and the softmax gradient dx = scale · y·(dy − Σ dy·y) per row.
void scaled_masked_softmax(const float* x, const float* bias, float* out, int64_t batch, int64_t heads, int64_t t,
                           int64_t s, bool bias_per_batch, float scale);
void softmax_grad(const float* y, const float* dy, float* dx, int64_t rows, int64_t cols, float scale);
// Log-probability of each next token: out[b, q] = log softmax(x[b, q, :])[ids[b, q + 1]] for q < t − 1,
// x [batch, t, v]; stats gets each row's max and log Σ exp for the gradient. An index outside [0, v)
// gives NaN. The gradient dx [batch, t, v] (zero at q = t − 1) of Σ dy·out.
void token_logp(const float* x, const int32_t* ids, float* out, float* stats, int64_t batch, int64_t t, int64_t v);
void token_logp_grad(const float* x, const int32_t* ids, const float* stats, const float* dy, float* dx, int64_t batch,
                     int64_t t, int64_t v);
void adamw(const float* p, const float* g, const float* m, const float* v, float* p1, float* m1, float* v1, int64_t n,
           const AdamWScalars& s);
}  // namespace af
