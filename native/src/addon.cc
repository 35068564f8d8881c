// Node-API bindings: each function takes TypedArrays and sizes, checks that every buffer is as long as
// the sizes say (a wrong size from JS must throw, never read or write past a buffer), and runs one
// kernel synchronously on the calling thread plus the pool.
#include <node_api.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "kernels.h"
#include "pool.h"

extern "C" void openblas_set_num_threads(int) __attribute__((weak));
extern "C" char* openblas_get_config(void) __attribute__((weak));
extern "C" char* openblas_get_corename(void) __attribute__((weak));

namespace {

bool g_tiled = true;

struct Err {
  std::string msg;
};

struct Args {
  napi_env env;
  size_t argc = 12;
  napi_value argv[12];
  Args(napi_env e, napi_callback_info info) : env(e) {
    napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  }
  napi_value at(size_t i) {
    if (i >= argc) throw Err{"missing argument " + std::to_string(i)};
    return argv[i];
  }
  int64_t i64(size_t i) {
    int64_t v;
    if (napi_get_value_int64(env, at(i), &v) != napi_ok) throw Err{"argument " + std::to_string(i) + " must be a number"};
    return v;
  }
  bool flag(size_t i) {
    bool v;
    if (napi_get_value_bool(env, at(i), &v) != napi_ok) throw Err{"argument " + std::to_string(i) + " must be a boolean"};
    return v;
  }
  // A TypedArray of 4-byte elements with at least `need` elements.
  void* buf32(size_t i, int64_t need, napi_typedarray_type want1, napi_typedarray_type want2 = napi_float32_array) {
    bool is = false;
    napi_is_typedarray(env, at(i), &is);
    if (!is) throw Err{"argument " + std::to_string(i) + " must be a TypedArray"};
    napi_typedarray_type t;
    size_t len;
    void* data;
    napi_value ab;
    size_t off;
    napi_get_typedarray_info(env, argv[i], &t, &len, &data, &ab, &off);
    if (t != want1 && t != want2) throw Err{"argument " + std::to_string(i) + " has the wrong element type"};
    if (need < 0 || (int64_t)len < need)
      throw Err{"argument " + std::to_string(i) + " holds " + std::to_string(len) + " elements, needs " + std::to_string(need)};
    return data;
  }
  float* f32(size_t i, int64_t need) { return static_cast<float*>(buf32(i, need, napi_float32_array)); }
  int32_t* i32(size_t i, int64_t need) { return static_cast<int32_t*>(buf32(i, need, napi_int32_array)); }
  uint32_t* any32(size_t i, int64_t need) {
    return static_cast<uint32_t*>(buf32(i, need, napi_float32_array, napi_int32_array));
  }
  double f64(size_t i) {
    double v;
    if (napi_get_value_double(env, at(i), &v) != napi_ok) throw Err{"argument " + std::to_string(i) + " must be a number"};
    return v;
  }
  // a JS array of numbers, each read with N-API's getter for T
  template <class T, napi_status (*get)(napi_env, napi_value, T*)>
  std::vector<T> numbers(size_t i) {
    uint32_t n;
    if (napi_get_array_length(env, at(i), &n) != napi_ok) throw Err{"argument " + std::to_string(i) + " must be an array"};
    std::vector<T> out(n);
    for (uint32_t j = 0; j < n; j++) {
      napi_value v;
      napi_get_element(env, argv[i], j, &v);
      if (get(env, v, &out[j]) != napi_ok) throw Err{"argument " + std::to_string(i) + " must hold numbers"};
    }
    return out;
  }
  std::vector<double> doubles(size_t i) { return numbers<double, napi_get_value_double>(i); }
  std::vector<int64_t> list(size_t i) { return numbers<int64_t, napi_get_value_int64>(i); }
};

template <class F>
napi_value guarded(napi_env env, F f) {
  try {
    return f();
  } catch (const Err& e) {
    napi_throw_error(env, "EALIGNFLOWNATIVE", e.msg.c_str());
  }
  return nullptr;
}

napi_value undef(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

int64_t prod(const std::vector<int64_t>& s) {
  int64_t p = 1;
  for (auto v : s) {
    if (v < 0) throw Err{"negative dimension"};
    p *= v;
  }
  return p;
}

// The (a, b, out, shape, stridesA, stridesB) arguments at 1..6 of binary() and compare(): checks that
// every strided read stays inside a and b.
struct Broadcast {
  std::vector<int64_t> shape, sa, sb;
  int64_t n;
  const float *pa, *pb;
  explicit Broadcast(Args& a) : shape(a.list(4)), sa(a.list(5)), sb(a.list(6)) {
    if (shape.size() > 8 || sa.size() != shape.size() || sb.size() != shape.size()) throw Err{"bad rank"};
    n = prod(shape);
    int64_t needA = n ? 1 : 0, needB = n ? 1 : 0;
    for (size_t i = 0; i < shape.size(); i++) {
      if (sa[i] < 0 || sb[i] < 0) throw Err{"negative stride"};
      if (n) needA += (shape[i] - 1) * sa[i], needB += (shape[i] - 1) * sb[i];
    }
    pa = a.f32(1, needA);
    pb = a.f32(2, needB);
  }
};

napi_value SetThreads(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    Args a(env, info);
    af::set_threads((int)a.i64(0));
    if (openblas_set_num_threads) openblas_set_num_threads(1);  // we split products ourselves
    g_tiled = af::calibrate_matmul(a.argc > 1 ? (int)a.i64(1) : -1);
    return undef(env);
  });
}

napi_value Info(napi_env env, napi_callback_info) {
  napi_value o, v;
  napi_create_object(env, &o);
  napi_create_int32(env, af::threads(), &v);
  napi_set_named_property(env, o, "threads", v);
  std::string blas = "CBLAS";
  if (openblas_get_config) {
    // "OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH ...": keep the version; the kernel set is chosen at load
    std::string cfg = openblas_get_config();
    size_t sp = cfg.find(' ', cfg.find(' ') + 1);
    blas = cfg.substr(0, sp);
    if (openblas_get_corename) blas += std::string(" (") + openblas_get_corename() + " kernels)";
  }
  napi_create_string_utf8(env, blas.c_str(), blas.size(), &v);
  napi_set_named_property(env, o, "blas", v);
  napi_create_int32(env, (int)std::thread::hardware_concurrency(), &v);
  napi_set_named_property(env, o, "hardwareThreads", v);
  const char* mode = g_tiled ? "in-order (BLAS rows are not batch-invariant here)" : "BLAS";
  napi_create_string_utf8(env, mode, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, o, "matmul", v);
  return o;
}

// matmul(a, b, out, batch, m, n, k, ta, tb, strideA, strideB)
napi_value MatMul(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    Args a(env, info);
    int64_t batch = a.i64(3), m = a.i64(4), n = a.i64(5), k = a.i64(6);
    bool ta = a.flag(7), tb = a.flag(8);
    int64_t sa = a.i64(9), sb = a.i64(10);
    if (batch < 0 || m < 0 || n < 0 || k < 0 || sa < 0 || sb < 0) throw Err{"negative size"};
    if (m > INT32_MAX || n > INT32_MAX || k > INT32_MAX) throw Err{"matrix too large for CBLAS int sizes"};
    int64_t needA = batch == 0 ? 0 : (batch - 1) * sa + m * k, needB = batch == 0 ? 0 : (batch - 1) * sb + k * n;
    const float* pa = a.f32(0, needA);
    const float* pb = a.f32(1, needB);
    float* pc = a.f32(2, batch * m * n);
    af::matmul(pa, pb, pc, batch, m, n, k, ta, tb, sa, sb);
    return undef(env);
  });
}

// binary(op, a, b, out, shape, stridesA, stridesB)
napi_value Binary(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    Args a(env, info);
    int op = (int)a.i64(0);
    Broadcast br(a);
    float* po = a.f32(3, br.n);
    if (op < af::ADD || op > af::POW) throw Err{"unknown binary op"};
    if (br.n) af::binary(op, br.pa, br.pb, po, (int)br.shape.size(), br.shape.data(), br.sa.data(), br.sb.data());
    return undef(env);
  });
}

// unary(op, x, out, n)
napi_value Unary(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    Args a(env, info);
    int op = (int)a.i64(0);
    int64_t n = a.i64(3);
    const float* x = a.f32(1, n);
    float* o = a.f32(2, n);
    if (op < af::EXP || op > af::LOG1P) throw Err{"unknown unary op"};
    af::unary(op, x, o, n);
    return undef(env);
  });
}

// softmax(x, out, rows, cols, log)
napi_value Softmax(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    Args a(env, info);
    int64_t rows = a.i64(2), cols = a.i64(3);
    const float* x = a.f32(0, rows * cols);
    float* o = a.f32(1, rows * cols);
    af::softmax_rows(x, o, rows, cols, a.flag(4));
    return undef(env);
  });
}

// reduce(op, x, out, rows, cols)
napi_value Reduce(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    Args a(env, info);
    int op = (int)a.i64(0);
    int64_t rows = a.i64(3), cols = a.i64(4);
    const float* x = a.f32(1, rows * cols);
    float* o = a.f32(2, rows);
    if (op < af::R_SUM || op > af::R_PROD) throw Err{"unknown reduce op"};
    af::reduce_rows(op, x, o, rows, cols);
    return undef(env);
  });
}

// reduceCols(op, x, out, rows, cols): sum (0) or mean (3) over the leading axis
napi_value ReduceCols(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    Args a(env, info);
    int op = (int)a.i64(0);
    int64_t rows = a.i64(3), cols = a.i64(4);
    if (rows < 1) throw Err{"reduceCols needs at least one row"};
    const float* x = a.f32(1, rows * cols);
    float* o = a.f32(2, cols);
    if (op != af::R_SUM && op != af::R_MEAN) throw Err{"reduceCols does sum and mean only"};
    af::reduce_cols(op, x, o, rows, cols);
    return undef(env);
  });
}

// transpose(x, out, shape, perm): any 4-byte element type
napi_value Transpose(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    Args a(env, info);
    auto shape = a.list(2), perm = a.list(3);
    if (shape.size() > 8 || perm.size() != shape.size()) throw Err{"bad rank"};
    std::vector<int32_t> p(perm.size());
    std::vector<bool> seen(perm.size(), false);
    for (size_t i = 0; i < perm.size(); i++) {
      if (perm[i] < 0 || perm[i] >= (int64_t)perm.size() || seen[perm[i]]) throw Err{"bad permutation"};
      seen[perm[i]] = true;
      p[i] = (int32_t)perm[i];
    }
    int64_t n = prod(shape);
    const uint32_t* x = a.any32(0, n);
    uint32_t* o = a.any32(1, n);
    if (n) af::transpose32(x, o, (int)shape.size(), shape.data(), p.data());
    return undef(env);
  });
}

// gather(x, indices, out, outer, dim, inner, nidx)
napi_value Gather(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    Args a(env, info);
    int64_t outer = a.i64(3), dim = a.i64(4), inner = a.i64(5), nidx = a.i64(6);
    const uint32_t* x = a.any32(0, outer * dim * inner);
    const int32_t* idx = a.i32(1, nidx);
    uint32_t* o = a.any32(2, outer * nidx * inner);
    af::gather32(x, idx, o, outer, dim, inner, nidx);
    return undef(env);
  });
}

// segmentSum(x, segmentIds, out, rows, inner, nseg)
napi_value SegmentSum(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    Args a(env, info);
    int64_t rows = a.i64(3), inner = a.i64(4), nseg = a.i64(5);
    const float* x = a.f32(0, rows * inner);
    const int32_t* seg = a.i32(1, rows);
    float* o = a.f32(2, nseg * inner);
    af::segment_sum(x, seg, o, rows, inner, nseg);
    return undef(env);
  });
}

// boxCopy(src, srcShape, srcBegin, dst, dstShape, dstBegin, box)
napi_value BoxCopy(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    Args a(env, info);
    auto ss = a.list(1), sbeg = a.list(2), ds = a.list(4), dbeg = a.list(5), box = a.list(6);
    size_t r = ss.size();
    if (r == 0 || r > 8 || sbeg.size() != r || ds.size() != r || dbeg.size() != r || box.size() != r) throw Err{"bad rank"};
    for (size_t i = 0; i < r; i++) {
      if (box[i] < 0 || sbeg[i] < 0 || dbeg[i] < 0 || sbeg[i] + box[i] > ss[i] || dbeg[i] + box[i] > ds[i])
        throw Err{"box out of bounds at dimension " + std::to_string(i)};
    }
    const uint32_t* src = a.any32(0, prod(ss));
    uint32_t* dst = a.any32(3, prod(ds));
    af::box_copy32(src, ss.data(), sbeg.data(), dst, ds.data(), dbeg.data(), box.data(), (int)r);
    return undef(env);
  });
}

// compare(op, a, b, out(Uint8Array), shape, stridesA, stridesB)
napi_value Compare(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    Args a(env, info);
    int op = (int)a.i64(0);
    Broadcast br(a);
    bool is = false;
    napi_is_typedarray(env, a.at(3), &is);
    napi_typedarray_type t;
    size_t len = 0;
    void* data = nullptr;
    if (is) napi_get_typedarray_info(env, a.argv[3], &t, &len, &data, nullptr, nullptr);
    if (!is || t != napi_uint8_array || (int64_t)len < br.n) throw Err{"argument 3 must be a Uint8Array of the output size"};
    if (op < af::EQ || op > af::GE) throw Err{"unknown compare op"};
    if (br.n) af::compare(op, br.pa, br.pb, static_cast<uint8_t*>(data), (int)br.shape.size(), br.shape.data(), br.sa.data(), br.sb.data());
    return undef(env);
  });
}

// geluNew(x, out, n) / geluNewGrad(x, dy, dx, n)
napi_value GeluNew(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    Args a(env, info);
    int64_t n = a.i64(2);
    af::gelu_new(a.f32(0, n), a.f32(1, n), n);
    return undef(env);
  });
}
napi_value GeluNewGrad(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    Args a(env, info);
    int64_t n = a.i64(3);
    af::gelu_new_grad(a.f32(0, n), a.f32(1, n), a.f32(2, n), n);
    return undef(env);
  });
}

// layerNorm(x, g, b, out, mean, rstd, rows, cols, eps)
napi_value LayerNorm(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    Args a(env, info);
    int64_t rows = a.i64(6), cols = a.i64(7);
    if (rows < 0 || cols < 0) throw Err{"negative size"};
    af::layer_norm(a.f32(0, rows * cols), a.f32(1, cols), a.f32(2, cols), a.f32(3, rows * cols), a.f32(4, rows),
                   a.f32(5, rows), rows, cols, (float)a.f64(8));
    return undef(env);
  });
}

// layerNormGrad(x, g, mean, rstd, dy, dx, dg, db, rows, cols)
napi_value LayerNormGrad(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    Args a(env, info);
    int64_t rows = a.i64(8), cols = a.i64(9);
    if (rows < 0 || cols < 0) throw Err{"negative size"};
    af::layer_norm_grad(a.f32(0, rows * cols), a.f32(1, cols), a.f32(2, rows), a.f32(3, rows), a.f32(4, rows * cols),
                        a.f32(5, rows * cols), a.f32(6, cols), a.f32(7, cols), rows, cols);
    return undef(env);
  });
}

// adamw(p, g, m, v, p1, m1, v1, n, [decay, decayFactor, beta1, 1-beta1, beta2, 1-beta2, √bc2, eps, lr/bc1])
napi_value AdamW(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    Args a(env, info);
    int64_t n = a.i64(7);
    std::vector<double> s = a.doubles(8);
    if (s.size() != 9) throw Err{"adamw needs 9 scalars"};
    af::AdamWScalars sc{s[0] != 0, (float)s[1], (float)s[2], (float)s[3], (float)s[4], (float)s[5], (float)s[6], (float)s[7], (float)s[8]};
    af::adamw(a.f32(0, n), a.f32(1, n), a.f32(2, n), a.f32(3, n), a.f32(4, n), a.f32(5, n), a.f32(6, n), n, sc);
    return undef(env);
  });
}

// scaledMaskedSoftmax(x, bias, out, batch, heads, t, s, biasPerBatch, scale)
napi_value ScaledMaskedSoftmax(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    Args a(env, info);
    int64_t b = a.i64(3), h = a.i64(4), t = a.i64(5), s = a.i64(6);
    if (b < 0 || h < 0 || t < 0 || s < 0) throw Err{"negative size"};
    bool per = a.flag(7);
    af::scaled_masked_softmax(a.f32(0, b * h * t * s), a.f32(1, (per ? b : 1) * t * s), a.f32(2, b * h * t * s), b, h, t, s, per,
                              (float)a.f64(8));
    return undef(env);
  });
}

// softmaxGrad(y, dy, dx, rows, cols, scale)
napi_value SoftmaxGrad(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    Args a(env, info);
    int64_t rows = a.i64(3), cols = a.i64(4);
    if (rows < 0 || cols < 0) throw Err{"negative size"};
    af::softmax_grad(a.f32(0, rows * cols), a.f32(1, rows * cols), a.f32(2, rows * cols), rows, cols, (float)a.f64(5));
    return undef(env);
  });
}

// tokenLogp(x, ids, out, stats, batch, t, v)
napi_value TokenLogp(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    Args a(env, info);
    int64_t b = a.i64(4), t = a.i64(5), v = a.i64(6);
    if (b < 0 || t < 2 || v < 1) throw Err{"tokenLogp needs batch >= 0, t >= 2, v >= 1"};
    af::token_logp(a.f32(0, b * t * v), a.i32(1, b * t), a.f32(2, b * (t - 1)), a.f32(3, 2 * b * (t - 1)), b, t, v);
    return undef(env);
  });
}

// tokenLogpGrad(x, ids, stats, dy, dx, batch, t, v)
napi_value TokenLogpGrad(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    Args a(env, info);
    int64_t b = a.i64(5), t = a.i64(6), v = a.i64(7);
    if (b < 0 || t < 2 || v < 1) throw Err{"tokenLogpGrad needs batch >= 0, t >= 2, v >= 1"};
    af::token_logp_grad(a.f32(0, b * t * v), a.i32(1, b * t), a.f32(2, 2 * b * (t - 1)), a.f32(3, b * (t - 1)),
                        a.f32(4, b * t * v), b, t, v);
    return undef(env);
  });
}

napi_value Init(napi_env env, napi_value exports) {
  if (openblas_set_num_threads) openblas_set_num_threads(1);
  struct {
    const char* name;
    napi_callback cb;
  } fns[] = {{"setThreads", SetThreads}, {"info", Info},           {"matmul", MatMul},   {"binary", Binary},
             {"unary", Unary},           {"softmax", Softmax},     {"reduce", Reduce}, {"reduceCols", ReduceCols},   {"transpose", Transpose},
             {"gather", Gather},         {"segmentSum", SegmentSum}, {"boxCopy", BoxCopy},     {"compare", Compare},
             {"geluNew", GeluNew},       {"geluNewGrad", GeluNewGrad}, {"layerNorm", LayerNorm}, {"layerNormGrad", LayerNormGrad},
             {"adamw", AdamW},           {"scaledMaskedSoftmax", ScaledMaskedSoftmax}, {"softmaxGrad", SoftmaxGrad},
             {"tokenLogp", TokenLogp},   {"tokenLogpGrad", TokenLogpGrad}};
  for (auto& f : fns) {
    napi_value fn;
    napi_create_function(env, f.name, NAPI_AUTO_LENGTH, f.cb, nullptr, &fn);
    napi_set_named_property(env, exports, f.name, fn);
  }
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
