// The training-memory estimate: parameter count of the GPT-2 shape, activations against what
// tf.memory() holds after a real forward under the gradient tape, and the refusal message.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/ml/backend.js';
import { createGpt2 } from '../../src/ml/models/gpt2.js';
import { collate } from '../../src/ml/train/data.js';
import { causalLmLoss } from '../../src/ml/train/lm-loss.js';
import { assertTrainingFits, estimateTrainingMemory } from '../../src/ml/memory.js';
import { familyOf } from '../../src/ml/models/registry.js';
import { parameterCount } from '../../src/ml/models/estimate.js';
import { gpt2ConfigDefaults } from '../../src/ml/models/gpt2.js';

// The family's shape and parameter count of a GPT-2 config given by its keys.
const gpt2 = (c: Record<string, number>) => {
  const config = gpt2ConfigDefaults(c);
  return { shape: familyOf(config).shape(config), params: parameterCount(config) };
};
import { AlignflowError } from '../../src/errors.js';
import { FUSED, fusedAvailable } from '../../src/ml/kernels/fused.js';

test('parameterCount counts what createGpt2 creates', () => {
  const cfg = { vocab_size: 300, n_positions: 40, n_embd: 48, n_layer: 3, n_head: 4 };
  const m = createGpt2(cfg, 1);
  let n = 0;
  for (const v of m.params.values()) n += v.size;
  m.dispose();
  assert.equal(gpt2(cfg).params, n);
});

test('the activation estimate is within 15% of what the tape holds after a forward, on two shapes', async () => {
  await initBackend();
  for (const cfg of [{ vocab_size: 256, n_positions: 64, n_embd: 64, n_layer: 2, n_head: 4 }, { vocab_size: 1000, n_positions: 32, n_embd: 128, n_layer: 1, n_head: 8 }]) {
    const model = createGpt2(cfg, 0);
    const B = 4;
    const T = cfg.n_positions;
    const batch = collate(Array.from({ length: B }, () => ({ ids: Array.from({ length: T }, (_, i) => i % cfg.vocab_size), lossMask: Array<number>(T).fill(1) })), 0);
    const vars = [...model.params.values()];
    const base = tf.memory().numBytes;
    let held = 0;
    const { value, grads } = tf.variableGrads(() => {
      const l = causalLmLoss(model, batch).loss;
      held = tf.memory().numBytes - base;
      return l;
    }, vars);
    // the native backend's fused kernels keep fewer pieces: its own constants
    const e = estimateTrainingMemory({ model: gpt2(cfg).shape, params: gpt2(cfg).params, rows: B, seqLen: T, fused: fusedAvailable(FUSED.layerNorm) });
    assert.ok(Math.abs(e.activations - held) / held < 0.15, `${JSON.stringify(cfg)}: estimated ${e.activations} bytes, held ${held}`);
    value.dispose();
    tf.dispose(Object.values(grads));
    model.dispose();
  }
});

test('a run that cannot fit is refused with the parts, the limit and what to change', () => {
  const small124 = { vocab_size: 50257, n_positions: 1024, n_embd: 768, n_layer: 12, n_head: 12 };
  const input = { model: gpt2(small124).shape, params: gpt2(small124).params, rows: 8, seqLen: 1024 };
  assert.throws(
    () => assertTrainingFits('sft', input, 'wasm'),
    (e: unknown) => e instanceof AlignflowError && e.kind === 'config' && /sft: training needs about [\d.]+ GiB \(weights 0\.46 GiB, gradients 0\.46 GiB, AdamW state 0\.93 GiB, activations [\d.]+ GiB; 8 rows × 1024 tokens a micro-batch\), more than the wasm backend's 4 GiB heap; use the native backend/.test(e.message),
  );
  const ref = gpt2({ vocab_size: 512, n_embd: 128, n_layer: 4, n_head: 4, n_positions: 128 });
  const e = assertTrainingFits('sft', { model: ref.shape, params: ref.params, rows: 16, seqLen: 128 }, 'wasm');
  assert.ok(e.total < 1 << 30);
});
