// Our kernels against the stock cpu backend, in one process: each case runs on wasm (our
// BatchMatMul and UnsortedSegmentSum), then on cpu, from the same host arrays.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend, useBackend } from '../../src/ml/backend.js';
import { registerCpuKernels } from '../../src/ml/kernels/index.js';
import { xorshiftFloats } from '../helpers/random.js';

let wasm = false;
before(async () => {
  // these are the wasm backend's kernels: test them there even where native is the default
  await initBackend();
  wasm = (await useBackend('wasm').catch(() => undefined))?.name === 'wasm';
});

const rand = (n: number, seed: number) => xorshiftFloats(n, seed);
const size = (s: number[]) => s.reduce((a, b) => a * b, 1);

async function on(backend: string, fn: () => tf.Tensor[]): Promise<Float32Array[]> {
  await tf.setBackend(backend);
  const out: Float32Array[] = [];
  tf.tidy(() => {
    for (const t of fn()) out.push(t.dataSync() as Float32Array);
  });
  return out;
}

function close(a: Float32Array, b: Float32Array, what: string, tol = 1e-4): void {
  assert.equal(a.length, b.length, `${what}: length`);
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    assert.ok(d <= tol * (1 + Math.abs(b[i]!)), `${what}: element ${i} ${a[i]} vs ${b[i]}`);
  }
}

// [aShape, bShape, transposeA, transposeB]
const CASES: [number[], number[], boolean, boolean][] = [
  [[7, 5], [5, 3], false, false],
  [[5, 7], [5, 3], true, false],
  [[7, 5], [3, 5], false, true],
  [[5, 7], [3, 5], true, true],
  [[1, 33], [33, 17], false, false], // one row (generation)
  [[64, 48], [48, 96], false, false],
  [[48, 64], [96, 48], true, true],
  [[4, 6, 8], [4, 8, 5], false, false], // batched
  [[4, 8, 6], [4, 8, 5], true, false],
  [[4, 6, 8], [4, 5, 8], false, true], // attention scores q kᵀ
  [[4, 8, 6], [4, 5, 8], true, true],
  [[2, 3, 10, 16], [2, 3, 16, 10], false, false], // [B, H, T, D] products
  [[2, 3, 10, 16], [2, 3, 12, 16], false, true],
  [[2, 3, 16, 10], [2, 3, 16, 12], true, false],
  [[3, 6, 8], [1, 8, 5], false, false], // broadcast b
  [[1, 6, 8], [3, 5, 8], false, true], // broadcast a
  [[2, 1, 4, 8], [1, 3, 8, 5], false, false], // general broadcast: stock fallback
  [[3, 0, 4], [3, 4, 5], false, false], // empty
];

test('BatchMatMul (ours on wasm) equals the cpu backend on many shapes, and so do its gradients', async (t) => {
  if (!wasm) return t.skip('wasm backend not active');
  let seed = 1;
  for (const [as, bs, tA, tB] of CASES) {
    const av = rand(size(as), seed++);
    const bv = rand(size(bs), seed++);
    const run = () => {
      const a = tf.tensor(av, as);
      const b = tf.tensor(bv, bs);
      const y = tf.matMul(a, b, tA, tB);
      // tfjs's BatchMatMul gradient does not reduce broadcast batch dims (on any backend): forward only there
      if (as.slice(0, -2).join() !== bs.slice(0, -2).join()) return [y, tf.zeros([1]), tf.zeros([1])];
      const w = tf.tensor(rand(size(y.shape), 99), y.shape);
      const [ga, gb] = tf.grads((x: tf.Tensor, z: tf.Tensor) => tf.sum(tf.mul(tf.matMul(x, z, tA, tB), w)))([a, b]);
      return [y, ga!, gb!];
    };
    const got = await on('wasm', run);
    const want = await on('cpu', run);
    const what = `a[${as}] b[${bs}] tA=${tA} tB=${tB}`;
    close(got[0]!, want[0]!, what);
    close(got[1]!, want[1]!, `${what} dA`);
    close(got[2]!, want[2]!, `${what} dB`);
  }
  await tf.setBackend('wasm');
});

test('UnsortedSegmentSum (ours on wasm) equals cpu, directly and as the gradient of gather', async (t) => {
  if (!wasm) return t.skip('wasm backend not active');
  const cases: [number[], number[], number][] = [
    [[6], [0, 1, 0, 3, 3, 3], 5],
    [[5, 4], [2, 2, 0, 4, 1], 6],
    [[7, 3, 2], [1, 0, 1, 0, 1, 0, 6], 7],
    [[1, 8], [0], 1],
  ];
  for (const [xs, ids, n] of cases) {
    const xv = rand(size(xs), n);
    const run = () => [tf.unsortedSegmentSum(tf.tensor(xv, xs), tf.tensor1d(ids, 'int32'), n)];
    close((await on('wasm', run))[0]!, (await on('cpu', run))[0]!, `x[${xs}]`, 1e-6);
  }
  // embedding gradient with repeated ids, through a flat gather as the model uses it
  const table = rand(50 * 8, 3);
  const idx = [3, 3, 7, 0, 49, 3, 12, 7, 7, 1];
  const w = rand(idx.length * 8, 4);
  const run = () => {
    const tb = tf.tensor2d(table, [50, 8]);
    const g = tf.grad((x: tf.Tensor) => tf.sum(tf.mul(tf.gather(x, tf.tensor1d(idx, 'int32')), tf.tensor2d(w, [idx.length, 8]))))(tb);
    const flat = tf.grad((x: tf.Tensor) => tf.sum(tf.gather(tf.reshape(x, [-1]), tf.tensor1d([5, 5, 399, 0], 'int32'))))(tb);
    return [g, flat];
  };
  const got = await on('wasm', run);
  const want = await on('cpu', run);
  close(got[0]!, want[0]!, 'gather grad', 1e-6);
  close(got[1]!, want[1]!, 'flat gather grad', 1e-6);
  assert.equal(got[1]![5], 2); // repeated index accumulates
  await tf.setBackend('wasm');
});

test('no tensors leak through our kernels', async (t) => {
  if (!wasm) return t.skip('wasm backend not active');
  await tf.setBackend('wasm');
  const a = tf.tensor(rand(2 * 3 * 4, 1), [2, 3, 4]);
  const b = tf.tensor(rand(2 * 5 * 4, 2), [2, 5, 4]);
  const before = tf.memory().numTensors;
  const bytes = tf.memory().numBytes;
  for (let i = 0; i < 5; i++) tf.tidy(() => void tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.matMul(x, y, true, true)))([tf.transpose(a, [0, 2, 1]), b]));
  assert.equal(tf.memory().numTensors, before);
  assert.equal(tf.memory().numBytes, bytes);
  tf.dispose([a, b]);
});

test('our cpu UnsortedSegmentSum (scatter-add) equals a plain reference', async () => {
  registerCpuKernels();
  await tf.setBackend('cpu');
  const xs = [9, 3];
  const ids = [4, 0, 4, 2, 8, 0, 0, 1, 4];
  const xv = rand(27, 5);
  const ref = new Float32Array(10 * 3);
  ids.forEach((s, r) => {
    for (let j = 0; j < 3; j++) ref[s * 3 + j]! += xv[r * 3 + j]!;
  });
  const got = tf.tidy(() => tf.unsortedSegmentSum(tf.tensor(xv, xs), tf.tensor1d(ids, 'int32'), 10).dataSync() as Float32Array);
  close(got, ref, 'cpu segment sum', 1e-6);
  const gi = tf.tidy(() => tf.unsortedSegmentSum(tf.tensor1d([1, 2, 3], 'int32'), tf.tensor1d([1, 1, 0], 'int32'), 2).dataSync());
  assert.deepEqual(Array.from(gi), [3, 3]);
  await tf.setBackend('wasm');
});

import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

function probe(env: Record<string, string | undefined>): Record<string, unknown> {
  const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'kernels-backend-probe.ts');
  const r = spawnSync(process.execPath, ['--import', 'tsx', script], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 60_000 });
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

test('backend choice: best available by default, ALIGNFLOW_BACKEND forces one, unknown or unavailable ones fail clearly', () => {
  const auto = probe({ ALIGNFLOW_BACKEND: undefined }) as { active: string; candidates: { name: string; available: boolean; reason?: string }[] };
  assert.deepEqual(auto.candidates.map((c) => c.name), ['node-gpu', 'node', 'native', 'wasm', 'cpu']);
  const firstAvailable = auto.candidates.find((c) => c.available)!.name;
  assert.equal(auto.active, firstAvailable);
  for (const c of auto.candidates) if (!c.available) assert.ok(c.reason && c.reason.length > 10, `${c.name} has a reason`);
  const cpu = probe({ ALIGNFLOW_BACKEND: 'cpu' });
  assert.equal(cpu.active, 'cpu');
  assert.equal(cpu.tf, 'cpu');
  const bad = probe({ ALIGNFLOW_BACKEND: 'tpu' });
  assert.equal(bad.kind, 'config');
  assert.match(String(bad.error), /ALIGNFLOW_BACKEND="tpu" is not a backend/);
  const native = auto.candidates.find((c) => c.name === 'native')!;
  if (native.available) {
    const n = probe({ ALIGNFLOW_BACKEND: 'native' });
    assert.equal(n.active, 'native');
    assert.equal(n.tf, 'native');
  }
  // an addon that cannot load: forcing native is an error that names the fix; the default falls to wasm
  const gone = { ALIGNFLOW_NATIVE_ADDON: path.join(path.dirname(fileURLToPath(import.meta.url)), 'no-such-addon.node') };
  const forced = probe({ ...gone, ALIGNFLOW_BACKEND: 'native' });
  assert.equal(forced.kind, 'config');
  assert.match(String(forced.error), /ALIGNFLOW_BACKEND=native is not available \(native: the native addon is not built.*apt-get install g\+\+ make python3 libopenblas-dev, then npm run build:native/);
  const fallback = probe({ ...gone, ALIGNFLOW_BACKEND: undefined }) as { active: string; enableNative?: string };
  assert.equal(fallback.active, auto.active === 'native' ? 'wasm' : auto.active);
  assert.match(String(fallback.enableNative), /apt-get install g\+\+ make python3 libopenblas-dev/);
  if (!auto.candidates.find((c) => c.name === 'node')!.available) {
    const node = probe({ ALIGNFLOW_BACKEND: 'node' });
    assert.match(String(node.error), /ALIGNFLOW_BACKEND=node is not available \(node: @tensorflow\/tfjs-node is not installed/);
  }
});
