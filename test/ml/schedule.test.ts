import { test } from 'node:test';
import assert from 'node:assert/strict';
import { learningRateAt, validateSchedule } from '../../src/ml/train/schedule.js';

const close = (a: number, b: number, tol = 1e-12) => assert.ok(Math.abs(a - b) <= tol, `${a} != ${b}`);

test('cosine with warm-up matches transformers get_cosine_schedule_with_warmup', () => {
  const c = { lr: 1, kind: 'cosine' as const, warmupSteps: 10, totalSteps: 110 };
  close(learningRateAt(c, 0), 0); // HF: the first update after warm-up start uses lr·0
  close(learningRateAt(c, 5), 0.5);
  close(learningRateAt(c, 10), 1);
  close(learningRateAt(c, 35), 0.5 * (1 + Math.cos(Math.PI * 0.25)));
  close(learningRateAt(c, 60), 0.5);
  close(learningRateAt(c, 110), 0);
  close(learningRateAt(c, 500), 0); // clamped after the end
});

test('cosine floor (min ratio), linear and constant', () => {
  const c = { lr: 2, kind: 'cosine' as const, warmupSteps: 0, totalSteps: 100, minLrRatio: 0.1 };
  close(learningRateAt(c, 0), 2);
  close(learningRateAt(c, 50), 2 * (0.1 + 0.9 * 0.5));
  close(learningRateAt(c, 100), 0.2);
  const l = { lr: 1, kind: 'linear' as const, warmupSteps: 4, totalSteps: 104 };
  close(learningRateAt(l, 2), 0.5);
  close(learningRateAt(l, 54), 0.5);
  close(learningRateAt(l, 104), 0);
  const k = { lr: 3e-4, kind: 'constant' as const, warmupSteps: 3, totalSteps: 10 };
  close(learningRateAt(k, 1), 1e-4);
  close(learningRateAt(k, 3), 3e-4);
  close(learningRateAt(k, 1000), 3e-4);
});

test('invalid schedules are rejected', () => {
  assert.throws(() => validateSchedule({ lr: -1, kind: 'cosine', warmupSteps: 0, totalSteps: 10 }), /lr/);
  assert.throws(() => validateSchedule({ lr: 1, kind: 'cosine', warmupSteps: 1.5, totalSteps: 10 }), /warmupSteps/);
  assert.throws(() => validateSchedule({ lr: 1, kind: 'cosine', warmupSteps: 0, totalSteps: 0 }), /totalSteps/);
  assert.throws(() => validateSchedule({ lr: 1, kind: 'cosine', warmupSteps: 0, totalSteps: 5, minLrRatio: 2 }), /minLrRatio/);
  assert.throws(() => validateSchedule({ lr: 1, kind: 'weird' as never, warmupSteps: 0, totalSteps: 5 }), /kind/);
});
