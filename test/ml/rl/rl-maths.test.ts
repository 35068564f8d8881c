// Known-answer tests for the RL maths (src/ml/rl): RLOO and GRPO advantages on hand-computed
// groups, the KL estimators' expectations against exact KL by enumeration, the clipped objective
// and its tfjs gradient against finite differences, and the loss on a real tiny model: a constant
// reward gives a policy gradient of exactly zero, and no tensor leaks over rollouts and steps.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { rlooAdvantages, grpoAdvantages, whiten, groupStats, ADV_EPS } from '../../../src/ml/rl/advantages.js';
import { klEstimate, klEstimateTensor, exactKl, type KlEstimator } from '../../../src/ml/rl/kl.js';
import { clippedLoss, clippedLossTensor } from '../../../src/ml/rl/policy-loss.js';
import { rlLossFn } from '../../../src/ml/rl/loss.js';
import { RolloutSource, fitPrompt, type RolloutConfig } from '../../../src/ml/rl/rollout.js';
import { bytesTokenizer } from '../../../src/ml/tokenizer/index.js';
import { createGpt2 } from '../../../src/ml/models/gpt2.js';
import { train } from '../../../src/ml/train/loop.js';

before(async () => {
  await tf.setBackend('cpu');
});

const close = (a: number, b: number, tol = 1e-9, msg = '') => assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${msg} got ${a}, expected ${b}`);
const closeAll = (a: readonly number[], b: readonly number[], tol = 1e-9) => {
  assert.equal(a.length, b.length);
  a.forEach((x, i) => close(x, b[i]!, tol, `[${i}]`));
};

test('RLOO advantages: each answer against the mean of the other k−1 (hand-computed groups)', () => {
  // group 1 (k=4): baselines (2+3+6)/3, (1+3+6)/3, (1+2+6)/3, (1+2+3)/3
  // group 2: [0, 0, 1, 1] → baselines 2/3, 2/3, 1/3, 1/3
  const a = rlooAdvantages([1, 2, 3, 6, 0, 0, 1, 1], 4);
  closeAll(a, [1 - 11 / 3, 2 - 10 / 3, 3 - 3, 6 - 2, -2 / 3, -2 / 3, 2 / 3, 2 / 3]);
  closeAll(rlooAdvantages([0.5, -0.5], 2), [1, -1]);
  // k·mean of the advantages is 0 in every group (RLOO is centred)
  close(a.slice(0, 4).reduce((s, x) => s + x, 0), 0);
  // equal rewards: exactly 0, not 1e-17 (the pivot trick)
  assert.deepEqual(rlooAdvantages([0.1, 0.1, 0.1, 0.7, 0.7, 0.7], 3), [0, 0, 0, 0, 0, 0]);
  assert.throws(() => rlooAdvantages([1, 2, 3], 2), /groups of 2/);
  assert.throws(() => rlooAdvantages([1, NaN], 2), /not finite/);
  assert.throws(() => rlooAdvantages([1], 1), /at least 2/);
});

test('GRPO advantages: (r − mean)/(std + eps) with the unbiased std, and scale_rewards batch / none', () => {
  const r = [1, 2, 3, 6];
  const std = Math.sqrt((4 + 1 + 0 + 9) / 3); // torch.std (unbiased)
  closeAll(grpoAdvantages(r, 4), [-2, -1, 0, 3].map((d) => d / (std + ADV_EPS)));
  closeAll(grpoAdvantages(r, 4, 'none'), [-2, -1, 0, 3]);
  // batch: one std over all 8 rewards
  const all = [1, 2, 3, 6, 0, 0, 1, 1];
  const m = all.reduce((s, x) => s + x, 0) / 8;
  const bstd = Math.sqrt(all.reduce((s, x) => s + (x - m) ** 2, 0) / 7);
  closeAll(grpoAdvantages(all, 4, 'batch'), [-2, -1, 0, 3, -0.5, -0.5, 0.5, 0.5].map((d) => d / (bstd + ADV_EPS)));
  assert.deepEqual(grpoAdvantages([0.3, 0.3, 0.3, 0.3], 4), [0, 0, 0, 0]);
  // whitening: mean 0, (unbiased) std ≈ 1
  const w = whiten([1, 2, 3, 6]);
  close(w.reduce((s, x) => s + x, 0), 0, 1e-12);
  closeAll(w, [-2, -1, 0, 3].map((d) => d / (std + ADV_EPS)));
  const g = groupStats([1, 1, 2, 5], 2);
  close(g.zeroStd, 0.5);
  close(g.std, (0 + Math.sqrt(4.5)) / 2);
});

test('KL estimators: E_π[k1] = E_π[k3] = KL(π‖π_ref) exactly by enumeration; k2 is biased but ≥ 0; tensors agree', () => {
  const p = [0.5, 0.3, 0.15, 0.05];
  const q = [0.2, 0.4, 0.1, 0.3];
  const kl = exactKl(p, q);
  close(kl, 0.5 * Math.log(2.5) + 0.3 * Math.log(0.75) + 0.15 * Math.log(1.5) + 0.05 * Math.log(1 / 6), 1e-12);
  const expect = (e: KlEstimator) => p.reduce((s, pi, i) => s + pi * klEstimate(e, Math.log(pi), Math.log(q[i]!)), 0);
  close(expect('k1'), kl, 1e-12, 'k1');
  close(expect('k3'), kl, 1e-12, 'k3');
  const k2 = expect('k2');
  assert.ok(k2 > 0 && Math.abs(k2 - kl) > 1e-3, `k2 ${k2} vs ${kl}`);
  // per sample, k3 is never negative while k1 can be
  p.forEach((pi, i) => assert.ok(klEstimate('k3', Math.log(pi), Math.log(q[i]!)) >= 0));
  assert.ok(klEstimate('k1', Math.log(p[1]!), Math.log(q[1]!)) < 0);
  // identical distributions: 0 for every estimator
  for (const e of ['k1', 'k2', 'k3'] as const) assert.ok(klEstimate(e, Math.log(0.3), Math.log(0.3)) === 0);
  const lp = p.map(Math.log);
  const lq = q.map(Math.log);
  for (const e of ['k1', 'k2', 'k3'] as const) {
    const t = klEstimateTensor(e, tf.tensor1d(lp), tf.tensor1d(lq));
    closeAll(Array.from(t.dataSync()), lp.map((x, i) => klEstimate(e, x, lq[i]!)), 1e-5);
    t.dispose();
  }
});

test('clipped objective: known values, the clip fraction, and the tfjs gradient against finite differences', () => {
  const eps = { low: 0.2, high: 0.2 };
  // ρ = 1: −A; ρ inside the range: −ρA
  close(clippedLoss(0, 0, 2, eps).loss, -2);
  close(clippedLoss(0.1, 0, 1, eps).loss, -Math.exp(0.1));
  // A > 0, ρ = e^0.5 > 1.2: the clipped branch (−1.2A) wins and the gradient vanishes
  const hi = clippedLoss(0.5, 0, 1, eps);
  close(hi.loss, -1.2);
  assert.equal(hi.clipped, true);
  // A < 0, ρ > 1.2: −min(ρA, 1.2A) = −ρA (not clipped: the pessimistic bound keeps the ratio)
  const neg = clippedLoss(0.5, 0, -1, eps);
  close(neg.loss, Math.exp(0.5));
  assert.equal(neg.clipped, false);
  // A < 0, ρ < 0.8: clipped at 0.8
  const lo = clippedLoss(-0.5, 0, -1, eps);
  close(lo.loss, 0.8);
  assert.equal(lo.clipped, true);
  // ε_high apart from ε_low (DAPO's clip-higher)
  close(clippedLoss(0.5, 0, 1, { low: 0.2, high: 0.28 }).loss, -1.28);

  const logp = [0, 0.1, 0.5, 0.5, -0.5, -0.1, 0.15, -0.3];
  const old = [0, 0, 0, 0, 0, 0.05, 0, 0];
  const adv = [2, 1, 1, -1, -1, 0.5, -2, 3];
  const g = tf.grad((x: tf.Tensor) => tf.sum(clippedLossTensor(x, tf.tensor1d(old), tf.tensor1d(adv), eps).loss));
  const grad = Array.from(g(tf.tensor1d(logp)).dataSync());
  const h = 1e-6;
  logp.forEach((x, i) => {
    const fd = (clippedLoss(x + h, old[i]!, adv[i]!, eps).loss - clippedLoss(x - h, old[i]!, adv[i]!, eps).loss) / (2 * h);
    close(grad[i]!, fd, 1e-4, `d/dlogp[${i}]`);
  });
  const r = clippedLossTensor(tf.tensor1d(logp), tf.tensor1d(old), tf.tensor1d(adv), eps);
  closeAll(Array.from(r.loss.dataSync()), logp.map((x, i) => clippedLoss(x, old[i]!, adv[i]!, eps).loss), 1e-5);
  assert.deepEqual(Array.from(r.clipped.dataSync()), logp.map((x, i) => (clippedLoss(x, old[i]!, adv[i]!, eps).clipped ? 1 : 0)));
});

// --- on a real tiny model

const tok = bytesTokenizer();
function tinyModel(seed: number) {
  return createGpt2({ vocab_size: tok.vocabSize, n_positions: 32, n_embd: 16, n_layer: 1, n_head: 2, eos_token_id: tok.eosTokenId, bos_token_id: tok.eosTokenId }, seed);
}
const prompts = ['q a:', 'q b:', 'q c:', 'q d:'].map((text) => ({ text, ids: fitPrompt(tok.encode(text), 32, 6, tok.eosTokenId) }));
const baseCfg: RolloutConfig = {
  k: 4,
  batchSize: 2,
  gradAccum: 1,
  miniBatches: 1,
  ppoEpochs: 1,
  maxNewTokens: 6,
  temperature: 1,
  estimator: 'rloo',
  scaleRewards: 'group',
  normalizeAdvantages: false,
  beta: 0,
  klIn: 'reward',
  klEstimator: 'k1',
  seed: 5,
  shuffle: true,
};

test('a constant reward gives advantages and a policy gradient of exactly zero (RLOO and GRPO, token and sequence level)', async () => {
  const policy = tinyModel(1);
  const reference = tinyModel(2);
  try {
    for (const [estimator, level] of [['rloo', 'sequence'], ['grpo', 'token']] as const) {
      const src = new RolloutSource({ ...baseCfg, estimator }, { policy, reference, tokenizer: tok, prompts, score: async (ps) => ps.map(() => 0.7) });
      const b = await src.next();
      assert.deepEqual(Array.from(b.adv), new Array(8).fill(0));
      const lossFn = rlLossFn(policy, { level, eps: { low: 0.2, high: 0.2 }, beta: 0, klIn: 'reward', klEstimator: 'k1' });
      const vars = [...policy.params.values()];
      const { value, grads } = tf.variableGrads(() => lossFn(b).loss, vars);
      assert.equal(value.dataSync()[0], 0);
      for (const v of vars) {
        const gv = grads[v.name];
        if (gv) assert.equal(tf.max(tf.abs(gv)).dataSync()[0], 0, `${estimator}: gradient of ${v.name}`);
      }
      tf.dispose([value, ...Object.values(grads)]);
      // a reward that varies gives a non-zero gradient through the same path (the test can fail)
      const src2 = new RolloutSource({ ...baseCfg, estimator }, { policy, reference, tokenizer: tok, prompts, score: async (_ps, as) => as.map((a) => a.length) });
      const b2 = await src2.next();
      const g2 = tf.variableGrads(() => lossFn(b2).loss, vars);
      const norm = tf.addN(Object.values(g2.grads).map((x) => tf.sum(tf.abs(x)))).dataSync()[0]!;
      assert.ok(norm > 0, `${estimator}: varying reward moves the policy`);
      tf.dispose([g2.value, ...Object.values(g2.grads)]);
    }
  } finally {
    policy.dispose();
    reference.dispose();
  }
});

test('no tensor leak over rollouts and optimizer steps; the rollout metrics carry TRL names', async () => {
  const policy = tinyModel(3);
  const reference = tinyModel(3);
  try {
    const src = new RolloutSource({ ...baseCfg, beta: 0.1, ppoEpochs: 2, estimator: 'grpo', klIn: 'loss', klEstimator: 'k3' }, { policy, reference, tokenizer: tok, prompts, score: async (_ps, as) => as.map((a) => [...a].reduce((s, ch) => s + (ch.charCodeAt(0) % 7), 0)) });
    const lossFn = rlLossFn(policy, { level: 'token', eps: { low: 0.2, high: 0.2 }, beta: 0.1, klIn: 'loss', klEstimator: 'k3' });
    const run = (steps: number) => train({ params: policy.params, lossFn, data: src, maxSteps: steps, schedule: { lr: 1e-3, kind: 'constant', warmupSteps: 0 }, seed: 1 });
    await run(2);
    const before = tf.memory().numTensors;
    const logged: Record<string, number>[] = [];
    await train({ params: policy.params, lossFn, data: src, maxSteps: 4, schedule: { lr: 1e-3, kind: 'constant', warmupSteps: 0 }, seed: 1, onMetrics: (_s, m) => logged.push(m) });
    assert.equal(tf.memory().numTensors, before);
    for (const n of ['objective/kl', 'objective/entropy', 'objective/non_score_reward', 'objective/rlhf_reward', 'objective/scores', 'policy/clipfrac', 'policy/approxkl', 'loss/policy', 'val/num_eos_tokens', 'val/ratio', 'completions/mean_length', 'kl', 'reward_std', 'frac_reward_zero_std', 'loss/kl']) {
      assert.ok(n in logged[0]!, n);
    }
    // the second pass over a rollout is off-policy: ρ ≠ 1 somewhere
    assert.ok(logged.some((m) => m['policy/approxkl']! > 0), JSON.stringify(logged.map((m) => [m['policy/approxkl'], m['val/ratio'], m.loss, m.grad_norm])));
  } finally {
    policy.dispose();
    reference.dispose();
  }
});
