// The training-memory estimate: parameter count of the GPT-2 shape, activations against what
// tf.memory() holds after a real forward under the gradient tape (GPT-2 and the Llama family, with
// and without LoRA), and the refusal message.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/ml/backend.js';
import { createGpt2 } from '../../src/ml/models/gpt2.js';
import { collate } from '../../src/ml/train/data.js';
import { causalLmLoss } from '../../src/ml/train/lm-loss.js';
import { assertTrainingFits, estimateTrainingMemory, trainsFused } from '../../src/ml/memory.js';
import { attachLora } from '../../src/ml/lora.js';
import type { CausalLM } from '../../src/ml/models/types.js';
import { familyOf } from '../../src/ml/models/registry.js';
import { parameterCount } from '../../src/ml/models/estimate.js';
import { gpt2ConfigDefaults } from '../../src/ml/models/gpt2.js';

// The family's shape and parameter count of a GPT-2 config given by its keys.
const gpt2 = (c: Record<string, number>) => {
  const config = gpt2ConfigDefaults(c);
  return { shape: familyOf(config).shape(config), activationModel: familyOf(config).activationModel, params: parameterCount(config) };
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
    const held = tapeBytes(model, [...model.params.values()], B, T);
    // the native backend's fused kernels keep fewer pieces: its own constants
    const e = estimateTrainingMemory({ model: gpt2(cfg).shape, activationModel: gpt2(cfg).activationModel, params: gpt2(cfg).params, rows: B, seqLen: T, fused: fusedAvailable(FUSED.layerNorm) });
    assert.ok(Math.abs(e.activations - held) / held < 0.15, `${JSON.stringify(cfg)}: estimated ${e.activations} bytes, held ${held}`);
    model.dispose();
  }
});

/** What the tape holds at the end of the SFT forward inside variableGrads (what memory.ts's constants are fitted to). */
function tapeBytes(model: CausalLM, vars: ReturnType<CausalLM['params']['get']>[], rows: number, T: number): number {
  const V = model.vocabSize;
  const batch = collate(Array.from({ length: rows }, (_, r) => ({ ids: Array.from({ length: T }, (_, i) => (i * 7 + r) % V), lossMask: Array<number>(T).fill(1) })), 0);
  const base = tf.memory().numBytes;
  let held = 0;
  const { value, grads } = tf.variableGrads(() => {
    const l = causalLmLoss(model, batch).loss;
    held = tf.memory().numBytes - base;
    return l;
  }, vars as tf.Variable[]);
  value.dispose();
  tf.dispose(Object.values(grads));
  return held;
}

test('Llama family and LoRA: the estimate covers what the tape holds, within 15%, on GQA, Qwen3 q/k-norm and LoRA (Qwen2, GPT-2) shapes', async () => {
  await initBackend();
  const cases = [
    { config: { model_type: 'llama', vocab_size: 2000, hidden_size: 96, intermediate_size: 256, num_hidden_layers: 2, num_attention_heads: 6, num_key_value_heads: 2, max_position_embeddings: 256, tie_word_embeddings: true }, rows: 2, T: 64 },
    { config: { model_type: 'qwen3', vocab_size: 1000, hidden_size: 64, intermediate_size: 192, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, head_dim: 32, max_position_embeddings: 256, tie_word_embeddings: true }, rows: 2, T: 64 },
    { config: { model_type: 'qwen2', vocab_size: 1000, hidden_size: 64, intermediate_size: 160, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 4, max_position_embeddings: 256, tie_word_embeddings: false }, rows: 3, T: 48, lora: true },
    // GPT-2 with LoRA: its adapters' products were not counted at all (up to 1.66x under)
    { config: { model_type: 'gpt2', vocab_size: 512, n_embd: 128, n_layer: 2, n_head: 4, n_positions: 128 }, rows: 4, T: 64, lora: true },
  ];
  for (const c of cases) {
    const f = familyOf(c.config as never);
    const config = f.withDefaults(c.config);
    const model = f.create(config, 0);
    const adapter = c.lora ? attachLora(model, { r: 8, target_modules: 'all-linear' }, 1) : undefined;
    const held = tapeBytes(model, [...(adapter ?? model).params.values()], c.rows, c.T);
    let loraOutputs = 0;
    for (const p of adapter?.pairs.values() ?? []) loraOutputs += p.layer.outFeatures + 8;
    // the constants for the backend this test runs on: native's fused kernels, or the unfused tape
    const e = estimateTrainingMemory({ model: f.shape(config), activationModel: f.activationModel, loraOutputs, params: parameterCount(config), rows: c.rows, seqLen: c.T, fused: trainsFused(config.model_type) });
    const what = `${config.model_type}${c.lora ? ' + LoRA' : ''}: estimated ${e.activations} bytes, held ${held}`;
    assert.ok(e.activations >= held, `under-estimate: ${what}`);
    assert.ok(e.activations <= 1.15 * held, `more than 15% over: ${what}`);
    adapter?.dispose();
    model.dispose();
  }
});

test('a run that cannot fit is refused with the parts, the limit and what to change', () => {
  const small124 = { vocab_size: 50257, n_positions: 1024, n_embd: 768, n_layer: 12, n_head: 12 };
  const input = { model: gpt2(small124).shape, activationModel: gpt2(small124).activationModel, params: gpt2(small124).params, rows: 8, seqLen: 1024 };
  assert.throws(
    () => assertTrainingFits('sft', input, 'wasm'),
    (e: unknown) => e instanceof AlignflowError && e.kind === 'config' && /sft: training needs about [\d.]+ GiB \(weights 0\.46 GiB, gradients 0\.46 GiB, AdamW state 0\.93 GiB, activations [\d.]+ GiB; 8 rows × 1024 tokens a micro-batch\), more than the wasm backend's 4 GiB heap; use the native backend/.test(e.message),
  );
  const ref = gpt2({ vocab_size: 512, n_embd: 128, n_layer: 4, n_head: 4, n_positions: 128 });
  const e = assertTrainingFits('sft', { model: ref.shape, activationModel: ref.activationModel, params: ref.params, rows: 16, seqLen: 128 }, 'wasm');
  assert.ok(e.total < 1 << 30);
});
