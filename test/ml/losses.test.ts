// Known-answer tests for the DPO family, KTO, Bradley–Terry and their metrics. Expected values
// are written out from the formulas with plain JS Math (float64), independently of tfjs.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import {
  preferenceLoss,
  sigmoidLoss,
  robustLoss,
  hingeLoss,
  ipoLoss,
  ipoSumLoss,
  simpoLoss,
  orpoLoss,
  sftLoss,
  implicitRewards,
  ktoLoss,
  ktoBaseline,
  mismatchedIndex,
  bradleyTerryLoss,
  preferenceMetrics,
  rewardModelMetrics,
  withPrefix,
  PreferenceAccumulator,
  type PreferenceInputs,
  type LossOptions,
} from '../../src/ml/losses/index.js';

before(async () => {
  await tf.setBackend('cpu');
});

const softplus = (x: number) => Math.log1p(Math.exp(x));
const logsig = (x: number) => -softplus(-x);
const sig = (x: number) => 1 / (1 + Math.exp(-x));
const close = (a: number, b: number, tol = 1e-5, msg = '') =>
  assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${msg} got ${a}, expected ${b}`);
const val = (t: tf.Tensor) => t.dataSync()[0]!;
const arr = (t: tf.Tensor) => Array.from(t.dataSync());

// Two pairs. δ₁ = (−10+11) − (−14+13) = 2, δ₂ = (−12+12) − (−11+12) = −1.
const P = { c: [-10, -12], r: [-14, -11], rc: [-11, -12], rr: [-13, -12], lc: [4, 5], lr: [5, 2] };
function inputs(p = P): PreferenceInputs {
  return {
    chosenLogps: tf.tensor1d(p.c),
    rejectedLogps: tf.tensor1d(p.r),
    refChosenLogps: tf.tensor1d(p.rc),
    refRejectedLogps: tf.tensor1d(p.rr),
    chosenLengths: tf.tensor1d(p.lc),
    rejectedLengths: tf.tensor1d(p.lr),
  };
}
const N = { pairs: 2, chosenTokens: 9 };
const beta = 0.1;

test('sigmoid (DPO): −log σ(βδ), mean over pairs', () => {
  const t = sigmoidLoss(inputs(), { beta }, N);
  const e = [softplus(-0.2), softplus(0.1)]; // 0.598139, 0.744397
  close(arr(t.losses)[0]!, e[0]!);
  close(arr(t.losses)[1]!, e[1]!);
  close(val(t.loss), (e[0]! + e[1]!) / 2);
  close(val(t.loss), 0.671268, 1e-5, 'hand value');
});

test('sigmoid, robust: exactly ln 2 when policy == reference (any ε)', () => {
  const same = { ...P, rc: P.c, rr: P.r };
  for (const eps of [0, 0.1, 0.3]) {
    close(val(sigmoidLoss(inputs(same), { beta, labelSmoothing: eps }, N).loss), Math.LN2, 1e-6, `sigmoid ε=${eps}`);
    close(val(robustLoss(inputs(same), { beta, labelSmoothing: eps }, N).loss), Math.LN2, 1e-6, `robust ε=${eps}`);
  }
  // and the whole combined loss with default options
  close(val(preferenceLoss(inputs(same), { beta: 0.5, losses: ['sigmoid'] }).loss), Math.LN2, 1e-6);
});

test('conservative DPO (label smoothing): −(1−ε)log σ(βδ) − ε log σ(−βδ)', () => {
  const eps = 0.2;
  const e = [2, -1].map((d) => -(1 - eps) * logsig(beta * d) - eps * logsig(-beta * d));
  const t = sigmoidLoss(inputs(), { beta, labelSmoothing: eps }, N);
  close(arr(t.losses)[0]!, e[0]!);
  close(arr(t.losses)[1]!, e[1]!);
  close(val(t.loss), (e[0]! + e[1]!) / 2);
});

test('robust: [−(1−ε)log σ(βδ) + ε log σ(−βδ)]/(1−2ε); equals sigmoid at ε = 0', () => {
  const eps = 0.2;
  const e = [2, -1].map((d) => (-(1 - eps) * logsig(beta * d) + eps * logsig(-beta * d)) / (1 - 2 * eps));
  const t = robustLoss(inputs(), { beta, labelSmoothing: eps }, N);
  close(arr(t.losses)[0]!, e[0]!);
  close(arr(t.losses)[1]!, e[1]!);
  close(val(robustLoss(inputs(), { beta }, N).loss), val(sigmoidLoss(inputs(), { beta }, N).loss), 1e-6);
});

test('hinge: max(0, 1 − βδ)', () => {
  const t = hingeLoss(inputs(), { beta }, N);
  assert.deepEqual(arr(t.losses).map((v) => +v.toFixed(6)), [0.8, 1.1]);
  close(val(t.loss), 0.95);
  // a large δ clips at zero
  close(val(hingeLoss(inputs(), { beta: 1 }, N).losses.slice(0, 1)), 0, 1e-7);
});

test('ipo: (δ\' − 1/(2β))² with per-token averaged log-probs; ipo_sum on sums', () => {
  // δ'₁ = (−10/4 + 11/4) − (−14/5 + 13/5) = 0.25 + 0.2 = 0.45; δ'₂ = 0 − (−11/2 + 12/2) = −0.5
  const t = ipoLoss(inputs(), { beta }, N);
  close(arr(t.losses)[0]!, (0.45 - 5) ** 2, 1e-5);
  close(arr(t.losses)[1]!, (-0.5 - 5) ** 2, 1e-5);
  close(val(t.loss), 25.47625, 1e-5);
  const s = ipoSumLoss(inputs(), { beta }, N);
  assert.deepEqual(arr(s.losses), [9, 36]); // (2−5)², (−1−5)²
  close(val(s.loss), 22.5);
});

test('simpo: −log σ(β(ā⁺ − ā⁻) − γ), reference-free', () => {
  // ā⁺ = [−2.5, −2.4], ā⁻ = [−2.8, −5.5]; β = 2, γ = 0.5 → z = [0.1, 5.7]
  const x = inputs();
  delete x.refChosenLogps;
  delete x.refRejectedLogps;
  const t = simpoLoss(x, { beta: 2, simpoGamma: 0.5 }, N);
  close(arr(t.losses)[0]!, softplus(-0.1));
  close(arr(t.losses)[1]!, softplus(-5.7));
  close(val(t.loss), (softplus(-0.1) + softplus(-5.7)) / 2);
});

test('sft (NLL of chosen): per example −Σlogp/|y|, scalar token-level −Σ/Σ|y|', () => {
  const t = sftLoss(inputs(), { beta }, N);
  assert.deepEqual(arr(t.losses).map((v) => +v.toFixed(6)), [2.5, 2.4]);
  close(val(t.loss), 22 / 9);
});

test('orpo: NLL(y⁺) − λ log σ(log-odds), log-odds from per-token mean log-probs', () => {
  const lam = 0.25;
  const lo = (a: number, b: number) => a - b - (Math.log1p(-Math.exp(a)) - Math.log1p(-Math.exp(b)));
  const ratio = [lo(-2.5, -2.8), lo(-2.4, -5.5)].map(logsig);
  const x = inputs();
  delete x.refChosenLogps;
  delete x.refRejectedLogps;
  const t = orpoLoss(x, { beta, orpoLambda: lam }, N);
  close(arr(t.losses)[0]!, 2.5 - lam * ratio[0]!, 1e-5);
  close(arr(t.losses)[1]!, 2.4 - lam * ratio[1]!, 1e-5);
  close(val(t.loss), 22 / 9 - lam * (ratio[0]! + ratio[1]!) / 2, 1e-5);
});

test('combined losses with weights and rpo_alpha', () => {
  const sigm = (softplus(-0.2) + softplus(0.1)) / 2;
  const c = preferenceLoss(inputs(), { beta, losses: ['sigmoid', 'sft'], weights: [1, 0.5] });
  close(val(c.loss), sigm + 0.5 * (22 / 9));
  close(arr(c.losses)[0]!, softplus(-0.2) + 0.5 * 2.5);
  close(val(c.parts.sigmoid!), sigm);
  const rpo = preferenceLoss(inputs(), { beta, losses: ['sigmoid'], rpoAlpha: 0.5 });
  close(val(rpo.loss), val(c.loss), 1e-6);
  const ipoHinge = preferenceLoss(inputs(), { beta, losses: ['ipo', 'hinge'], weights: [0.1, 2] });
  close(val(ipoHinge.loss), 0.1 * 25.47625 + 2 * 0.95, 1e-5);
});

test('config errors: a reference loss without a reference, bad weights', () => {
  const x = inputs();
  delete x.refChosenLogps;
  assert.throws(() => preferenceLoss(x, { beta, losses: ['sigmoid'] }), (e: any) => e.kind === 'config');
  assert.throws(() => preferenceLoss(inputs(), { beta, losses: ['sigmoid'], weights: [1, 2] }), (e: any) => e.kind === 'config');
  assert.throws(() => preferenceLoss(inputs(), { beta, losses: [] }), (e: any) => e.kind === 'config');
});

test('implicit rewards and DPO metrics (TRL names, strict accuracy)', () => {
  const rw = implicitRewards(inputs(), { beta, losses: ['sigmoid'] });
  // chosen β(π−ref) = [0.1, 0]; rejected = [−0.1, 0.1]
  const cr = arr(rw.chosen);
  const rr = arr(rw.rejected);
  [0.1, 0].forEach((e, i) => close(cr[i]!, e, 1e-6));
  [-0.1, 0.1].forEach((e, i) => close(rr[i]!, e, 1e-6));
  const m = preferenceMetrics({ chosenRewards: cr, rejectedRewards: rr, chosenLogps: P.c, rejectedLogps: P.r, loss: 0.7 });
  close(m['rewards/chosen']!, 0.05, 1e-6);
  close(m['rewards/rejected']!, 0, 1e-6);
  assert.equal(m['rewards/accuracies'], 0.5);
  close(m['rewards/margins']!, 0.05, 1e-6);
  assert.equal(m['logps/chosen'], -11);
  assert.equal(m['logps/rejected'], -12.5);
  assert.equal(m.loss, 0.7);
  // ties are not wins: policy == reference gives accuracy 0, TRL's "from 0" start
  const tie = preferenceMetrics({ chosenRewards: [0, 0], rejectedRewards: [0, 0], chosenLogps: [1, 1], rejectedLogps: [1, 1], loss: Math.LN2 });
  assert.equal(tie['rewards/accuracies'], 0);
  assert.deepEqual(Object.keys(withPrefix(m, 'eval_')).sort(), Object.keys(m).map((k) => 'eval_' + k).sort());
  // ipo reports per-token averaged rewards (as TRL averages all log-probs for ipo)
  const ri = implicitRewards(inputs(), { beta, losses: ['ipo'] });
  close(arr(ri.chosen)[0]!, 0.1 * 0.25, 1e-6);
  // reference-free (simpo/orpo): β·ā as TRL's CPO/ORPO trainers
  const x = inputs();
  delete x.refChosenLogps;
  delete x.refRejectedLogps;
  const rf = implicitRewards(x, { beta: 2, losses: ['simpo'] });
  close(arr(rf.chosen)[0]!, -5, 1e-6);
  close(arr(rf.rejected)[1]!, -11, 1e-6);
});

test('accumulator: metrics over an interval equal metrics over the concatenation', () => {
  const acc = new PreferenceAccumulator();
  acc.add({ chosenRewards: [1], rejectedRewards: [0], chosenLogps: [-1], rejectedLogps: [-2] });
  acc.add({ chosenRewards: [0, 2], rejectedRewards: [1, 2], chosenLogps: [-3, -5], rejectedLogps: [-4, -6] });
  acc.addLoss(0.5, 1);
  acc.addLoss(0.2, 2);
  const m = acc.summary();
  close(m['rewards/accuracies']!, 1 / 3);
  close(m['rewards/margins']!, 0);
  close(m['logps/chosen']!, -3);
  close(m.loss!, 0.3);
});

test('kto: batch KL baseline from mismatched pairs, clamped ≥ 0; weighted per class', () => {
  assert.deepEqual(mismatchedIndex(3), [2, 0, 1]);
  assert.equal(ktoBaseline([-8, -9, -10], [-8.5, -9.5, -9]), 0); // mean −0 ... = 0
  assert.equal(ktoBaseline([-8, -9, -10], [-7, -9.5, -9]), 0); // negative → clamped
  close(ktoBaseline([-8, -9, -10], [-8.5, -9.5, -10.2]), 0.4);
  // r = logπ − logπref = [1, 0, −2]; desirable = [1, 0, 1]; β=0.1, z₀=0.4, w_D=1, w_U=1.5
  const t = ktoLoss(
    { logps: tf.tensor1d([-5, -6, -7]), refLogps: tf.tensor1d([-6, -6, -5]), desirable: tf.tensor1d([1, 0, 1]) },
    { beta: 0.1, kl: 0.4, desirableWeight: 1, undesirableWeight: 1.5 },
  );
  const e = [1 - sig(0.1 * 0.6), 1.5 * (1 - sig(0.1 * 0.4)), 1 - sig(0.1 * -2.4)];
  e.forEach((v, i) => close(arr(t.losses)[i]!, v));
  close(val(t.loss), (e[0]! + e[1]! + e[2]!) / 3);
});

test('bradley–terry: −log σ(r⁺ − r⁻ − m) + λ·mean((r⁺ + r⁻)²) and RM metrics', () => {
  const c = tf.tensor1d([1, 0.5]);
  const r = tf.tensor1d([0, 1]);
  const t = bradleyTerryLoss(c, r, { margin: tf.tensor1d([0.5, 0]) });
  close(arr(t.losses)[0]!, softplus(-0.5));
  close(arr(t.losses)[1]!, softplus(0.5));
  close(val(t.loss), 0.724077, 1e-5, 'hand value');
  close(val(bradleyTerryLoss(c, r, { margin: tf.tensor1d([0.5, 0]), centerCoefficient: 0.01 }).loss), 0.724077 + 0.01 * 1.625, 1e-5);
  close(val(bradleyTerryLoss(c, c).loss), Math.LN2, 1e-6, 'equal rewards give ln 2');
  const m = rewardModelMetrics({ chosen: [1, 0.5], rejected: [0, 1], loss: 0.7 });
  assert.deepEqual(m, { accuracy: 0.5, margin: 0.25, min_reward: 0, mean_reward: 0.625, max_reward: 1, loss: 0.7 });
  assert.equal(rewardModelMetrics({ chosen: [1], rejected: [1], loss: 0 }).accuracy, 0, 'ties are not wins');
});

// Central differences in float64 on the loss formula vs tfjs's gradient (float32).
function fdCheck(lossOf: (v: tf.Tensor1D) => tf.Scalar, x0: number[], h = 1e-2, tol = 2e-3) {
  const g = arr(tf.grad((v: tf.Tensor) => lossOf(v as tf.Tensor1D))(tf.tensor1d(x0)));
  for (let i = 0; i < x0.length; i++) {
    const up = x0.slice();
    const dn = x0.slice();
    up[i]! += h;
    dn[i]! -= h;
    const fd = (val(lossOf(tf.tensor1d(up))) - val(lossOf(tf.tensor1d(dn)))) / (2 * h);
    assert.ok(Math.abs(g[i]! - fd) < tol, `d/dx${i}: autograd ${g[i]} vs finite difference ${fd}`);
  }
  return g;
}

test('finite-difference gradients: sigmoid DPO (w.r.t. chosen and rejected log-probs)', () => {
  const opts: LossOptions = { beta: 0.5, labelSmoothing: 0.1 };
  const gc = fdCheck((v) => sigmoidLoss({ ...inputs(), chosenLogps: v }, opts, N).loss, P.c);
  // analytic: ∂/∂logπ(y⁺ᵢ) = −β[(1−ε)(1−σ(βδᵢ)) − ε σ(βδᵢ)]/B
  [2, -1].forEach((d, i) => close(gc[i]!, (-0.5 * (0.9 * (1 - sig(0.5 * d)) - 0.1 * sig(0.5 * d))) / 2, 1e-5));
  fdCheck((v) => sigmoidLoss({ ...inputs(), rejectedLogps: v }, opts, N).loss, P.r);
  fdCheck((v) => preferenceLoss({ ...inputs(), chosenLogps: v }, { beta: 0.3, losses: ['sigmoid', 'ipo', 'sft'], weights: [1, 0.2, 0.5] }).loss, P.c);
  fdCheck((v) => orpoLoss({ ...inputs(), chosenLogps: v }, { beta, orpoLambda: 0.5 }, N).loss, P.c, 1e-3);
});

test('finite-difference gradients: Bradley–Terry (with centring)', () => {
  const rr = tf.tensor1d([0.3, -1, 2]);
  fdCheck((v) => bradleyTerryLoss(v, rr, { centerCoefficient: 0.05, margin: tf.tensor1d([0, 1, 0.5]) }).loss, [1, 0.5, -0.7]);
  fdCheck((v) => bradleyTerryLoss(tf.tensor1d([1, 0.5, -0.7]), v).loss, [0.3, -1, 2]);
});

test('gradient accumulation: micro-batch gradients with the whole-batch normaliser sum to the big-batch gradient', () => {
  const big = { c: [-10, -12, -8, -9], r: [-14, -11, -9, -9.5], rc: [-11, -12, -8.5, -9], rr: [-13, -12, -9, -9], lc: [4, 5, 3, 7], lr: [5, 2, 4, 4] };
  const slice = (a: number[], s: number, e: number) => a.slice(s, e);
  const part = (s: number, e: number) => ({ c: slice(big.c, s, e), r: slice(big.r, s, e), rc: slice(big.rc, s, e), rr: slice(big.rr, s, e), lc: slice(big.lc, s, e), lr: slice(big.lr, s, e) });
  const opts = { beta: 0.2, losses: ['sigmoid', 'sft'] as const, weights: [1, 0.3] };
  const gradOf = (p: typeof big, normaliser?: { pairs: number; chosenTokens: number }) =>
    arr(tf.grad((v: tf.Tensor) => preferenceLoss({ ...inputs(p), chosenLogps: v as tf.Tensor1D }, { ...opts, normaliser }).loss)(tf.tensor1d(p.c)));
  const full = gradOf(big);
  const n = { pairs: 4, chosenTokens: 19 };
  const acc = [...gradOf(part(0, 1), n), ...gradOf(part(1, 4), n)];
  full.forEach((g, i) => close(acc[i]!, g, 1e-6, `grad ${i}`));
  // and the loss values add up
  const l = (p: typeof big, nn?: typeof n) => val(preferenceLoss(inputs(p), { ...opts, normaliser: nn }).loss);
  close(l(part(0, 1), n) + l(part(1, 4), n), l(big), 1e-6);
});
