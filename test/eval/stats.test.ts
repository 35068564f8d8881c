import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/ml/train/rng.js';
import { bootstrap, mean, normalQuantile, orderConsistency, tally, wilsonInterval, winRateCI, winRateOf, histogram, quantileSorted } from '../../src/eval/stats.js';
import { lengthControlledWinRate } from '../../src/eval/length-control.js';
import { estimateKl, sequenceKl } from '../../src/eval/kl.js';
import { contamination } from '../../src/eval/contamination.js';
import { heldOutLoss } from '../../src/eval/perplexity.js';
import { implicitRewardMetrics, rewardModelAccuracy } from '../../src/eval/preference.js';
import { trainingWarnings } from '../../src/eval/warnings.js';

test('normalQuantile matches known values', () => {
  assert.ok(Math.abs(normalQuantile(0.975) - 1.959963985) < 1e-8);
  assert.ok(Math.abs(normalQuantile(0.5)) < 1e-12);
  assert.ok(Math.abs(normalQuantile(0.001) + 3.090232306) < 1e-7);
});

test('quantileSorted interpolates like numpy', () => {
  assert.equal(quantileSorted([1, 2, 3, 4], 0.5), 2.5);
  assert.equal(quantileSorted([1, 2, 3, 4, 5], 0.25), 2);
});

test('ties count half, errors are not ties', () => {
  const t = tally(['win', 'tie', 'loss', 'win', 'error']);
  assert.deepEqual(t, { wins: 2, ties: 1, losses: 1, errors: 1, n: 4 });
  assert.equal(winRateOf(t), 2.5 / 4);
});

test('bootstrap CI of a Bernoulli mean agrees with Wilson and the normal approximation (n=2000, p=0.7)', () => {
  const rng = new Rng(42);
  const n = 2000;
  const verdicts = Array.from({ length: n }, () => [rng.next() < 0.7 ? 'win' : 'loss'] as ('win' | 'loss')[]);
  const ci = winRateCI(verdicts, { resamples: 2000, seed: 7 });
  const wins = verdicts.filter((v) => v[0] === 'win').length;
  const p = wins / n;
  assert.equal(ci.value, p);
  const w = wilsonInterval(wins, n);
  const half = 1.959963985 * Math.sqrt((p * (1 - p)) / n); // ≈ 0.020
  // Monte-Carlo error of a 2000-resample percentile is ~0.002 here; allow 0.004.
  assert.ok(Math.abs(ci.lo - w.lo) < 0.004, `lo ${ci.lo} vs Wilson ${w.lo}`);
  assert.ok(Math.abs(ci.hi - w.hi) < 0.004, `hi ${ci.hi} vs Wilson ${w.hi}`);
  assert.ok(Math.abs(ci.hi - ci.lo - 2 * half) < 0.005, `width ${ci.hi - ci.lo} vs ${2 * half}`);
  assert.equal(ci.method, 'percentile-bootstrap');
  // Seeded: identical on a rerun; different with another seed.
  assert.deepEqual(winRateCI(verdicts, { resamples: 2000, seed: 7 }), ci);
  assert.notEqual(winRateCI(verdicts, { resamples: 2000, seed: 8 }).lo, ci.lo);
});

test('bootstrap resamples prompts: both orders of a prompt move together', () => {
  // Every prompt: one win and one loss (an order-biased judge) → every prompt scores ½, so the CI collapses to ½.
  const perPrompt = Array.from({ length: 50 }, () => ['win', 'loss'] as ('win' | 'loss')[]);
  const ci = winRateCI(perPrompt, { resamples: 500 });
  assert.equal(ci.value, 0.5);
  assert.equal(ci.lo, 0.5);
  assert.equal(ci.hi, 0.5);
  assert.equal(ci.n, 100);
});

test('a prompt whose every verdict errored is left out of the rate, and counted', () => {
  const ci = winRateCI([['win'], ['error', 'error'], ['loss']], { resamples: 200 });
  assert.equal(ci.value, 0.5);
  assert.equal(ci.errors, 2);
});

test('bootstrap of a constant is that constant', () => {
  const ci = bootstrap([3, 3, 3], mean, { resamples: 100 });
  assert.deepEqual([ci.value, ci.lo, ci.hi], [3, 3, 3]);
});

test('order consistency counts same-verdict pairs, skipping errors', () => {
  const r = orderConsistency([
    { forward: 'win', backward: 'win' },
    { forward: 'win', backward: 'loss' },
    { forward: 'tie', backward: 'tie' },
    { forward: 'error', backward: 'win' },
  ]);
  assert.deepEqual(r, { n: 3, consistent: 2, rate: 2 / 3 });
});

test('length-controlled win rate equals the raw one when lengths are equal', () => {
  const y = [1, 1, 0.5, 0, 1, 0, 1, 1];
  const lc = lengthControlledWinRate(y, y.map(() => 0));
  assert.equal(lc.value, mean(y));
  assert.equal(lc.model, 'intercept-only');
  // Also when lengths vary but are independent of the verdict by construction (exactly balanced).
  const y2 = [1, 0, 1, 0, 1, 1, 0, 1];
  const d2 = [10, 10, -10, -10, 5, 5, -5, -5];
  // Each length value has one win and one loss except the last pairs: make it exactly balanced.
  const yb = [1, 0, 1, 0, 1, 0, 1, 0];
  const lcb = lengthControlledWinRate(yb, d2);
  assert.ok(Math.abs(lcb.value - 0.5) < 1e-9, `balanced: ${lcb.value}`);
  assert.ok(Math.abs(lcb.slope) < 1e-9);
  assert.ok(lengthControlledWinRate(y2, d2).converged);
});

test('length-controlled win rate removes a planted length bias', () => {
  const rng = new Rng(3);
  const n = 4000;
  const y: number[] = [];
  const d: number[] = [];
  // Candidate is usually longer (Δ ~ N(60, 60)); the judge has no real preference (intercept 0) but
  // likes length: P(win) = σ(2·tanh(Δ/sd)).
  const deltas = Array.from({ length: n }, () => 60 + 60 * rng.normal());
  const dm = mean(deltas);
  const sd = Math.sqrt(mean(deltas.map((x) => (x - dm) ** 2)));
  for (const delta of deltas) {
    const p = 1 / (1 + Math.exp(-2 * Math.tanh(delta / sd)));
    y.push(rng.next() < p ? 1 : 0);
    d.push(delta);
  }
  const raw = mean(y);
  const lc = lengthControlledWinRate(y, d);
  assert.ok(raw > 0.68, `raw win rate should be inflated by length, got ${raw}`);
  assert.ok(Math.abs(lc.value - 0.5) < 0.04, `LC win rate should be ≈0.5, got ${lc.value}`);
  assert.ok(Math.abs(lc.slope - 2) < 0.3, `slope ≈ 2, got ${lc.slope}`);
  assert.ok(lc.converged);
});

test('length control survives perfect separation by length and rejects bad input', () => {
  const lc = lengthControlledWinRate([1, 1, 1, 0, 0, 0], [5, 6, 7, -5, -6, -7]);
  assert.ok(Number.isFinite(lc.value) && Math.abs(lc.value - 0.5) < 1e-6, String(lc.value));
  assert.throws(() => lengthControlledWinRate([2], [0]), /outside/);
  assert.throws(() => lengthControlledWinRate([1], [0, 1]), /length differences/);
});

test('KL of a model against itself is exactly 0; k1 and k3 agree with a hand computation', () => {
  const lp = [-1.2, -0.3, -2.5];
  assert.deepEqual(sequenceKl({ policy: lp, reference: lp }), { k1: 0, k3: 0 });
  const est = estimateKl([{ policy: lp, reference: lp }, { policy: [-0.5], reference: [-0.5] }], { resamples: 50 });
  assert.equal(est.k1.value, 0);
  assert.equal(est.k3.value, 0);
  const s = sequenceKl({ policy: [Math.log(0.5)], reference: [Math.log(0.25)] });
  assert.ok(Math.abs(s.k1 - Math.log(2)) < 1e-12);
  assert.ok(Math.abs(s.k3 - (0.5 - 1 + Math.log(2))) < 1e-12);
  assert.throws(() => sequenceKl({ policy: [0, 0], reference: [0] }), /token log-probs/);
});

test('KL estimators are unbiased on a known categorical pair (Monte Carlo)', () => {
  // π = [0.7, 0.2, 0.1], π_ref = [0.4, 0.4, 0.2]: KL = Σ π log(π/π_ref).
  const pi = [0.7, 0.2, 0.1];
  const ref = [0.4, 0.4, 0.2];
  const trueKl = pi.reduce((a, p, i) => a + p * Math.log(p / ref[i]!), 0);
  const rng = new Rng(11);
  const samples = Array.from({ length: 20000 }, () => {
    const u = rng.next();
    const k = u < 0.7 ? 0 : u < 0.9 ? 1 : 2;
    return { policy: [Math.log(pi[k]!)], reference: [Math.log(ref[k]!)] };
  });
  const est = estimateKl(samples, { resamples: 200 });
  assert.ok(Math.abs(est.k1.value - trueKl) < 0.01, `k1 ${est.k1.value} vs ${trueKl}`);
  assert.ok(Math.abs(est.k3.value - trueKl) < 0.01, `k3 ${est.k3.value} vs ${trueKl}`);
  assert.ok(est.k1.lo < trueKl && trueKl < est.k1.hi);
});

test('contamination: normalized exact matches are counted', () => {
  const c = contamination(['Write a poem', 'The movie was', 'unseen prompt'], ['write  a POEM ', 'the movie was', 'other']);
  assert.equal(c.overlapping, 2);
  assert.deepEqual(c.indices, [0, 1]);
  assert.equal(c.rate, 2 / 3);
  assert.equal(contamination(['a'], ['b']).overlapping, 0);
});

test('held-out loss is token-weighted NLL, perplexity its exp', () => {
  const r = heldOutLoss([{ logp: -6, tokens: 3 }, { logp: -2, tokens: 1 }]);
  assert.equal(r.loss, 2);
  assert.ok(Math.abs(r.perplexity - Math.exp(2)) < 1e-12);
});

test('implicit reward metrics follow TRL', () => {
  const m = implicitRewardMetrics([
    { policyChosen: -10, policyRejected: -12, referenceChosen: -11, referenceRejected: -11 }, // r_w 0.1, r_l -0.1
    { policyChosen: -10, policyRejected: -9, referenceChosen: -10, referenceRejected: -10 }, // r_w 0, r_l 0.1
  ], 0.1);
  assert.ok(Math.abs(m['eval_rewards/chosen'] - 0.05) < 1e-12);
  assert.ok(Math.abs(m['eval_rewards/rejected'] - 0) < 1e-12);
  assert.equal(m['eval_rewards/accuracies'], 0.5);
  assert.ok(Math.abs(m['eval_rewards/margins'] - 0.05) < 1e-12);
  assert.throws(() => implicitRewardMetrics([], 0), /β/);
  assert.deepEqual(rewardModelAccuracy([{ chosen: 1, rejected: 0 }, { chosen: 0, rejected: 0 }]), { accuracy: 0.5, margin: 0.5, pairs: 2 });
});

test('histogram bins with a shared range', () => {
  const h = histogram([0, 0.1, 0.5, 1], 2, [0, 1]);
  assert.deepEqual(h.counts, [2, 2]);
  assert.deepEqual(h.edges, [0, 0.5, 1]);
});

test('training warnings: loss stuck at ln 2, likelihood displacement, NaN guard', () => {
  const steps = (f: (i: number) => number): [number, number][] => Array.from({ length: 20 }, (_, i) => [i, f(i)]);
  const w = trainingWarnings([
    { stage: 'dpo', kind: 'dpo', metric: 'loss', points: steps(() => Math.LN2 + 0.0004) },
    { stage: 'dpo', kind: 'dpo', metric: 'logps/chosen', points: steps((i) => -20 - i) },
    { stage: 'dpo', kind: 'dpo', metric: 'logps/rejected', points: steps((i) => -20 - 2 * i) },
    { stage: 'dpo', kind: 'dpo', metric: 'rewards/margins', points: steps((i) => i * 0.1) },
    { stage: 'sft', kind: 'sft', metric: 'nan_guard/skipped', points: steps((i) => (i === 5 ? 1 : 0)) },
  ]);
  assert.deepEqual(w.map((x) => x.code).sort(), ['dpo_loss_stuck', 'likelihood_displacement', 'nan_guard']);
  const ok = trainingWarnings([{ stage: 'dpo', kind: 'dpo', metric: 'loss', points: steps((i) => 0.69 - i * 0.02) }]);
  assert.equal(ok.length, 0);
});
