import { test } from 'node:test';
import assert from 'node:assert/strict';
import { detectPreferenceWarnings, type MetricPoint } from '../../src/ml/losses/index.js';

const pt = (step: number, v: Record<string, number>): MetricPoint => ({ step, values: v });

test('loss stuck at ln 2 is flagged; a loss that moved is not', () => {
  const stuck = [0, 10, 20, 30].map((s) => pt(s, { loss: Math.LN2 + (s % 20 === 0 ? 1e-5 : -1e-5) }));
  const w = detectPreferenceWarnings(stuck);
  assert.equal(w.length, 1);
  assert.equal(w[0]!.code, 'loss_at_ln2');
  assert.equal(w[0]!.step, 30);
  const moved = [pt(0, { loss: Math.LN2 }), pt(10, { loss: 0.6 }), pt(20, { loss: 0.4 })];
  assert.deepEqual(detectPreferenceWarnings(moved), []);
  // too few points to judge: the first logged loss is always ln 2
  assert.deepEqual(detectPreferenceWarnings(stuck.slice(0, 2)), []);
  // eval prefix reads eval_ metrics only
  const ev = stuck.map((p) => pt(p.step, { eval_loss: p.values.loss!, loss: 0.3 }));
  assert.equal(detectPreferenceWarnings(ev).length, 0);
  assert.equal(detectPreferenceWarnings(ev, { prefix: 'eval_' })[0]!.code, 'loss_at_ln2');
});

test('likelihood displacement: both chosen and rejected log-probs fall', () => {
  const h = [
    pt(0, { 'logps/chosen': -20, 'logps/rejected': -21, loss: 0.69 }),
    pt(10, { 'logps/chosen': -21, 'logps/rejected': -25, loss: 0.5 }),
    pt(20, { 'logps/chosen': -23, 'logps/rejected': -30, loss: 0.3 }),
  ];
  const w = detectPreferenceWarnings(h);
  assert.equal(w.length, 1);
  assert.equal(w[0]!.code, 'likelihood_displacement');
  assert.match(w[0]!.message, /chosen fell by 3\.000/);
  // chosen rising while rejected falls is the healthy case
  const ok = h.map((p, i) => pt(p.step, { ...p.values, 'logps/chosen': -20 + i }));
  assert.deepEqual(detectPreferenceWarnings(ok), []);
  // a drop below the threshold is noise
  assert.deepEqual(detectPreferenceWarnings(h, { minDrop: 5 }), []);
});

test('likelihood displacement compares the first and last tenth of the points, not two single batches', () => {
  // 40 training points whose batch-to-batch noise (±1.5 nats) is larger than any trend: the last
  // point happens to be low, the first high. Flat on average, so no warning.
  const noise = (i: number) => (i % 2 === 0 ? 1.5 : -1.5);
  const flat = Array.from({ length: 40 }, (_, i) => pt(i * 5, { 'logps/chosen': -20 + noise(i), 'logps/rejected': -21 + noise(i) }));
  flat[0] = pt(0, { 'logps/chosen': -18, 'logps/rejected': -19 });
  flat[39] = pt(195, { 'logps/chosen': -22, 'logps/rejected': -23 });
  assert.deepEqual(detectPreferenceWarnings(flat), []);
  // The same noise on a real fall of 2 nats in both series is flagged, with window means.
  const falling = flat.map((p, i) => pt(p.step, { 'logps/chosen': p.values['logps/chosen']! - (2 * i) / 39, 'logps/rejected': p.values['logps/rejected']! - (2 * i) / 39 }));
  const w = detectPreferenceWarnings(falling);
  assert.equal(w.length, 1);
  assert.match(w[0]!.message, /first tenth/);
});
