// Known-answer tests of the Llama family's pieces (RoPE and its scalings, RMSNorm, the GQA head
// mapping, q/k norm) and of its KV cache, padding and generation. Whole-model agreement with
// transformers is in llama-reference.test.ts.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/ml/backend.js';
import { applyRope, createLlama, rmsNorm, ropeAngles, ropeInvFreq, ropeSpec, type LlamaConfig } from '../../src/ml/models/llama.js';
import { attend } from '../../src/ml/models/attention.js';
import { disposeCache, type KVCache } from '../../src/ml/models/types.js';
import { generate } from '../../src/ml/generate.js';
import { loadModelDir } from '../../src/ml/models/io.js';
import { LLAMA_FIXTURES } from '../helpers/fixtures.js';

before(async () => {
  await initBackend();
});

const close = (a: ArrayLike<number>, b: ArrayLike<number>, tol: number, msg = '') => {
  assert.equal(a.length, b.length);
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) <= tol, `${msg}[${i}] ${a[i]} vs ${b[i]}`);
};

test('RoPE inverse frequencies: default, linear and llama3 scaling (values from transformers 5.18)', () => {
  const cfg = (rope: Record<string, unknown>) => ({ rope_parameters: { rope_theta: 10000, ...rope } }) as unknown as LlamaConfig;
  close(ropeInvFreq(8, ropeSpec(cfg({ rope_type: 'default' }))), [1, 0.1, 0.01, 0.001], 1e-12);
  close(ropeInvFreq(8, ropeSpec(cfg({ rope_type: 'linear', factor: 4 }))), [0.25, 0.025, 0.0025, 0.00025], 1e-9);
  const llama3 = ropeSpec(cfg({ rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 100 }));
  close(ropeInvFreq(8, llama3), [1.0, 0.02975352481007576, 0.0012499999720603228, 0.0001250000059371814], 1e-8);
  // transformers 4.x style keys (rope_theta + rope_scaling with "type") read the same
  const old = { rope_theta: 10000, rope_scaling: { type: 'linear', factor: 4 } } as unknown as LlamaConfig;
  close(ropeInvFreq(8, ropeSpec(old)), [0.25, 0.025, 0.0025, 0.00025], 1e-9);
  // refused types: the error names the file, the field, the type and the supported ones
  assert.throws(() => ropeSpec(cfg({ rope_type: 'yarn', factor: 4 })), /^AlignflowError: config\.json: rope_parameters: rope type "yarn" is not supported \(default, linear, llama3\)$/);
  assert.throws(() => ropeSpec({ rope_theta: 10000, rope_scaling: { type: 'dynamic', factor: 2 } } as unknown as LlamaConfig, 'm/config.json'), /^AlignflowError: m\/config\.json: rope_scaling: rope type "dynamic" is not supported \(default, linear, llama3\)$/);
});

test('RoPE rotates pairs (i, i + d/2) by position · inv_freq (rotate-half convention)', () => {
  const inv = ropeInvFreq(4, { type: 'default', theta: 10000, factor: 1, lowFreqFactor: 1, highFreqFactor: 4, originalContext: 1 }); // [1, 0.01]
  const x = tf.tensor4d([1, 2, 3, 4, 1, 2, 3, 4], [1, 1, 2, 4]);
  const { cos, sin } = ropeAngles(tf.tensor2d([[0, 5]], undefined, 'int32'), inv);
  const got = applyRope(x, cos, sin).dataSync();
  const want: number[] = [1, 2, 3, 4]; // position 0: unchanged
  for (const [a, b, f] of [[1, 3, 1], [2, 4, 0.01]] as const) {
    const t = 5 * f;
    want.push(0, 0, 0, 0);
    const i = a === 1 ? 4 : 5;
    want[i] = a * Math.cos(t) - b * Math.sin(t);
    want[i + 2] = b * Math.cos(t) + a * Math.sin(t);
  }
  close(got, want.slice(0, 8), 1e-6);
});

test('RMSNorm: x / sqrt(mean(x²) + eps) · w', () => {
  const got = rmsNorm(tf.tensor2d([[3, 4]]), tf.tensor1d([1, 2]), 1e-6).dataSync();
  const r = Math.sqrt(12.5 + 1e-6);
  close(got, [3 / r, 8 / r], 1e-6);
});

test('grouped-query attention: query head h reads key/value head ⌊h / (H/KV)⌋, as repeat_kv does', () => {
  const [B, H, KV, T, D] = [2, 6, 2, 3, 4];
  const q = tf.randomNormal([B, H, T, D], 0, 1, 'float32', 1) as tf.Tensor4D;
  const k = tf.randomNormal([B, KV, T, D], 0, 1, 'float32', 2) as tf.Tensor4D;
  const v = tf.randomNormal([B, KV, T, D], 0, 1, 'float32', 3) as tf.Tensor4D;
  const bias = tf.zeros([1, 1, T, T]) as tf.Tensor4D;
  const got = attend(q, k, v, bias, 0.5);
  // reference: copy each kv head to its H/KV query heads, then plain multi-head attention
  const rep = (t: tf.Tensor4D) => tf.concat(Array.from({ length: H }, (_, h) => tf.slice(t, [0, Math.floor(h / (H / KV)), 0, 0], [B, 1, T, D])), 1) as tf.Tensor4D;
  const want = attend(q, rep(k), rep(v), bias, 0.5);
  close(got.dataSync(), want.dataSync(), 1e-6);
  // a constant value per kv head shows the mapping directly: heads 0-2 read 1, heads 3-5 read 2
  const vc = tf.concat([tf.ones([B, 1, T, D]), tf.fill([B, 1, T, D], 2)], 1) as tf.Tensor4D;
  const out = attend(q, k, vc, bias, 0.5).arraySync();
  for (let h = 0; h < H; h++) assert.ok(Math.abs(out[0]![h]![1]![0]! - (h < 3 ? 1 : 2)) < 1e-6, `head ${h}`);
});

test('qwen3 q/k norm: with k_norm weights 0 every score is 0, so each position averages the values it sees', () => {
  const m = createLlama({ model_type: 'qwen3', vocab_size: 40, hidden_size: 16, intermediate_size: 32, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1, head_dim: 8, max_position_embeddings: 32 }, 3);
  assert.ok(m.params.has('model.layers.0.self_attn.q_norm.weight'));
  assert.deepEqual(m.params.get('model.layers.0.self_attn.k_norm.weight')!.shape, [8]);
  const ids = tf.tensor2d([[3, 7, 9, 11]], undefined, 'int32');
  const a = m.forward(ids).logits.dataSync();
  m.params.get('model.layers.0.self_attn.k_norm.weight')!.assign(tf.zeros([8]));
  const b = m.forward(ids).logits.dataSync();
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  assert.ok(d > 1e-3, 'k_norm takes part in the forward pass');
  // position 0 sees only itself: the same with or without scores
  close(a.slice(0, 40), b.slice(0, 40), 1e-5);
  m.dispose();
});

test('llama KV cache (GQA: the cache holds the key/value heads only) equals a full forward', async () => {
  const { model } = await loadModelDir(`${LLAMA_FIXTURES}/model-llama-gqa-fp32`);
  const seq = [[5, 17, 99, 3, 250, 8, 41, 376, 12, 60], [7, 7, 300, 1, 2, 90, 14, 15, 16, 200]];
  const full = model.forward(tf.tensor2d(seq, undefined, 'int32'));
  const want = full.logits.arraySync();
  let cache: KVCache | undefined;
  const got: number[][][] = [[], []];
  for (const [s, e] of [[0, 4], [4, 5], [5, 7], [7, 8], [8, 10]]) {
    const out = model.forward(tf.tensor2d(seq.map((r) => r.slice(s, e)), undefined, 'int32'), { cache, useCache: true });
    disposeCache(cache);
    cache = out.cache;
    assert.deepEqual(cache!.layers[0]!.k.shape, [2, 2, e, 12]); // 2 kv heads, not 4
    out.logits.arraySync().forEach((rows, b) => got[b]!.push(...rows));
    tf.dispose([out.logits, out.hidden]);
  }
  disposeCache(cache);
  close(got.flat(2), want.flat(2), 1e-4);
  model.dispose();
});

test('llama generation: batched prompts of different lengths (left padding, explicit positions) give each prompt\'s own greedy tokens; eos lists stop', async () => {
  const { model } = await loadModelDir(`${LLAMA_FIXTURES}/model-qwen2-bf16`);
  const prompts = [[377, 84, 82, 264, 198, 54], [377, 84], [12, 40, 41, 42, 43, 44, 45, 46]];
  const batched = await generate(model, prompts, { maxNewTokens: 6, temperature: 0, eosTokenId: null });
  for (let i = 0; i < prompts.length; i++) {
    const alone = await generate(model, [prompts[i]!], { maxNewTokens: 6, temperature: 0, eosTokenId: null });
    assert.deepEqual(batched.tokens[i], alone.tokens[0], `prompt ${i}`);
    const noCache = await generate(model, [prompts[i]!], { maxNewTokens: 6, temperature: 0, eosTokenId: null, useCache: false });
    assert.deepEqual(noCache.tokens[0], alone.tokens[0]);
  }
  // any id of an eos list stops its row, and only that row
  const stopAt = batched.tokens[0]![2]!;
  const other = batched.tokens[1]!.includes(stopAt) || batched.tokens[2]!.includes(stopAt) ? -1 : stopAt;
  const stopped = await generate(model, prompts, { maxNewTokens: 6, temperature: 0, eosTokenId: [383, stopAt] });
  assert.deepEqual(stopped.tokens[0], batched.tokens[0]!.slice(0, batched.tokens[0]!.indexOf(stopAt) + 1));
  assert.equal(stopped.finishReasons[0], 'eos');
  if (other !== -1) assert.deepEqual(stopped.tokens[1], batched.tokens[1]);
  model.dispose();
});

test('mistral: a sequence beyond sliding_window is refused with a clear error', () => {
  const m = createLlama({ model_type: 'mistral', vocab_size: 30, hidden_size: 16, intermediate_size: 32, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1, max_position_embeddings: 64, sliding_window: 8 }, 1);
  const ok = m.forward(tf.zeros([1, 8], 'int32') as tf.Tensor2D);
  tf.dispose([ok.logits, ok.hidden]);
  assert.throws(() => m.forward(tf.zeros([1, 9], 'int32') as tf.Tensor2D), /exceeds the model's sliding_window 8/);
  m.dispose();
});

test('llama forward leaks no tensors; createLlama is deterministic per seed with transformers\' init', () => {
  const cfg = { model_type: 'llama', vocab_size: 50, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 32, initializer_range: 0.02, tie_word_embeddings: false };
  const a = createLlama(cfg, 5);
  const b = createLlama(cfg, 5);
  for (const [k, v] of a.params) assert.deepEqual(Array.from(v.dataSync()), Array.from(b.params.get(k)!.dataSync()), k);
  assert.ok(a.params.has('lm_head.weight'));
  assert.deepEqual(Array.from(a.params.get('model.norm.weight')!.dataSync()), new Array(32).fill(1));
  const ids = tf.tensor2d([[1, 2, 3]], undefined, 'int32');
  const mask = tf.tensor2d([[1, 1, 1]]);
  const before = tf.memory().numTensors;
  for (let i = 0; i < 3; i++) {
    const r = a.forward(ids, { attentionMask: mask });
    tf.dispose([r.logits, r.hidden]);
    a.hiddenStates(ids).dispose();
  }
  assert.equal(tf.memory().numTensors, before);
  tf.dispose([ids, mask]);
  a.dispose();
  b.dispose();
});
