// The native backend's fused kernels (src/ml/kernels/fused.ts: GELU, layer norm, AdamW) against the
// tensor chains they replace, run on the tfjs cpu backend from the same host arrays: values and
// gradients, sizes that are no multiple of a SIMD width, empty and 1-element tensors, NaN/Inf.
// The AdamW update must be bit-identical to the optimizer's chain (checkpoint resume relies on the
// update being a pure function of its inputs; equality with the chain keeps native and cpu runs
// comparable). Skipped, with the reason, where the addon is not built.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend, useBackend, backendUnavailable } from '../../src/ml/backend.js';
import { FUSED, fusedAvailable } from '../../src/ml/kernels/fused.js';
import { geluNew, layerNorm } from '../../src/ml/models/gpt2.js';
import { attend, maskBias } from '../../src/ml/models/attention.js';
import { AdamW } from '../../src/ml/train/optimizer.js';
import { tokenLogps } from '../../src/ml/logprobs.js';
import { tokenNll } from '../../src/ml/train/lm-loss.js';
import { xorshiftFloats } from '../helpers/random.js';

let skip: string | undefined;
before(async () => {
  await initBackend();
  skip = await backendUnavailable('native');
  await tf.setBackend('cpu');
  (tf.backend() as unknown as { firstUse?: boolean }).firstUse = false;
  if (!skip) await useBackend('native');
});

const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
const T_ = (shape: number[], seed: number) => T(shape, seed, false, 1);
function T(shape: number[], seed: number, special = false, scale = 3) {
  const values = xorshiftFloats(size(shape), seed, scale);
  if (special && values.length > 5) {
    values[1] = NaN;
    values[3] = Infinity;
    values[5] = -Infinity;
  }
  return { shape, values };
}

/** fn on native (fused) and on cpu (the chain), inputs rebuilt from the same arrays; every output
 *  element within tol·(1 + max |want|), non-finite ones equal. */
async function same(what: string, inputs: { shape: number[]; values: Float32Array }[], fn: (...t: tf.Tensor[]) => tf.Tensor | tf.Tensor[], tol = 1e-5, exact = false): Promise<void> {
  const outs: { shape: number[]; v: Float32Array }[][] = [];
  for (const b of ['native', 'cpu']) {
    await tf.setBackend(b);
    outs.push(
      tf.tidy(() => {
        const r = fn(...inputs.map((i) => tf.tensor(Float32Array.from(i.values), i.shape, 'float32')));
        return (Array.isArray(r) ? r : [r]).map((t) => ({ shape: t.shape, v: Float32Array.from(t.dataSync() as Float32Array) }));
      }),
    );
  }
  await tf.setBackend('native');
  const [got, want] = outs as [typeof outs[0], typeof outs[0]];
  assert.equal(got.length, want.length);
  got.forEach((g, k) => {
    const w = want[k]!;
    assert.deepEqual(g.shape, w.shape, `${what}: shape of output ${k}`);
    if (exact) return assert.deepEqual(g.v, w.v, `${what}: output ${k} not bit-identical`);
    const scale = Math.max(0, ...Array.from(w.v).filter(Number.isFinite).map(Math.abs));
    for (let i = 0; i < g.v.length; i++) {
      const a = g.v[i]!;
      const b = w.v[i]!;
      if (!Number.isFinite(b)) assert.ok(Object.is(a, b) || (Number.isNaN(a) && Number.isNaN(b)), `${what}[${k}]: element ${i} ${a} vs ${b}`);
      else assert.ok(Math.abs(a - b) <= tol * (1 + scale), `${what}[${k}]: element ${i} ${a} vs ${b}`);
    }
  });
}

test('the fused kernels are registered on native and used only there', async (t) => {
  if (skip) return t.skip(skip);
  await tf.setBackend('native');
  for (const k of Object.values(FUSED)) assert.ok(fusedAvailable(k), k);
  process.env.ALIGNFLOW_FUSED = '0';
  try {
    assert.equal(fusedAvailable(FUSED.geluNew), false);
  } finally {
    delete process.env.ALIGNFLOW_FUSED;
  }
  await tf.setBackend('cpu');
  assert.equal(fusedAvailable(FUSED.geluNew), false);
  await tf.setBackend('native');
  // a profile of the forward shows the fused kernel, not the chain's Tanh
  const prof = await tf.profile(() => tf.tidy(() => geluNew(tf.ones([3, 5]))).dispose());
  const names = prof.kernels.map((k) => k.name);
  assert.ok(names.includes(FUSED.geluNew) && !names.includes('Tanh'), names.join(','));
  const ln = await tf.profile(() => tf.tidy(() => layerNorm(tf.ones([3, 5]), tf.ones([5]), tf.zeros([5]), 1e-5)).dispose());
  assert.ok(ln.kernels.some((k) => k.name === FUSED.layerNorm) && !ln.kernels.some((k) => k.name === 'Rsqrt'));
  const att = await tf.profile(() => tf.tidy(() => attend(tf.ones([1, 2, 3, 4]), tf.ones([1, 2, 3, 4]), tf.ones([1, 2, 3, 4]), maskBias(3, 0, undefined), 0.5)).dispose());
  assert.ok(att.kernels.some((k) => k.name === FUSED.attentionSoftmax) && !att.kernels.some((k) => k.name === 'Softmax'));
  const tl = await tf.profile(() => tf.tidy(() => tokenLogps(tf.ones([2, 3, 5]), tf.zeros([2, 3], 'int32'))).dispose());
  assert.ok(tl.kernels.some((k) => k.name === FUSED.tokenLogp) && !tl.kernels.some((k) => k.name === 'LogSoftmax' || k.name === 'GatherV2'), tl.kernels.map((k) => k.name).join());
  const p = new Map([['w', tf.variable(tf.zeros([4]))]]);
  const opt = new AdamW(p);
  const g = new Map([['w', tf.ones([4])]]);
  const step = await tf.profile(() => opt.applyGradients(g, 0.1) as never);
  assert.ok(step.kernels.some((k) => k.name === FUSED.adamw) && !step.kernels.some((k) => k.name === 'Sqrt'));
  opt.dispose();
  tf.dispose([...p.values(), ...g.values()]);
});

test('GELU (gelu_new): values and gradient against the chain on cpu, odd/empty/1-element sizes, NaN/Inf', async (t) => {
  if (skip) return t.skip(skip);
  let seed = 1;
  for (const shape of [[0], [1], [7], [5, 13], [3, 1027], [2, 3, 65], [20000]]) {
    // values up to ±12: both tanh branches and saturation
    await same(`gelu ${shape}`, [T(shape, seed++, false, 12)], (x) => geluNew(x!), 1e-6);
    await same(`grad gelu ${shape}`, [T(shape, seed++, false, 12), T(shape, seed++)], (x, w) => tf.grad((y: tf.Tensor) => tf.sum(tf.mul(geluNew(y), w!)))(x!), 1e-5);
  }
  await same('gelu NaN/Inf', [T([4, 9], seed++, true)], (x) => geluNew(x!));
  await same('grad gelu NaN', [T([4, 9], seed++, true)], (x) => tf.grad((y: tf.Tensor) => tf.sum(geluNew(y)))(tf.where(tf.isInf(x!), tf.zerosLike(x!), x!)));
});

test('layer norm: values and gradients (x, gain, bias) against the chain on cpu, odd sizes, one column, NaN/Inf rows', async (t) => {
  if (skip) return t.skip(skip);
  let seed = 100;
  for (const [rows, cols] of [[1, 1], [1, 7], [5, 1], [7, 13], [33, 129], [64, 128], [3, 768], [0, 5]] as [number, number][]) {
    const inputs = [T([rows, cols], seed++), T([cols], seed++, false, 1.5), T([cols], seed++), T([rows, cols], seed++)];
    await same(`layerNorm ${rows}x${cols}`, inputs.slice(0, 3), (x, g, b) => layerNorm(x as tf.Tensor2D, g!, b!, 1e-5), 2e-5);
    await same(`grad layerNorm ${rows}x${cols}`, inputs, (x, g, b, w) => tf.grads((xx: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) => tf.sum(tf.mul(layerNorm(xx as tf.Tensor2D, gg, bb, 1e-5), w!)))([x!, g!, b!]), 2e-5);
  }
  // a large offset: the mean must be taken before the variance, not E[x²] − E[x]²
  const off = T([6, 50], seed++);
  off.values.forEach((v, i) => (off.values[i] = v + 1000));
  await same('layerNorm offset', [off, T([50], seed++), T([50], seed++)], (x, g, b) => layerNorm(x as tf.Tensor2D, g!, b!, 1e-5), 2e-3);
  // NaN and ±Inf in row 0 poison that row only; the gain gradient is NaN as the chain's is
  const bad = T([4, 9], seed++);
  bad.values[2] = NaN;
  bad.values[3] = Infinity;
  bad.values[13] = -Infinity;
  const inputs = [bad, T([9], seed++), T([9], seed++), T([4, 9], seed++)];
  await same('layerNorm NaN/Inf', inputs.slice(0, 3), (x, g, b) => layerNorm(x as tf.Tensor2D, g!, b!, 1e-5));
  await same('grad layerNorm NaN/Inf', inputs, (x, g, b, w) => tf.grads((xx: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) => tf.sum(tf.mul(layerNorm(xx as tf.Tensor2D, gg, bb, 1e-5), w!)))([x!, g!, b!]));
});

test('attention softmax(q kᵀ·scale + mask): values and gradients (q, k, v) against the chain on cpu, padded batches, odd sizes, NaN', async (t) => {
  if (skip) return t.skip(skip);
  let seed = 300;
  for (const [B, H, T, D, past, padded] of [[1, 1, 1, 1, 0, false], [2, 3, 5, 7, 0, false], [3, 2, 9, 4, 0, true], [2, 2, 3, 8, 4, true], [1, 4, 33, 16, 0, false]] as [number, number, number, number, number, boolean][]) {
    const S = past + T;
    const keyMask = padded ? tf.tensor2d(Array.from({ length: B * S }, (_, i) => (i % S < (i / S | 0) + 1 ? 0 : 1)), [B, S], 'int32') : undefined;
    const inputs = [T_([B, H, T, D], seed++), T_([B, H, S, D], seed++), T_([B, H, S, D], seed++), T_([B, H, T, D], seed++)];
    const fn = (q: tf.Tensor, k: tf.Tensor, v: tf.Tensor) => attend(q as tf.Tensor4D, k as tf.Tensor4D, v as tf.Tensor4D, maskBias(T, past, keyMask), 1 / Math.sqrt(D));
    await same(`attend ${B}x${H}x${T}x${D} past ${past}`, inputs.slice(0, 3), fn, 1e-5);
    await same(`grad attend ${B}x${H}x${T}x${D} past ${past}`, inputs, (q, k, v, w) => tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.sum(tf.mul(fn(a, b, c), w!)))([q!, k!, v!]), 1e-5);
    keyMask?.dispose();
  }
  const bad = T_([1, 2, 4, 3], seed++);
  bad.values[0] = NaN;
  await same('attend NaN', [bad, T_([1, 2, 4, 3], seed++), T_([1, 2, 4, 3], seed++)], (q, k, v) => attend(q as tf.Tensor4D, k as tf.Tensor4D, v as tf.Tensor4D, maskBias(4, 0, undefined), 0.5));
});

test('token log-probs (log-softmax + pick of the next token): values and gradients against both chains on cpu, odd sizes, NaN', async (t) => {
  if (skip) return t.skip(skip);
  let seed = 700;
  for (const [B, L, V] of [[1, 2, 2], [1, 2, 5], [2, 7, 13], [3, 9, 257], [2, 33, 1031]] as [number, number, number][]) {
    const idsOf = (shape: number[]) => tf.tensor2d(Int32Array.from({ length: B * L }, (_, i) => (i * 7919 + seed) % V), shape as [number, number], 'int32');
    const x = T([B, L, V], seed++, false, 6);
    const w = T([B, L - 1], seed++);
    await same(`tokenLogps ${B}x${L}x${V}`, [x], (l) => tokenLogps(l as tf.Tensor3D, idsOf([B, L])), 1e-6);
    await same(`tokenNll ${B}x${L}x${V}`, [x], (l) => tokenNll(l as tf.Tensor3D, idsOf([B, L])), 1e-6);
    await same(`grad tokenLogps ${B}x${L}x${V}`, [x, w], (l, ww) => tf.grad((y: tf.Tensor) => tf.sum(tf.mul(tokenLogps(y as tf.Tensor3D, idsOf([B, L])), ww!)))(l!), 1e-6);
    await same(`grad tokenNll ${B}x${L}x${V}`, [x, w], (l, ww) => tf.grad((y: tf.Tensor) => tf.sum(tf.mul(tokenNll(y as tf.Tensor3D, idsOf([B, L])), ww!)))(l!), 1e-6);
  }
  const bad = T([2, 4, 9], seed++);
  bad.values[3] = NaN; // row (0, 0): its log-prob and gradient are NaN, the others are not
  bad.values[9 * 5 + 2] = Infinity;
  const ids = () => tf.tensor2d([1, 2, 3, 4, 5, 6, 7, 8], [2, 4], 'int32');
  await same('tokenLogps NaN/Inf', [bad], (l) => tokenLogps(l as tf.Tensor3D, ids()));
  await same('grad tokenLogps NaN', [bad], (l) => tf.grad((y: tf.Tensor) => tf.sum(tokenLogps(y as tf.Tensor3D, ids())))(l!));
});

test('AdamW: the fused update is bit-identical to the tensor chain (on cpu and on native), with and without decay', async (t) => {
  if (skip) return t.skip(skip);
  const shapes = new Map([['w', [17, 33]], ['b', [33]], ['one', [1]], ['big', [70001]], ['none', [0]]]);
  async function run(backend: string, fused: boolean): Promise<Float32Array[]> {
    await tf.setBackend(backend);
    if (!fused) process.env.ALIGNFLOW_FUSED = '0';
    try {
      let seed = 500;
      const params = new Map([...shapes].map(([n, s]) => [n, tf.tidy(() => tf.variable(tf.tensor(xorshiftFloats(size(s), seed++, 1), s)))]));
      const opt = new AdamW(params, { weightDecay: 0.1, beta2: 0.95 });
      for (let step = 0; step < 4; step++) {
        const grads = new Map([...shapes].map(([n, s]) => [n, tf.tensor(xorshiftFloats(size(s), seed++, step === 2 ? 1e-3 : 1), s)]));
        opt.applyGradients(grads, 1e-2 / (step + 1));
        grads.forEach((g) => g.dispose());
      }
      const out = [...params.keys()].flatMap((n) => [params.get(n)!, opt.m.get(n)!, opt.v.get(n)!].map((x) => Float32Array.from(x.dataSync() as Float32Array)));
      opt.dispose();
      params.forEach((p) => p.dispose());
      return out;
    } finally {
      delete process.env.ALIGNFLOW_FUSED;
      await tf.setBackend('native');
    }
  }
  const before = tf.memory().numTensors;
  const fused = await run('native', true);
  assert.equal(tf.memory().numTensors, before, 'no tensor leak');
  const chainNative = await run('native', false);
  const chainCpu = await run('cpu', false);
  fused.forEach((f, i) => {
    assert.deepEqual(f, chainNative[i], `tensor ${i}: fused vs the chain on native`);
    assert.deepEqual(f, chainCpu[i], `tensor ${i}: fused vs the chain on cpu`);
  });
});

test('fused forward and backward leak no tensors and are bit-identical run to run', async (t) => {
  if (skip) return t.skip(skip);
  await tf.setBackend('native');
  const x = tf.tensor(xorshiftFloats(64 * 96, 7, 2), [64, 96]);
  const g = tf.tensor(xorshiftFloats(96, 8, 1), [96]);
  const b = tf.tensor(xorshiftFloats(96, 9, 1), [96]);
  const once = () => tf.tidy(() => tf.grads((xx: tf.Tensor, gg: tf.Tensor) => tf.sum(tf.square(geluNew(layerNorm(xx as tf.Tensor2D, gg, b, 1e-5)))))([x, g]).map((r) => Float32Array.from(r.dataSync() as Float32Array)));
  const first = once();
  const before = tf.memory().numTensors;
  for (let i = 0; i < 20; i++) assert.deepEqual(once(), first);
  assert.equal(tf.memory().numTensors, before);
  tf.dispose([x, g, b]);
});
