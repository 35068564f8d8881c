// DPO learns a learnable preference: chosen completions carry a GOOD token, rejected ones a BAD
// token at the same place. eval_rewards/accuracies starts at 0 (policy == reference: every
// implicit reward is 0, and a tie is not a win) and must exceed 0.9 on held-out pairs.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/ml/backend.js';
import { createGpt2 } from '../../src/ml/models/gpt2.js';
import { train, evaluateLoss } from '../../src/ml/train/loop.js';
import { preparePairs, prepareUnpaired, PairBatches, sequentialPairBatches } from '../../src/ml/preference-data.js';
import { toyPairs, PAD } from './dpo-toy-data.js';
import { createRewardModel, rewardLossFn } from '../../src/ml/reward.js';
import { computeRefLogps, dpoLossFn, ktoLossFn, ktoMetrics } from '../../src/ml/dpo.js';
import { detectPreferenceWarnings, withPrefix, type MetricPoint } from '../../src/ml/losses/index.js';

before(async () => {
  await initBackend();
});

test('DPO (sigmoid, β=0.1) raises eval_rewards/accuracies from 0 to > 0.9 on a toy task', async () => {
  const t0 = Date.now();
  const cfg = { vocab_size: 32, n_positions: 32, n_embd: 32, n_layer: 2, n_head: 2 };
  const policy = createGpt2(cfg, 1);
  const reference = createGpt2(cfg, 1); // same weights: DPO starts at policy == reference
  const { pairs: train_ } = preparePairs(toyPairs(128, 11), { maxLength: 32 });
  const { pairs: evalP } = preparePairs(toyPairs(64, 12), { maxLength: 32 });
  const refTrain = await computeRefLogps(reference, train_, { batchSize: 16, padId: PAD });
  const refEval = await computeRefLogps(reference, evalP, { batchSize: 32, padId: PAD });
  const loss = { beta: 0.1, losses: ['sigmoid'] as const };
  const evalFn = async () => {
    const r = await evaluateLoss(sequentialPairBatches(evalP, 32, PAD), dpoLossFn(policy, loss, refEval));
    return withPrefix({ loss: r.loss, ...r.metrics }, 'eval_');
  };
  const history: MetricPoint[] = [];
  const result = await train({
    params: policy.params,
    lossFn: dpoLossFn(policy, loss, refTrain),
    data: new PairBatches(train_, 8, 2, PAD, 5),
    maxSteps: 40,
    schedule: { lr: 3e-3, kind: 'constant', warmupSteps: 0 },
    evalEvery: 40,
    evalAtStart: true,
    evalFn,
    onMetrics: (step, m) => history.push({ step, values: m }),
  });
  const first = result.evals[0]!.metrics;
  const last = result.evals.at(-1)!.metrics;
  console.log(
    `DPO toy: eval_rewards/accuracies ${first['eval_rewards/accuracies']} → ${last['eval_rewards/accuracies']}, ` +
      `eval_loss ${first.eval_loss!.toFixed(4)} → ${last.eval_loss!.toFixed(4)}, margins → ${last['eval_rewards/margins']!.toFixed(3)}, ` +
      `${result.step} steps in ${((Date.now() - t0) / 1000).toFixed(1)} s on ${tf.getBackend()}`,
  );
  assert.equal(first['eval_rewards/accuracies'], 0);
  assert.ok(Math.abs(first.eval_loss! - Math.LN2) < 1e-5, 'starts at ln 2');
  assert.ok(last['eval_rewards/accuracies']! > 0.9, `eval accuracy ${last['eval_rewards/accuracies']}`);
  assert.ok(last.eval_loss! < 0.6);
  const trainLog = history.filter((h) => h.values.grad_norm !== undefined);
  assert.ok(trainLog.every((h) => 'rewards/margins' in h.values && 'learning_rate' in h.values));
  assert.deepEqual(
    detectPreferenceWarnings(trainLog).map((w) => w.code).filter((c) => c === 'loss_at_ln2'),
    [],
  );
  policy.dispose();
  reference.dispose();
});

test('KTO on unpaired examples: desirable rewards pull away from undesirable ones on held-out data', async () => {
  const t0 = Date.now();
  const cfg = { vocab_size: 32, n_positions: 32, n_embd: 32, n_layer: 2, n_head: 2 };
  const policy = createGpt2(cfg, 4);
  const reference = createGpt2(cfg, 4);
  const unpair = (ps: ReturnType<typeof toyPairs>) =>
    ps.flatMap((p) => [
      { promptIds: p.promptIds, completionIds: p.chosenIds, desirable: true },
      { promptIds: p.promptIds, completionIds: p.rejectedIds, desirable: false },
    ]);
  const tr = prepareUnpaired(unpair(toyPairs(64, 31)), { maxLength: 32 }).pairs;
  const ev = prepareUnpaired(unpair(toyPairs(32, 32)), { maxLength: 32 }).pairs;
  // KL rows pair each prompt with the previous example's completion
  assert.deepEqual(tr[1]!.rejectedIds, tr[0]!.chosenIds);
  const refTr = await computeRefLogps(reference, tr, { batchSize: 16, padId: PAD });
  const refEv = await computeRefLogps(reference, ev, { batchSize: 32, padId: PAD });
  const kcfg = { beta: 0.1 };
  const evalFn = async () => {
    const r = await evaluateLoss(sequentialPairBatches(ev, 64, PAD), ktoLossFn(policy, kcfg, refEv));
    return ktoMetrics(withPrefix({ loss: r.loss, ...r.metrics }, 'eval_'), 'eval_');
  };
  const result = await train({
    params: policy.params,
    lossFn: ktoLossFn(policy, kcfg, refTr),
    data: new PairBatches(tr, 16, 1, PAD, 5),
    maxSteps: 30,
    schedule: { lr: 3e-3, kind: 'constant', warmupSteps: 0 },
    evalEvery: 30,
    evalAtStart: true,
    evalFn,
  });
  const first = result.evals[0]!.metrics;
  const last = result.evals.at(-1)!.metrics;
  console.log(
    `KTO toy: eval_rewards/margins ${first['eval_rewards/margins']!.toFixed(3)} → ${last['eval_rewards/margins']!.toFixed(3)}, ` +
      `eval_loss ${first.eval_loss!.toFixed(4)} → ${last.eval_loss!.toFixed(4)}, eval_kl ${last.eval_kl!.toFixed(3)}, ${((Date.now() - t0) / 1000).toFixed(1)} s`,
  );
  assert.equal(first['eval_rewards/margins'], 0);
  assert.ok(Math.abs(first.eval_loss! - 0.5) < 1e-6, 'KTO starts at 1 − σ(0) = 0.5');
  assert.ok(last['eval_rewards/margins']! > 0.3, `margin ${last['eval_rewards/margins']}`);
  assert.ok(last['eval_rewards/rejected']! < 0);
  assert.ok(last.eval_loss! < 0.45);
  assert.ok(last.eval_kl! >= 0);
  policy.dispose();
  reference.dispose();
});

test('gradient accumulation: 2 micro-batches of 4 pairs give the update of one batch of 8 (sigmoid + sft)', async () => {
  const cfg = { vocab_size: 32, n_positions: 32, n_embd: 16, n_layer: 1, n_head: 2 };
  const { pairs } = preparePairs(toyPairs(16, 41), { maxLength: 32 });
  const ref = await computeRefLogps(createGpt2(cfg, 6), pairs, { batchSize: 16, padId: PAD });
  const run = async (bs: number, accum: number) => {
    const m = createGpt2(cfg, 6);
    await train({
      params: m.params,
      lossFn: dpoLossFn(m, { beta: 0.5, losses: ['sigmoid', 'sft'], weights: [1, 0.3] }, ref),
      data: new PairBatches(pairs, bs, accum, PAD, 9),
      gradAccum: accum,
      maxSteps: 2,
      schedule: { lr: 1e-2, kind: 'constant', warmupSteps: 0 },
      maxGradNorm: null,
    });
    const w = m.params.get('transformer.h.0.mlp.c_fc.weight')!.dataSync().slice();
    m.dispose();
    return w;
  };
  const big = await run(8, 1);
  const acc = await run(4, 2);
  let maxDiff = 0;
  let maxAbs = 0;
  big.forEach((v, i) => {
    maxDiff = Math.max(maxDiff, Math.abs(v - acc[i]!));
    maxAbs = Math.max(maxAbs, Math.abs(v));
  });
  assert.ok(maxDiff < 1e-5 * Math.max(1, maxAbs), `max |Δw| ${maxDiff}`);
  const one = await run(4, 1); // a different batch: the test would catch a mean-of-means
  assert.ok(one.some((v, i) => Math.abs(v - big[i]!) > 1e-4));
});

test('DPO, KTO and reward-model steps leave no tensors behind', async () => {
  const cfg = { vocab_size: 32, n_positions: 32, n_embd: 16, n_layer: 1, n_head: 2 };
  const { pairs } = preparePairs(toyPairs(16, 51), { maxLength: 32 });
  const policy = createGpt2(cfg, 8);
  const ref = await computeRefLogps(policy, pairs, { batchSize: 8, padId: PAD });
  const unp = prepareUnpaired(
    pairs.flatMap((p) => [
      { promptIds: p.promptIds, completionIds: p.chosenIds, desirable: true },
      { promptIds: p.promptIds, completionIds: p.rejectedIds, desirable: false },
    ]),
    { maxLength: 32 },
  ).pairs;
  const kref = await computeRefLogps(policy, unp, { batchSize: 8, padId: PAD });
  const rm = createRewardModel(createGpt2(cfg, 9), { padTokenId: PAD });
  const steps = async (lossFn: (b: any) => any, params: Map<string, any>, data: PairBatches, n: number) =>
    train({ params, lossFn, data, maxSteps: n, gradAccum: 2, schedule: { lr: 1e-3, kind: 'constant', warmupSteps: 0 } });
  for (const [name, fn, params, prepared] of [
    ['dpo', dpoLossFn(policy, { beta: 0.1, losses: ['sigmoid', 'ipo', 'sft'], weights: [1, 0.1, 0.1] }, ref), policy.params, pairs],
    ['kto', ktoLossFn(policy, { beta: 0.1 }, kref), policy.params, unp],
    ['rm', rewardLossFn(rm, { centerCoefficient: 0.01 }), rm.params, pairs],
  ] as const) {
    // per-step growth must be zero: compare a 1-step run with a 6-step run (any constant per
    // train() call is the loop's own business, not the step's)
    const grow = async (n: number) => {
      const before = tf.memory().numTensors;
      await steps(fn as never, params as never, new PairBatches(prepared, 4, 2, PAD, 1), n);
      return tf.memory().numTensors - before;
    };
    const one = await grow(1);
    const six = await grow(6);
    assert.equal(six, one, `${name}: ${six - one} tensors leaked over 5 more steps`);
  }
  policy.dispose();
  rm.dispose();
});
