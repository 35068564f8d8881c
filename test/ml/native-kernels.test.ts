// The native backend's kernels against the tfjs cpu backend, from the same host arrays: broadcasts,
// both transpose flags, batch dims, sizes that are no multiple of a SIMD width, empty and 1-element
// tensors, NaN/Inf. Also the backend's buffer recycling (arrays handed out stay intact), leaks and
// run-to-run bit-identity. Skipped, with the reason, where the addon is not built.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend, useBackend, backendUnavailable } from '../../src/ml/backend.js';
import { xorshiftFloats } from '../helpers/random.js';

let skip: string | undefined;
before(async () => {
  await initBackend();
  skip = await backendUnavailable('native');
  await tf.setBackend('cpu');
  (tf.backend() as unknown as { firstUse?: boolean }).firstUse = false;
  if (!skip) await useBackend('native');
});

function rand(n: number, seed: number, special = false): Float32Array {
  const a = xorshiftFloats(n, seed, 3);
  if (special && n > 3) {
    a[0] = NaN;
    a[1] = Infinity;
    a[2] = -Infinity;
  }
  return a;
}
const size = (s: number[]) => s.reduce((a, b) => a * b, 1);

/** Runs fn on native and on cpu with inputs rebuilt from the same arrays; compares every output. */
/** Elements agree to tol·(1 + |want|); with `ofMax`, to tol·(1 + max |want|) (sums of many products,
 *  whose rounding scales with the terms, not with a result that cancelled to near zero). */
async function same(what: string, inputs: { shape: number[]; dtype?: 'float32' | 'int32'; values: ArrayLike<number> }[], fn: (...t: tf.Tensor[]) => tf.Tensor | tf.Tensor[], tol = 1e-5, ofMax = false): Promise<void> {
  const outs: { shape: number[]; dtype: string; v: ArrayLike<number> }[][] = [];
  for (const b of ['native', 'cpu']) {
    await tf.setBackend(b);
    outs.push(
      tf.tidy(() => {
        const ts = inputs.map((i) => tf.tensor(i.dtype === 'int32' ? Int32Array.from(i.values) : Float32Array.from(i.values), i.shape, i.dtype ?? 'float32'));
        const r = fn(...ts);
        // copies: the arrays a tensor hands out are the backend's own
        return (Array.isArray(r) ? r : [r]).map((t) => ({ shape: t.shape, dtype: t.dtype, v: Array.from(t.dataSync()) }));
      }),
    );
  }
  await tf.setBackend('native');
  const [got, want] = outs as [typeof outs[0], typeof outs[0]];
  assert.equal(got.length, want.length, `${what}: outputs`);
  got.forEach((g, k) => {
    const w = want[k]!;
    const scale = ofMax ? Math.max(0, ...Array.from(w.v).filter(Number.isFinite).map(Math.abs)) : 0;
    assert.deepEqual(g.shape, w.shape, `${what}: shape of output ${k}`);
    assert.equal(g.dtype, w.dtype, `${what}: dtype of output ${k}`);
    for (let i = 0; i < g.v.length; i++) {
      const a = g.v[i]!;
      const b = w.v[i]!;
      if (Number.isNaN(b) || !Number.isFinite(b)) {
        assert.ok(Object.is(a, b) || (Number.isNaN(a) && Number.isNaN(b)), `${what}[${k}]: element ${i} ${a} vs ${b}`);
        continue;
      }
      assert.ok(Math.abs(a - b) <= tol * (1 + Math.max(scale, Math.abs(b))), `${what}[${k}]: element ${i} ${a} vs ${b}`);
    }
  });
}
const T = (shape: number[], seed: number, special = false) => ({ shape, values: rand(size(shape), seed, special) });

test('BatchMatMul and _FusedMatMul: transposes, batches, one-sided broadcast, odd, empty and 1-element sizes, and gradients', async (t) => {
  if (skip) return t.skip(skip);
  const cases: [number[], number[], boolean, boolean][] = [
    [[7, 5], [5, 3], false, false], [[5, 7], [5, 3], true, false], [[7, 5], [3, 5], false, true], [[5, 7], [3, 5], true, true],
    [[1, 1], [1, 1], false, false], [[1, 33], [33, 17], false, false], [[67, 129], [129, 65], false, false], [[129, 67], [65, 129], true, true],
    [[4, 6, 8], [4, 8, 5], false, false], [[4, 8, 6], [4, 5, 8], true, true], [[2, 3, 10, 16], [2, 3, 12, 16], false, true],
    [[2, 3, 16, 10], [2, 3, 16, 12], true, false], [[3, 9, 7], [7, 4], false, false], [[7, 4], [3, 4, 5], false, false],
    [[1, 1, 5, 6], [6, 2], false, false], [[0, 5], [5, 3], false, false], [[4, 0], [0, 3], false, false], [[2, 0, 5], [2, 5, 3], false, false],
    [[2, 3, 4], [3, 4, 5], false, false], // mismatched batch: falls back to cpu's broadcasting
  ];
  let seed = 1;
  for (const [as, bs, ta, tb] of cases) {
    const what = `matMul ${as} ${bs} tA=${ta} tB=${tb}`;
    if (as.length === 3 && bs.length === 3 && as[0] !== bs[0]) {
      await assert.rejects(same(what, [T(as, seed++), T(bs, seed++)], (a, b) => tf.matMul(a!, b!, ta, tb)));
      continue;
    }
    await same(what, [T(as, seed++), T(bs, seed++)], (a, b) => tf.matMul(a!, b!, ta, tb), 1e-5, true);
    // tfjs's own BatchMatMul gradient does not reduce broadcast batch dims (on any backend): equal ranks only
    if (size(as) && size(bs) && as.length === bs.length) await same(`grad ${what}`, [T(as, seed++), T(bs, seed++)], (a, b) => tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.square(tf.matMul(x, y, ta, tb))))([a!, b!]), 1e-5, true);
  }
  await same('matMul NaN/Inf', [T([6, 5], 3, true), T([5, 4], 4)], (a, b) => tf.matMul(a!, b!), 1e-5, true);
  for (const activation of ['linear', 'relu', 'elu'] as const) {
    await same(`fused ${activation}`, [T([9, 7], 5), T([5, 7], 6), T([5], 7)], (a, b, c) => tf.fused.matMul({ a: a!, b: b!, transposeB: true, bias: c!, activation }), 1e-5, true);
  }
});

test('element-wise binary ops with broadcasts, NaN and Inf', async (t) => {
  if (skip) return t.skip(skip);
  const shapes: [number[], number[]][] = [[[37], [37]], [[5, 7], [7]], [[5, 7], [5, 1]], [[1], [4, 3]], [[2, 3, 4, 5], [3, 1, 5]], [[3, 1, 5], [1, 4, 1]], [[0, 3], [3]], [[], []], [[2, 1, 3, 1, 2], [1, 4, 1, 5, 1]]];
  const ops: [string, (a: tf.Tensor, b: tf.Tensor) => tf.Tensor][] = [
    ['add', tf.add], ['sub', tf.sub], ['mul', tf.mul], ['div', tf.div], ['maximum', tf.maximum], ['minimum', tf.minimum],
    ['squaredDifference', tf.squaredDifference], ['pow', (a, b) => tf.pow(tf.abs(a), b)],
    ['equal', (a, b) => tf.equal(tf.round(a), tf.round(b))], ['notEqual', (a, b) => tf.notEqual(tf.round(a), tf.round(b))],
    ['less', tf.less], ['lessEqual', tf.lessEqual], ['greater', tf.greater], ['greaterEqual', tf.greaterEqual],
  ];
  let seed = 100;
  for (const [as, bs] of shapes) {
    for (const [name, op] of ops) await same(`${name} ${JSON.stringify(as)} ${JSON.stringify(bs)}`, [T(as, seed++, true), T(bs, seed++)], (a, b) => op(a!, b!), 1e-5);
  }
  await same('int32 add (cpu fallback)', [{ shape: [3], dtype: 'int32', values: [1, 2, 3] }, { shape: [3], dtype: 'int32', values: [4, 5, -6] }], (a, b) => tf.add(a!, b!));
});

test('unary ops, softmax, log-softmax on the full float range', async (t) => {
  if (skip) return t.skip(skip);
  const wide = { shape: [6, 41], values: rand(246, 9, true).map((v, i) => (i % 7 === 3 ? v * 40 : v)) };
  const ops: [string, (x: tf.Tensor) => tf.Tensor, number?][] = [
    ['exp', tf.exp], ['log', (x) => tf.log(tf.abs(x))], ['neg', tf.neg], ['tanh', tf.tanh], ['sqrt', (x) => tf.sqrt(tf.abs(x))], ['rsqrt', (x) => tf.rsqrt(tf.abs(x))],
    ['square', tf.square], ['relu', tf.relu], ['sigmoid', tf.sigmoid], ['erf', tf.erf, 2e-4], ['abs', tf.abs], ['softplus', tf.softplus], ['reciprocal', tf.reciprocal],
    ['log1p', (x) => tf.log1p(tf.abs(x))], ['softmax', (x) => tf.softmax(x)], ['logSoftmax', (x) => tf.logSoftmax(x)],
  ];
  for (const [name, op, tol] of ops) {
    await same(name, [wide], (x) => op(x!), tol ?? 1e-5);
    await same(`${name} 1-element`, [T([1], 3)], (x) => op(x!), tol ?? 1e-5);
    await same(`${name} empty`, [T([0, 4], 3)], (x) => op(x!));
    if (!['softmax', 'logSoftmax'].includes(name)) await same(`grad ${name}`, [T([5, 9], 4)], (x) => tf.grad((y: tf.Tensor) => tf.sum(op(y)))(x!), tol ?? 1e-4);
  }
  await same('softmax rows of one', [T([4, 1], 5)], (x) => tf.softmax(x!));
});

test('reductions over any axes, transpose, slice, pad, gather, segment sum', async (t) => {
  if (skip) return t.skip(skip);
  const x = T([3, 4, 5, 6], 20);
  for (const axis of [0, 1, 2, 3, -1, [0, 1], [1, 3], [0, 2, 3], [0, 1, 2, 3]]) {
    for (const keepDims of [false, true]) {
      await same(`sum ${axis} ${keepDims}`, [x], (a) => tf.sum(a!, axis, keepDims), 1e-5);
      await same(`mean ${axis} ${keepDims}`, [x], (a) => tf.mean(a!, axis, keepDims), 1e-5);
      await same(`max ${axis}`, [x], (a) => tf.max(a!, axis, keepDims));
      await same(`min ${axis}`, [x], (a) => tf.min(a!, axis, keepDims));
      await same(`prod ${axis}`, [T([3, 4, 5, 6], 21)], (a) => tf.prod(tf.add(tf.mul(a!, 0.1), 1), axis, keepDims), 1e-4);
    }
  }
  await same('max with NaN', [T([2, 9], 22, true)], (a) => [tf.max(a!, 1), tf.min(a!, 1), tf.sum(a!, 1), tf.sum(a!, 0)]);
  await same('sum of empty axis', [T([3, 0], 23)], (a) => [tf.sum(a!, 1), tf.max(a!, 0)]);
  for (const perm of [[1, 0], [0, 2, 1, 3], [3, 2, 1, 0], [0, 1, 3, 2], [2, 0, 3, 1], [0, 1, 2, 3]]) {
    const shape = perm.length === 2 ? [67, 33] : [3, 4, 5, 6];
    await same(`transpose ${perm}`, [T(shape, 24)], (a) => tf.transpose(a!, perm));
  }
  await same('transpose int32', [{ shape: [2, 3], dtype: 'int32', values: [1, 2, 3, 4, 5, 6] }], (a) => tf.transpose(a!));
  for (const [begin, sz] of [[[0, 0, 0, 0], [3, 4, 5, 6]], [[1, 0, 2, 0], [2, 4, 3, 6]], [[0, 1, 1, 1], [3, 2, 1, 5]], [[2, 3, 4, 5], [1, 1, 1, 1]], [[0, 0, 0, 0], [0, 4, 5, 6]]] as [number[], number[]][]) {
    await same(`slice ${begin} ${sz}`, [x], (a) => tf.slice(a!, begin, sz));
    await same(`grad slice ${begin} ${sz}`, [x], (a) => tf.grad((y: tf.Tensor) => tf.sum(tf.square(tf.slice(y, begin, sz))))(a!));
  }
  await same('pad', [T([3, 5], 25)], (a) => [tf.pad(a!, [[1, 2], [0, 3]]), tf.pad(a!, [[0, 0], [2, 0]], 1.5)]);
  const idx = { shape: [7], dtype: 'int32' as const, values: [3, 0, 0, 2, 4, 1, 3] };
  await same('gather axis 0', [T([5, 6], 26), idx], (a, i) => tf.gather(a!, i!, 0));
  await same('gather axis 1', [T([2, 5, 3], 27), idx], (a, i) => tf.gather(a!, i!, 1));
  await same('gather int32', [{ shape: [5], dtype: 'int32', values: [9, 8, 7, 6, 5] }, idx], (a, i) => tf.gather(a!, i!));
  await same('gather 2-D indices', [T([5, 4], 28), { shape: [2, 3], dtype: 'int32', values: [4, 0, 1, 1, 2, 3] }], (a, i) => tf.gather(a!, i!));
  await same('segment sum', [T([9, 4], 29), { shape: [9], dtype: 'int32', values: [4, 0, 4, 2, 8, 0, 0, 1, 4] }], (a, s) => tf.unsortedSegmentSum(a!, s as tf.Tensor1D, 10));
  await same('grad gather (embedding)', [T([11, 6], 30), idx], (a, i) => tf.grad((w: tf.Tensor) => tf.sum(tf.square(tf.gather(w, i!))))(a!));
  await tf.setBackend('native');
  assert.throws(() => tf.gather(tf.ones([3]), tf.tensor1d([3], 'int32')), /index value 3 is not in \[0, 2\]/);
});

test('recycled buffers: arrays read by the caller and subarray views stay intact while later kernels run', async (t) => {
  if (skip) return t.skip(skip);
  await tf.setBackend('native');
  const kept = tf.tidy(() => tf.add(tf.ones([64, 64]), 1).dataSync()); // the backend's own array, handed out
  const parts = tf.split(tf.mul(tf.ones([4, 256]), 3), 4); // cpu Split: subarray views of its input
  for (let i = 0; i < 20; i++) tf.tidy(() => void tf.mul(tf.add(tf.ones([64, 64]), i), tf.ones([64, 64])).dataSync().length);
  for (let i = 0; i < 20; i++) tf.tidy(() => tf.mul(tf.ones([4, 256]), -1));
  assert.ok(kept.every((v) => v === 2), 'a dataSync() array was reused');
  for (const p of parts) assert.ok(p.dataSync().every((v) => v === 3), 'a split view was overwritten');
  tf.dispose(parts);
});

test('no tensor leak, and the same inputs give bit-identical results run to run', async (t) => {
  if (skip) return t.skip(skip);
  await tf.setBackend('native');
  const a = tf.tensor(rand(64 * 96, 40), [64, 96]);
  const b = tf.tensor(rand(96 * 80, 41), [96, 80]);
  const step = () => tf.tidy(() => {
    const g = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.logSoftmax(tf.tanh(tf.matMul(x, y)))))([a, b]);
    return Array.from(g[0]!.dataSync()).concat(Array.from(g[1]!.dataSync()));
  });
  const first = step();
  const before = tf.memory().numTensors;
  for (let i = 0; i < 30; i++) assert.deepEqual(step(), first);
  assert.equal(tf.memory().numTensors, before);
  tf.dispose([a, b]);
});

test('a row of a product does not depend on the rows batched with it, nor on zero padding of K (DPO compares logps computed in different batches)', async (t) => {
  if (skip) return t.skip(skip);
  await tf.setBackend('native');
  const bits = (x: tf.Tensor) => Array.from(new Uint32Array((x.dataSync() as Float32Array).slice().buffer));
  tf.tidy(() => {
    const w = tf.tensor(rand(128 * 384, 50), [128, 384]);
    const x = tf.tensor(rand(300 * 128, 51), [300, 128]);
    const all = bits(tf.matMul(x, w));
    for (const [start, rows] of [[0, 1], [0, 17], [5, 37], [64, 200]] as const) {
      assert.deepEqual(bits(tf.matMul(tf.slice(x, [start, 0], [rows, 128]), w)), all.slice(start * 384, (start + rows) * 384), `rows ${start}..${start + rows}`);
    }
    // attention: probabilities [B, T, T] times values [B, T, D], then the same with T padded by zeros
    const p = tf.tensor(rand(4 * 9 * 9, 52), [4, 9, 9]);
    const v = tf.tensor(rand(4 * 9 * 16, 53), [4, 9, 16]);
    const padded = tf.matMul(tf.pad(p, [[0, 0], [0, 0], [0, 7]]), tf.pad(v, [[0, 0], [0, 7], [0, 0]]));
    assert.deepEqual(bits(padded), bits(tf.matMul(p, v)));
  });
});
