// Reward models in the *ForSequenceClassification layout for the Llama family: transformers'
// LlamaForSequenceClassification fixture scores match to 1e-4 (pooling at the last non-pad token);
// a saved reward model has score.weight, no lm_head, and the family's class name.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/ml/backend.js';
import { createRewardModel, loadRewardModelDir, saveRewardModelDir } from '../../src/ml/reward.js';
import { createLlama } from '../../src/ml/models/llama.js';
import { readSafetensors } from '../../src/ml/safetensors.js';
import { LLAMA_FAMILY_FIXTURES } from '../helpers/fixtures.js';

before(async () => {
  await initBackend();
});

test('LlamaForSequenceClassification fixture: rewards of a right-padded batch match transformers to 1e-4', async () => {
  const ref = JSON.parse(fs.readFileSync(`${LLAMA_FAMILY_FIXTURES}/llama-reward-fp32.rewards.json`, 'utf8')) as { texts: string[]; ids: number[][]; pad_token_id: number; rewards: number[] };
  const { model: rm, tokenizer } = await loadRewardModelDir(`${LLAMA_FAMILY_FIXTURES}/llama-reward-fp32`);
  assert.equal(rm.padTokenId, ref.pad_token_id);
  ref.texts.forEach((t, i) => assert.deepEqual(tokenizer!.encode(t), ref.ids[i]));
  const T = Math.max(...ref.ids.map((r) => r.length));
  const ids = new Int32Array(ref.ids.length * T).fill(ref.pad_token_id);
  const mask = new Float32Array(ref.ids.length * T);
  ref.ids.forEach((r, b) => r.forEach((id, t) => ((ids[b * T + t] = id), (mask[b * T + t] = 1))));
  const got = rm.rewards(ids, mask, ref.ids.length, T);
  const d = got.dataSync();
  ref.rewards.forEach((w, i) => assert.ok(Math.abs(d[i]! - w) < 1e-4, `${i}: ${d[i]} vs ${w}`));
  got.dispose();
  rm.dispose();
});

test('a Llama reward model (untied base) saves as LlamaForSequenceClassification without lm_head and reloads to the same rewards', async () => {
  const base = createLlama({ model_type: 'qwen2', vocab_size: 40, hidden_size: 16, intermediate_size: 32, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1, max_position_embeddings: 32, tie_word_embeddings: false }, 2);
  const rm = createRewardModel(base, { seed: 3, padTokenId: 0 });
  const ids = Int32Array.from([5, 6, 7, 0, 8, 9, 10, 11]);
  const mask = Float32Array.from([1, 1, 1, 0, 1, 1, 1, 1]);
  const want = rm.rewards(ids, mask, 2, 4).dataSync().slice();
  const dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'rm-')), 'out');
  saveRewardModelDir(rm, undefined, dir);
  const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  assert.deepEqual(cfg.architectures, ['Qwen2ForSequenceClassification']);
  assert.equal(cfg.num_labels, 1);
  const st = readSafetensors(path.join(dir, 'model.safetensors'));
  assert.deepEqual(st.tensors.get('score.weight')!.shape, [1, 16]);
  assert.equal(st.tensors.has('lm_head.weight'), false);
  const { model: again } = await loadRewardModelDir(dir);
  const got = again.rewards(ids, mask, 2, 4).dataSync();
  want.forEach((w, i) => assert.ok(Math.abs(got[i]! - w) < 1e-6));
  assert.throws(() => again.base.forward(tf.tensor2d([[1, 2]], undefined, 'int32')), /without its lm_head/);
  rm.dispose();
  again.dispose();
  fs.rmSync(path.dirname(dir), { recursive: true, force: true });
});
