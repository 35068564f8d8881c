// Guards for engine behaviour the demo depends on, found while tuning it. The SFT loss once read
// target logits through tf.oneHot(…, 'float32'), which the wasm backend fills with int32 bit
// patterns (1 → 1.4e-45): the "loss" became logsumexp alone and training drove it negative.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/ml/backend.js';
import { tokenNll } from '../../src/ml/train/lm-loss.js';

test('tokenNll equals logsumexp − target logit on the active backend', async () => {
  await initBackend();
  const B = 3, T = 7, V = 50;
  const logits = tf.randomNormal([B, T, V], -4, 3, 'float32', 7) as tf.Tensor3D;
  const idsArr = Array.from({ length: B }, (_, i) => Array.from({ length: T }, (_, t) => (i * 13 + t * 7) % V));
  const ids = tf.tensor2d(idsArr, [B, T], 'int32');
  const L = logits.arraySync();
  const got = tokenNll(logits, ids).arraySync();
  for (let i = 0; i < B; i++) {
    for (let t = 0; t < T - 1; t++) {
      const row = L[i]![t]!;
      const m = Math.max(...row);
      const lse = m + Math.log(row.reduce((a, x) => a + Math.exp(x - m), 0));
      const want = lse - row[idsArr[i]![t + 1]!]!;
      assert.ok(Math.abs(got[i]![t]! - want) < 1e-3, `nll[${i}][${t}] = ${got[i]![t]}, want ${want} (backend ${tf.getBackend()})`);
      assert.ok(got[i]![t]! > 0);
    }
  }
  tf.dispose([logits, ids]);
});
