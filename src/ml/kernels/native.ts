// Kernels of the `native` backend that run in the C++ addon. Each one takes the cpu backend's
// TypedArrays as they are (no copies), allocates its output here in JS, and hands both to the addon.
// Whatever a kernel here does not handle (other dtypes, broadcasts the addon has no loop for) goes to
// the tfjs cpu kernel of the same name, so coverage equals the cpu backend's.
import * as tf from '@tensorflow/tfjs';
import type { NativeAddon } from '../backends/native-addon.js';
import type { BufferPool } from '../backends/buffer-pool.js';
import { planBatchMatMul } from './matmul-shape.js';
import { FUSED } from './fused.js';

interface CpuLikeBackend {
  /** Recycled output buffers (the native backend has one; contents are unspecified). */
  pool?: BufferPool;
  data: { get(dataId: object): { values?: unknown } };
  makeTensorInfo(shape: number[], dtype: tf.DataType, values?: tf.backend_util.BackendValues): tf.TensorInfo;
}
type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };
type Kernel = (args: KernelArgs) => tf.TensorInfo | tf.TensorInfo[];

const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

function f32(backend: CpuLikeBackend, t: tf.TensorInfo): Float32Array | undefined {
  if (t.dtype !== 'float32') return undefined;
  const v = backend.data.get(t.dataId).values;
  return v instanceof Float32Array ? v : undefined;
}
function i32(backend: CpuLikeBackend, t: tf.TensorInfo): Int32Array | undefined {
  if (t.dtype !== 'int32') return undefined;
  const v = backend.data.get(t.dataId).values;
  return v instanceof Int32Array ? v : undefined;
}
function word32(backend: CpuLikeBackend, t: tf.TensorInfo): Float32Array | Int32Array | undefined {
  return f32(backend, t) ?? i32(backend, t);
}
/** An output buffer whose every element the kernel will write. */
function take(backend: CpuLikeBackend, n: number): Float32Array {
  return backend.pool ? backend.pool.take(n) : new Float32Array(n);
}
function alloc(backend: CpuLikeBackend, dtype: 'float32' | 'int32', n: number): Float32Array | Int32Array {
  return dtype === 'float32' ? take(backend, n) : new Int32Array(n);
}

/** Row-major strides of `shape` laid out over `outShape` (right-aligned), 0 where broadcast. */
function broadcastStrides(shape: readonly number[], outShape: readonly number[]): number[] {
  const st = new Array<number>(outShape.length).fill(0);
  let s = 1;
  for (let i = shape.length - 1, j = outShape.length - 1; i >= 0; i--, j--) {
    st[j] = shape[i] === 1 ? 0 : s;
    s *= shape[i]!;
  }
  return st;
}

const BINARY: Record<string, number> = { Add: 0, Sub: 1, Multiply: 2, RealDiv: 3, Maximum: 4, Minimum: 5, SquaredDifference: 6, Pow: 7 };
const UNARY: Record<string, number> = { Exp: 0, Log: 1, Neg: 2, Tanh: 3, Sqrt: 4, Rsqrt: 5, Square: 6, Relu: 7, Sigmoid: 8, Erf: 9, Abs: 10, Softplus: 11, Reciprocal: 12, Log1p: 13 };
const COMPARE: Record<string, number> = { Equal: 0, NotEqual: 1, Less: 2, LessEqual: 3, Greater: 4, GreaterEqual: 5 };
const REDUCE: Record<string, { op: number; axisAttr: string }> = {
  Sum: { op: 0, axisAttr: 'axis' },
  Max: { op: 1, axisAttr: 'reductionIndices' },
  Min: { op: 2, axisAttr: 'axis' },
  Mean: { op: 3, axisAttr: 'axis' },
  Prod: { op: 4, axisAttr: 'axis' },
};

export function makeNativeKernels(addon: NativeAddon, fallback: (name: string) => Kernel): Record<string, Kernel> {
  const k: Record<string, Kernel> = {};

  function matmulInto(backend: CpuLikeBackend, a: tf.TensorInfo, b: tf.TensorInfo, tA: boolean, tB: boolean): tf.TensorInfo | undefined {
    const av = f32(backend, a);
    const bv = f32(backend, b);
    if (!av || !bv) return undefined;
    const plan = planBatchMatMul(a.shape, b.shape, tA, tB);
    if (!plan) return undefined;
    const { M, N, K, batch, batchA, batchB } = plan;
    const out = take(backend, batch * M * N);
    addon.matmul(av, bv, out, batch, M, N, K, tA, tB, batchA === 1 ? 0 : M * K, batchB === 1 ? 0 : K * N);
    return backend.makeTensorInfo(plan.outShape, 'float32', out);
  }

  k.BatchMatMul = (args) => {
    const backend = args.backend as CpuLikeBackend;
    const r = matmulInto(backend, args.inputs.a!, args.inputs.b!, !!args.attrs!.transposeA, !!args.attrs!.transposeB);
    return r ?? fallback('BatchMatMul')(args);
  };

  function binaryInto(backend: CpuLikeBackend, op: number, a: tf.TensorInfo, b: tf.TensorInfo): tf.TensorInfo | undefined {
    const av = f32(backend, a);
    const bv = f32(backend, b);
    if (!av || !bv) return undefined;
    const shape = tf.backend_util.assertAndGetBroadcastShape(a.shape, b.shape);
    if (shape.length > 8) return undefined;
    const out = take(backend, size(shape));
    addon.binary(op, av, bv, out, shape, broadcastStrides(a.shape, shape), broadcastStrides(b.shape, shape));
    return backend.makeTensorInfo(shape, 'float32', out);
  }

  k._FusedMatMul = (args) => {
    const backend = args.backend as CpuLikeBackend;
    const { a, b, bias, preluActivationWeights } = args.inputs;
    const act = (args.attrs!.activation as string | undefined) ?? 'linear';
    if (preluActivationWeights || !['linear', 'relu'].includes(act)) return fallback('_FusedMatMul')(args);
    const prod = matmulInto(backend, a!, b!, !!args.attrs!.transposeA, !!args.attrs!.transposeB);
    if (!prod) return fallback('_FusedMatMul')(args);
    let out = prod;
    if (bias) {
      const withBias = binaryInto(backend, BINARY.Add!, prod, bias);
      if (!withBias) {
        (args.backend as tf.KernelBackend).disposeData(prod.dataId);
        return fallback('_FusedMatMul')(args);
      }
      (args.backend as tf.KernelBackend).disposeData(prod.dataId);
      out = withBias;
    }
    if (act === 'relu') {
      const v = f32(backend, out)!;
      addon.unary(UNARY.Relu!, v, v, v.length); // in place: `out` is ours alone
    }
    return out;
  };

  for (const [name, op] of Object.entries(BINARY)) {
    k[name] = (args) => binaryInto(args.backend as CpuLikeBackend, op, args.inputs.a!, args.inputs.b!) ?? fallback(name)(args);
  }

  for (const [name, op] of Object.entries(UNARY)) {
    k[name] = (args) => {
      const backend = args.backend as CpuLikeBackend;
      const x = args.inputs.x!;
      const xv = f32(backend, x);
      if (!xv) return fallback(name)(args);
      const out = take(backend, xv.length);
      addon.unary(op, xv, out, xv.length);
      return backend.makeTensorInfo(x.shape.slice(), 'float32', out);
    };
  }

  k.Softmax = (args) => {
    const backend = args.backend as CpuLikeBackend;
    const x = args.inputs.logits!;
    const xv = f32(backend, x);
    const dim = args.attrs!.dim as number;
    if (!xv || x.shape.length === 0 || (dim !== -1 && dim !== x.shape.length - 1)) return fallback('Softmax')(args);
    const cols = x.shape[x.shape.length - 1]!;
    const out = take(backend, xv.length);
    if (xv.length) addon.softmax(xv, out, xv.length / cols, cols, false);
    return backend.makeTensorInfo(x.shape.slice(), 'float32', out);
  };

  function transposed(backend: CpuLikeBackend, x: tf.TensorInfo, v: Float32Array | Int32Array, perm: number[]): { shape: number[]; values: Float32Array | Int32Array } {
    const shape = perm.map((p) => x.shape[p]!);
    const out = alloc(backend, x.dtype as 'float32' | 'int32', v.length);
    if (v.length) addon.transpose(v, out, x.shape.slice(), perm);
    return { shape, values: out };
  }

  k.Transpose = (args) => {
    const backend = args.backend as CpuLikeBackend;
    const x = args.inputs.x!;
    const v = word32(backend, x);
    const perm = args.attrs!.perm as number[];
    if (!v || x.shape.length > 8) return fallback('Transpose')(args);
    const t = transposed(backend, x, v, perm);
    return backend.makeTensorInfo(t.shape, x.dtype, t.values);
  };

  for (const [name, { op, axisAttr }] of Object.entries(REDUCE)) {
    k[name] = (args) => {
      const backend = args.backend as CpuLikeBackend;
      const x = args.inputs.x!;
      const xv = f32(backend, x);
      if (!xv || x.shape.length > 8) return fallback(name)(args);
      const rank = x.shape.length;
      const axes = tf.util.parseAxisParam(args.attrs![axisAttr] as number | number[], x.shape);
      const keepDims = !!args.attrs!.keepDims;
      const reduced = new Set(axes);
      const kept = [...Array(rank).keys()].filter((i) => !reduced.has(i));
      const sorted = [...reduced].sort((p, q) => p - q);
      const outShape = keepDims ? x.shape.map((d, i) => (reduced.has(i) ? 1 : d)) : kept.map((i) => x.shape[i]!);
      const cols = size(sorted.map((i) => x.shape[i]!));
      const rows = size(kept.map((i) => x.shape[i]!));
      if (rows * cols === 0) return fallback(name)(args); // empty reductions: tfjs's own identities
      if ((op === 0 || op === 3) && sorted.every((a, i) => a === i)) {
        // leading axes (a bias gradient): sum down the columns, no transpose
        const out = take(backend, rows);
        addon.reduceCols(op, xv, out, cols, rows);
        return backend.makeTensorInfo(outShape, 'float32', out);
      }
      // reduced axes last and contiguous; transpose first when they are not
      const perm = [...kept, ...sorted];
      const inPlace = perm.every((p, i) => p === i);
      const src = inPlace ? xv : (transposed(backend, x, xv, perm).values as Float32Array);
      const out = take(backend, rows);
      addon.reduce(op, src, out, rows, cols);
      if (!inPlace) backend.pool?.give(src);
      return backend.makeTensorInfo(outShape, 'float32', out);
    };
  }

  k.GatherV2 = (args) => {
    const backend = args.backend as CpuLikeBackend;
    const { x, indices } = args.inputs;
    const xv = word32(backend, x!);
    const iv = i32(backend, indices!);
    const batchDims = (args.attrs!.batchDims as number | undefined) ?? 0;
    if (!xv || !iv || batchDims !== 0) return fallback('GatherV2')(args);
    const axis = tf.util.parseAxisParam(args.attrs!.axis as number, x!.shape)[0]!;
    const dim = x!.shape[axis]!;
    for (let i = 0; i < iv.length; i++) {
      const j = iv[i]!;
      if (j < 0 || j > dim - 1) throw new Error(`GatherV2: the index value ${j} is not in [0, ${dim - 1}]`);
    }
    const outer = size(x!.shape.slice(0, axis));
    const inner = size(x!.shape.slice(axis + 1));
    const outShape = [...x!.shape.slice(0, axis), ...indices!.shape, ...x!.shape.slice(axis + 1)];
    const out = alloc(backend, x!.dtype as 'float32' | 'int32', outer * iv.length * inner);
    if (out.length) addon.gather(xv, iv, out, outer, dim, inner, iv.length);
    return backend.makeTensorInfo(outShape, x!.dtype, out);
  };

  k.Slice = (args) => {
    const backend = args.backend as CpuLikeBackend;
    const x = args.inputs.x!;
    const v = word32(backend, x);
    if (!v || x.shape.length === 0 || x.shape.length > 8) return fallback('Slice')(args);
    const [begin, sz] = tf.slice_util.parseSliceParams(x as unknown as tf.Tensor, args.attrs!.begin as number[], args.attrs!.size as number[]) as [number[], number[]];
    tf.slice_util.assertParamsValid(x as unknown as tf.Tensor, begin, sz);
    const out = alloc(backend, x.dtype as 'float32' | 'int32', size(sz));
    if (out.length) addon.boxCopy(v, x.shape.slice(), begin, out, sz, sz.map(() => 0), sz);
    return backend.makeTensorInfo(sz, x.dtype, out);
  };

  k.PadV2 = (args) => {
    const backend = args.backend as CpuLikeBackend;
    const x = args.inputs.x!;
    const v = word32(backend, x);
    const paddings = args.attrs!.paddings as [number, number][];
    if (!v || x.shape.length === 0 || x.shape.length > 8) return fallback('PadV2')(args);
    const outShape = x.shape.map((d, i) => paddings[i]![0] + d + paddings[i]![1]);
    const out = alloc(backend, x.dtype as 'float32' | 'int32', size(outShape));
    out.fill(args.attrs!.constantValue as number); // pooled buffers are not zeroed
    if (v.length) addon.boxCopy(v, x.shape.slice(), x.shape.map(() => 0), out, outShape, paddings.map((p) => p[0]), x.shape.slice());
    return backend.makeTensorInfo(outShape, x.dtype, out);
  };

  for (const [name, op] of Object.entries(COMPARE)) {
    k[name] = (args) => {
      const backend = args.backend as CpuLikeBackend;
      const { a, b } = args.inputs;
      const av = f32(backend, a!);
      const bv = f32(backend, b!);
      if (!av || !bv) return fallback(name)(args);
      const shape = tf.backend_util.assertAndGetBroadcastShape(a!.shape, b!.shape);
      if (shape.length > 8) return fallback(name)(args);
      const out = new Uint8Array(size(shape));
      addon.compare(op, av, bv, out, shape, broadcastStrides(a!.shape, shape), broadcastStrides(b!.shape, shape));
      return backend.makeTensorInfo(shape, 'bool', out);
    };
  }

  k.UnsortedSegmentSum = (args) => {
    const backend = args.backend as CpuLikeBackend;
    const x = args.inputs.x!;
    const seg = args.inputs.segmentIds!;
    const xv = f32(backend, x);
    const sv = i32(backend, seg);
    if (!xv || !sv) return fallback('UnsortedSegmentSum')(args);
    const numSegments = args.attrs!.numSegments as number;
    const innerShape = x.shape.slice(seg.shape.length);
    const inner = size(innerShape);
    const out = take(backend, numSegments * inner);
    if (out.length) addon.segmentSum(xv, sv, out, sv.length, inner, numSegments);
    return backend.makeTensorInfo([numSegments, ...innerShape], 'float32', out);
  };

  // Fused kernels, called only through src/ml/kernels/fused.ts (which checks the backend first). They
  // have no cpu counterpart: a non-float32 input is a caller's bug, so they throw instead of falling back.
  const need = (backend: CpuLikeBackend, t: tf.TensorInfo, what: string): Float32Array => {
    const v = f32(backend, t);
    if (!v) throw new Error(`${what}: needs float32 input on the native backend`);
    return v;
  };
  k[FUSED.geluNew] = (args) => {
    const backend = args.backend as CpuLikeBackend;
    const x = args.inputs.x!;
    const xv = need(backend, x, FUSED.geluNew);
    const out = take(backend, xv.length);
    if (xv.length) addon.geluNew(xv, out, xv.length);
    return backend.makeTensorInfo(x.shape.slice(), 'float32', out);
  };
  k[FUSED.geluNewGrad] = (args) => {
    const backend = args.backend as CpuLikeBackend;
    const { x, dy } = args.inputs;
    const xv = need(backend, x!, FUSED.geluNewGrad);
    const dv = need(backend, dy!, FUSED.geluNewGrad);
    if (dv.length !== xv.length) throw new Error(`${FUSED.geluNewGrad}: dy and x differ in size`);
    const out = take(backend, xv.length);
    if (xv.length) addon.geluNewGrad(xv, dv, out, xv.length);
    return backend.makeTensorInfo(x!.shape.slice(), 'float32', out);
  };
  k[FUSED.layerNorm] = (args) => {
    const backend = args.backend as CpuLikeBackend;
    const { x, gamma, beta } = args.inputs;
    const cols = x!.shape[x!.shape.length - 1] ?? 1;
    const rows = cols ? size(x!.shape) / cols : 0;
    const xv = need(backend, x!, FUSED.layerNorm);
    const gv = need(backend, gamma!, FUSED.layerNorm);
    const bv = need(backend, beta!, FUSED.layerNorm);
    if (gv.length !== cols || bv.length !== cols) throw new Error(`${FUSED.layerNorm}: gamma and beta must have ${cols} elements`);
    const out = take(backend, xv.length);
    const mean = take(backend, rows);
    const rstd = take(backend, rows);
    if (xv.length) addon.layerNorm(xv, gv, bv, out, mean, rstd, rows, cols, args.attrs!.eps as number);
    const rowShape = [...x!.shape.slice(0, -1), 1];
    return [backend.makeTensorInfo(x!.shape.slice(), 'float32', out), backend.makeTensorInfo(rowShape, 'float32', mean), backend.makeTensorInfo(rowShape, 'float32', rstd)];
  };
  k[FUSED.layerNormGrad] = (args) => {
    const backend = args.backend as CpuLikeBackend;
    const { x, gamma, mean, rstd, dy } = args.inputs;
    const cols = x!.shape[x!.shape.length - 1] ?? 1;
    const rows = cols ? size(x!.shape) / cols : 0;
    const xv = need(backend, x!, FUSED.layerNormGrad);
    const dyv = need(backend, dy!, FUSED.layerNormGrad);
    if (dyv.length !== xv.length) throw new Error(`${FUSED.layerNormGrad}: dy and x differ in size`);
    const dx = take(backend, xv.length);
    const dg = take(backend, cols);
    const db = take(backend, cols);
    if (xv.length) addon.layerNormGrad(xv, need(backend, gamma!, FUSED.layerNormGrad), need(backend, mean!, FUSED.layerNormGrad), need(backend, rstd!, FUSED.layerNormGrad), dyv, dx, dg, db, rows, cols);
    else (dg.fill(0), db.fill(0));
    return [backend.makeTensorInfo(x!.shape.slice(), 'float32', dx), backend.makeTensorInfo([cols], 'float32', dg), backend.makeTensorInfo([cols], 'float32', db)];
  };
  k[FUSED.attentionSoftmax] = (args) => {
    const backend = args.backend as CpuLikeBackend;
    const { x, bias } = args.inputs;
    const [B, H, T, S] = x!.shape as [number, number, number, number];
    const xv = need(backend, x!, FUSED.attentionSoftmax);
    const bv = need(backend, bias!, FUSED.attentionSoftmax);
    const per = bias!.shape[0] !== 1;
    if (x!.shape.length !== 4 || bias!.shape.length !== 4 || (per && bias!.shape[0] !== B) || bias!.shape[1] !== 1 || bias!.shape[2] !== T || bias!.shape[3] !== S)
      throw new Error(`${FUSED.attentionSoftmax}: x [B, H, T, S] and bias [B|1, 1, T, S] expected, got ${x!.shape} and ${bias!.shape}`);
    const out = take(backend, xv.length);
    if (xv.length) addon.scaledMaskedSoftmax(xv, bv, out, B, H, T, S, per, args.attrs!.scale as number);
    return backend.makeTensorInfo(x!.shape.slice(), 'float32', out);
  };
  k[FUSED.softmaxGrad] = (args) => {
    const backend = args.backend as CpuLikeBackend;
    const { y, dy } = args.inputs;
    const yv = need(backend, y!, FUSED.softmaxGrad);
    const dv = need(backend, dy!, FUSED.softmaxGrad);
    if (dv.length !== yv.length) throw new Error(`${FUSED.softmaxGrad}: dy and y differ in size`);
    const cols = y!.shape[y!.shape.length - 1] ?? 1;
    const out = take(backend, yv.length);
    if (yv.length) addon.softmaxGrad(yv, dv, out, yv.length / cols, cols, args.attrs!.scale as number);
    return backend.makeTensorInfo(y!.shape.slice(), 'float32', out);
  };
  k[FUSED.tokenLogp] = (args) => {
    const backend = args.backend as CpuLikeBackend;
    const { logits, ids } = args.inputs;
    const [B, T, V] = logits!.shape as [number, number, number];
    const xv = need(backend, logits!, FUSED.tokenLogp);
    const iv = i32(backend, ids!);
    if (!iv || logits!.shape.length !== 3 || ids!.shape[0] !== B || ids!.shape[1] !== T || T < 2) throw new Error(`${FUSED.tokenLogp}: logits [B, T, V] and int32 ids [B, T] with T ≥ 2 expected, got ${logits!.shape} and ${ids!.shape}`);
    const out = take(backend, B * (T - 1));
    const stats = take(backend, 2 * B * (T - 1));
    if (out.length) addon.tokenLogp(xv, iv, out, stats, B, T, V);
    return [backend.makeTensorInfo([B, T - 1], 'float32', out), backend.makeTensorInfo([B, T - 1, 2], 'float32', stats)];
  };
  k[FUSED.tokenLogpGrad] = (args) => {
    const backend = args.backend as CpuLikeBackend;
    const { logits, ids, stats, dy } = args.inputs;
    const [B, T, V] = logits!.shape as [number, number, number];
    const xv = need(backend, logits!, FUSED.tokenLogpGrad);
    const iv = i32(backend, ids!);
    if (!iv) throw new Error(`${FUSED.tokenLogpGrad}: int32 ids expected`);
    const dx = take(backend, xv.length);
    if (dx.length) addon.tokenLogpGrad(xv, iv, need(backend, stats!, FUSED.tokenLogpGrad), need(backend, dy!, FUSED.tokenLogpGrad), dx, B, T, V);
    return backend.makeTensorInfo(logits!.shape.slice(), 'float32', dx);
  };
  k[FUSED.adamw] = (args) => {
    const backend = args.backend as CpuLikeBackend;
    const { p, g, m, v } = args.inputs;
    const pv = need(backend, p!, FUSED.adamw);
    const n = pv.length;
    const gv = need(backend, g!, FUSED.adamw);
    const mv = need(backend, m!, FUSED.adamw);
    const vv = need(backend, v!, FUSED.adamw);
    if (gv.length !== n || mv.length !== n || vv.length !== n) throw new Error(`${FUSED.adamw}: p, g, m and v differ in size`);
    const p1 = take(backend, n);
    const m1 = take(backend, n);
    const v1 = take(backend, n);
    if (n) addon.adamw(pv, gv, mv, vv, p1, m1, v1, n, args.attrs!.scalars as number[]);
    const shape = p!.shape.slice();
    return [backend.makeTensorInfo(shape, 'float32', p1), backend.makeTensorInfo(shape.slice(), 'float32', m1), backend.makeTensorInfo(shape.slice(), 'float32', v1)];
  };

  return k;
}
