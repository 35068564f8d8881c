import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { AdamW, defaultDecayFilter } from '../../src/ml/train/optimizer.js';
import { Rng, deriveSeed } from '../../src/ml/train/rng.js';
import { backend } from './train-fixtures.js';

await backend();

/** torch.optim.AdamW written out in float64 for one scalar parameter. */
function refAdamW(p: number, grads: number[], lrs: number[], o: { b1: number; b2: number; eps: number; wd: number }) {
  let m = 0;
  let v = 0;
  grads.forEach((g, i) => {
    const t = i + 1;
    const lr = lrs[i]!;
    p *= 1 - lr * o.wd;
    m = o.b1 * m + (1 - o.b1) * g;
    v = o.b2 * v + (1 - o.b2) * g * g;
    const denom = Math.sqrt(v) / Math.sqrt(1 - o.b2 ** t) + o.eps;
    p -= (lr / (1 - o.b1 ** t)) * (m / denom);
  });
  return { p, m, v };
}

test('AdamW matches a hand-computed torch.optim.AdamW trajectory (decay on matrices only)', () => {
  const W = tf.variable(tf.tensor2d([[1, -2]]), true, 'opt-test/W');
  const b = tf.variable(tf.tensor1d([0.5]), true, 'opt-test/b');
  const params = new Map<string, tf.Variable>([
    ['layer.weight', W],
    ['layer.bias', b],
  ]);
  const hyper = { beta1: 0.9, beta2: 0.99, eps: 1e-3, weightDecay: 0.1 };
  const opt = new AdamW(params, hyper);
  assert.deepEqual(opt.decayedNames(), ['layer.weight']);
  const gW = [
    [0.5, -0.1],
    [0.2, 0.3],
    [-0.4, 0.05],
  ];
  const gb = [0.3, -0.2, 0.1];
  const lrs = [0.1, 0.05, 0.02];
  for (let s = 0; s < 3; s++) {
    const g = new Map<string, tf.Tensor>([
      ['layer.weight', tf.tensor2d([gW[s]!])],
      ['layer.bias', tf.tensor1d([gb[s]!])],
    ]);
    opt.applyGradients(g, lrs[s]!);
    g.forEach((t) => t.dispose());
  }
  assert.equal(opt.step, 3);
  const o = { b1: 0.9, b2: 0.99, eps: 1e-3 };
  const w = W.dataSync();
  const e0 = refAdamW(1, gW.map((r) => r[0]!), lrs, { ...o, wd: 0.1 });
  const e1 = refAdamW(-2, gW.map((r) => r[1]!), lrs, { ...o, wd: 0.1 });
  const eb = refAdamW(0.5, gb, lrs, { ...o, wd: 0 }); // bias: no decay
  assert.ok(Math.abs(w[0]! - e0.p) < 1e-6, `${w[0]} vs ${e0.p}`);
  assert.ok(Math.abs(w[1]! - e1.p) < 1e-6, `${w[1]} vs ${e1.p}`);
  assert.ok(Math.abs(b.dataSync()[0]! - eb.p) < 1e-6);
  // a decayed bias would differ measurably: the test can tell the rule apart
  assert.ok(Math.abs(refAdamW(0.5, gb, lrs, { ...o, wd: 0.1 }).p - eb.p) > 1e-4);
  assert.ok(Math.abs(opt.m.get('layer.weight')!.dataSync()[0]! - e0.m) < 1e-7);
  assert.ok(Math.abs(opt.v.get('layer.bias')!.dataSync()[0]! - eb.v) < 1e-7);
  opt.dispose();
  W.dispose();
  b.dispose();
});

test('the decay rule: rank ≥ 2 only (weights, embeddings), never biases or LayerNorm', () => {
  const mk = (shape: number[]) => tf.variable(tf.zeros(shape), true);
  const cases: [string, number[], boolean][] = [
    ['transformer.wte.weight', [4, 2], true],
    ['transformer.h.0.attn.c_attn.weight', [2, 6], true],
    ['transformer.h.0.attn.c_attn.bias', [6], false],
    ['transformer.h.0.ln_1.weight', [2], false],
    ['transformer.ln_f.bias', [2], false],
  ];
  for (const [name, shape, want] of cases) {
    const v = mk(shape);
    assert.equal(defaultDecayFilter(name, v), want, name);
    v.dispose();
  }
});

test('the RNG is seedable, serializable and resumes exactly', () => {
  const a = new Rng(42);
  for (let i = 0; i < 10; i++) a.nextUint32();
  const saved = JSON.parse(JSON.stringify(a.state()));
  const seqA = Array.from({ length: 20 }, () => a.next());
  const b = new Rng(saved);
  assert.deepEqual(Array.from({ length: 20 }, () => b.next()), seqA);
  assert.notDeepEqual(new Rng(43).permutation(20), new Rng(42).permutation(20));
  assert.deepEqual(new Rng(42).permutation(20), new Rng(42).permutation(20));
  assert.notEqual(deriveSeed(1, 'epoch', 0), deriveSeed(1, 'epoch', 1));
  const counts = new Array(4).fill(0);
  const r = new Rng(5);
  for (let i = 0; i < 4000; i++) counts[r.int(4)]++;
  for (const c of counts) assert.ok(c > 850 && c < 1150, `int(4) counts ${counts}`);
  assert.throws(() => new Rng({ s: [0, 0, 0, 0] }), /all-zero/);
});
