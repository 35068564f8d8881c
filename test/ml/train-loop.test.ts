import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { train, evaluateLoss, type MicroBatchOutput } from '../../src/ml/train/loop.js';
import { collate, prepareSftExamples, ExampleBatches, type Batch, type BatchSource } from '../../src/ml/train/data.js';
import { causalLmLoss } from '../../src/ml/train/lm-loss.js';
import type { TrainerCheckpoint } from '../../src/ml/train/checkpoint.js';
import { AlignflowError } from '../../src/errors.js';
import { backend, tinyModel, toyPairs } from './train-fixtures.js';

await backend();

/** Hands out the given micro-batches in order, cycling; its state is the index. */
class ListSource<B> implements BatchSource<B> {
  i = 0;
  constructor(readonly items: B[]) {}
  next(): B {
    return this.items[this.i++ % this.items.length]!;
  }
  state() {
    return { i: this.i };
  }
  restore(s: unknown) {
    this.i = (s as { i: number }).i;
  }
  epoch() {
    return this.i / this.items.length;
  }
}

test('clipping by global norm: grad_norm is reported before clipping, the update uses the clipped gradient', async () => {
  const w = tf.variable(tf.tensor2d([[0, 0]]), true, 'clip-test/w');
  const c = tf.tensor2d([[3, 4]]);
  let ckpt: TrainerCheckpoint | undefined;
  const logged: Record<string, number>[] = [];
  await train({
    params: new Map([['w', w]]),
    lossFn: (): MicroBatchOutput => ({ loss: tf.sum(tf.mul(w, c)) as tf.Scalar, weight: 1 }),
    data: new ListSource([0]),
    maxSteps: 1,
    schedule: { lr: 0.1, kind: 'constant', warmupSteps: 0 },
    optimizer: { beta1: 0.9 },
    maxGradNorm: 1,
    checkpointEvery: 1,
    onCheckpoint: async (k) => void (ckpt = k),
    onMetrics: (_s, m) => void logged.push(m),
  });
  assert.ok(Math.abs(logged[0]!.grad_norm! - 5) < 1e-5, `grad_norm ${logged[0]!.grad_norm}`);
  // exp_avg = (1 − β1)·g_clipped = 0.1·[0.6, 0.8]
  const m = ckpt!.expAvg.get('w')!.data;
  assert.ok(Math.abs(m[0]! - 0.06) < 1e-6 && Math.abs(m[1]! - 0.08) < 1e-6, `exp_avg ${m}`);
  w.dispose();
  c.dispose();
});

test('accumulation: 2 micro-batches of 4 == 1 batch of 8 with token-weighted loss (not a mean of means)', async () => {
  const { examples } = prepareSftExamples(toyPairs(8, 3), 32);
  const tokens = (ex: typeof examples) => collate(ex, 0).targetTokens;
  assert.notEqual(tokens(examples.slice(0, 4)), tokens(examples.slice(4)), 'the halves must differ in tokens for the test to bite');
  const run = async (batches: Batch[], accum: number) => {
    const model = tinyModel(11, { initializer_range: 0.5 });
    let ckpt: TrainerCheckpoint | undefined;
    let metrics: Record<string, number> = {};
    await train({
      params: model.params,
      lossFn: (b: Batch) => causalLmLoss(model, b),
      data: new ListSource(batches),
      maxSteps: 1,
      gradAccum: accum,
      schedule: { lr: 1e-3, kind: 'constant', warmupSteps: 0 },
      maxGradNorm: null,
      checkpointEvery: 1,
      onCheckpoint: async (k) => void (ckpt = k),
      onMetrics: (_s, m) => void (metrics = m),
    });
    model.dispose();
    return { ckpt: ckpt!, metrics };
  };
  const one = await run([collate(examples, 0)], 1);
  const two = await run([collate(examples.slice(0, 4), 0), collate(examples.slice(4), 0)], 2);
  assert.ok(Math.abs(one.metrics.loss! - two.metrics.loss!) < 1e-5, `loss ${one.metrics.loss} vs ${two.metrics.loss}`);
  assert.ok(Math.abs(one.metrics.grad_norm! - two.metrics.grad_norm!) < 1e-5 * one.metrics.grad_norm!, `grad_norm ${one.metrics.grad_norm} vs ${two.metrics.grad_norm}`);
  let maxDiff = 0;
  let maxAbs = 0;
  for (const [n, t] of one.ckpt.expAvg) {
    const u = two.ckpt.expAvg.get(n)!.data;
    t.data.forEach((x, i) => {
      maxDiff = Math.max(maxDiff, Math.abs(x - u[i]!));
      maxAbs = Math.max(maxAbs, Math.abs(x));
    });
  }
  assert.ok(maxDiff < 1e-5 * maxAbs + 1e-9, `first moments differ by ${maxDiff} (max ${maxAbs})`);

  // the naive mean of per-micro-batch means differs from the token-weighted loss here
  const model = tinyModel(11, { initializer_range: 0.5 });
  const e1 = await evaluateLoss([collate(examples.slice(0, 4), 0)], (b) => causalLmLoss(model, b));
  const e2 = await evaluateLoss([collate(examples.slice(4), 0)], (b) => causalLmLoss(model, b));
  model.dispose();
  assert.ok(Math.abs((e1.loss + e2.loss) / 2 - one.metrics.loss!) > 1e-4, 'mean of means should not match');
});

test('finite-difference check of the SFT loss gradient on a tiny model', async () => {
  const model = tinyModel(5, { initializer_range: 0.3 });
  const { examples } = prepareSftExamples(toyPairs(3, 9), 32);
  const batch = collate(examples, 0);
  const meanLoss = () => tf.tidy(() => {
    const r = causalLmLoss(model, batch);
    return tf.div(r.loss, r.weight) as tf.Scalar;
  });
  const names = ['transformer.h.0.attn.c_attn.weight', 'transformer.h.1.mlp.c_fc.bias', 'transformer.wte.weight', 'transformer.ln_f.weight', 'transformer.wpe.weight'];
  const vars = names.map((n) => model.params.get(n)!);
  const { value, grads } = tf.variableGrads(meanLoss, vars);
  value.dispose();
  const h = 1e-2;
  let checked = 0;
  for (const v of vars) {
    const g = grads[v.name]!.dataSync();
    // the entry with the largest gradient, and one more
    let best = 0;
    g.forEach((x, i) => (Math.abs(x) > Math.abs(g[best]!) ? (best = i) : 0));
    for (const idx of [best, (best * 7 + 3) % g.length]) {
      const orig = v.dataSync().slice();
      const at = (d: number) => {
        const p = orig.slice();
        p[idx] = orig[idx]! + d;
        v.assign(tf.tensor(p, v.shape));
        const l = meanLoss();
        const x = l.dataSync()[0]!;
        l.dispose();
        return x;
      };
      const fd = (at(h) - at(-h)) / (2 * h);
      v.assign(tf.tensor(orig, v.shape));
      const an = g[idx]!;
      assert.ok(Math.abs(fd - an) <= 2e-3 + 0.03 * Math.abs(an), `${v.name}[${idx}]: finite difference ${fd} vs gradient ${an}`);
      checked++;
    }
  }
  Object.values(grads).forEach((t) => t.dispose());
  assert.equal(checked, 10);
  model.dispose();
});

test('NaN loss stops with a numeric error and does not apply the update; last checkpoint kept', async () => {
  const w = tf.variable(tf.tensor2d([[1, 2]]), true, 'nan-test/w');
  const saved: number[] = [];
  const err = await train({
    params: new Map([['w', w]]),
    lossFn: (_b, { step }): MicroBatchOutput => ({ loss: (step < 3 ? tf.sum(tf.square(w)) : tf.log(tf.sum(tf.mul(w, -1e9)))) as tf.Scalar, weight: 1 }),
    data: new ListSource([0]),
    maxSteps: 10,
    schedule: { lr: 0.01, kind: 'constant', warmupSteps: 0 },
    checkpointEvery: 2,
    onCheckpoint: async (k) => void saved.push(k.state.step),
  }).catch((e) => e);
  assert.ok(err instanceof AlignflowError && err.kind === 'numeric', String(err));
  assert.match(err.message, /step 4.*last good checkpoint: step 2/);
  assert.deepEqual(saved, [2]);
  assert.ok(w.dataSync().every(Number.isFinite));
  w.dispose();
});

test('no tensor leak: tf.memory().numTensors is the same after step 10 and step 200', async () => {
  const model = tinyModel(2, { n_layer: 1, n_embd: 8, n_head: 2, vocab_size: 24, n_positions: 16 });
  const { examples } = prepareSftExamples(toyPairs(16, 4, 24), 16);
  const counts = new Map<number, number>();
  await train({
    params: model.params,
    lossFn: (b: Batch) => causalLmLoss(model, b),
    data: new ExampleBatches(examples, 4, 0, 1),
    maxSteps: 200,
    gradAccum: 2,
    schedule: { lr: 1e-3, kind: 'cosine', warmupSteps: 5 },
    logEvery: 7,
    evalEvery: 50,
    evalFn: async () => ({ eval_loss: (await evaluateLoss([collate(examples.slice(0, 4), 0)], (b) => causalLmLoss(model, b))).loss }),
    onProgress: ({ step }) => {
      if (step === 10 || step === 200) counts.set(step, tf.memory().numTensors);
    },
  });
  assert.equal(counts.get(200), counts.get(10), `numTensors ${counts.get(10)} at step 10, ${counts.get(200)} at step 200`);
  model.dispose();
});

test('a parameter the loss does not use is neither decayed nor moved (torch skips grad=None); trainable filter freezes', async () => {
  const w = tf.variable(tf.tensor2d([[1, 2]]), true, 'unused-test/w');
  const unused = tf.variable(tf.tensor2d([[3, 4]]), true, 'unused-test/u');
  const frozen = tf.variable(tf.tensor2d([[5, 6]]), true, 'unused-test/f');
  await train({
    params: new Map([
      ['w', w],
      ['u', unused],
      ['f', frozen],
    ]),
    trainable: (n) => n !== 'f',
    lossFn: (): MicroBatchOutput => ({ loss: tf.sum(tf.square(tf.add(w, frozen))) as tf.Scalar, weight: 1 }),
    data: new ListSource([0]),
    maxSteps: 3,
    optimizer: { weightDecay: 0.5 },
    schedule: { lr: 0.1, kind: 'constant', warmupSteps: 0 },
  });
  assert.deepEqual([...unused.dataSync()], [3, 4]);
  assert.deepEqual([...frozen.dataSync()], [5, 6]);
  assert.notDeepEqual([...w.dataSync()], [1, 2]);
  [w, unused, frozen].forEach((v) => v.dispose());
});
