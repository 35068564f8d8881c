import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/ml/backend.js';
import { loadModelDir } from '../../src/ml/models/io.js';
import { createGpt2, geluNew, gpt2ParamShapes } from '../../src/ml/models/gpt2.js';
import { disposeCache, type KVCache } from '../../src/ml/models/types.js';
import { GPT2_FIXTURES } from '../helpers/fixtures.js';

const FX = GPT2_FIXTURES;

before(async () => {
  await initBackend();
});

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

for (const name of ['model-fp32', 'model-bf16']) {
  test(`${name}: logits match the float64 reference (transformers GPT2LMHeadModel)`, async () => {
    const ref = JSON.parse(fs.readFileSync(`${FX}/${name}.logits.json`, 'utf8')) as { text: string; ids: number[]; logits: number[][] };
    const { model, tokenizer } = await loadModelDir(`${FX}/${name}`);
    assert.deepEqual(tokenizer!.encode(ref.text), ref.ids);
    const ids = tf.tensor2d([ref.ids], undefined, 'int32');
    const { logits, hidden } = model.forward(ids);
    assert.deepEqual(logits.shape, [1, ref.ids.length, 377]);
    assert.deepEqual(hidden.shape, [1, ref.ids.length, 64]);
    const d = maxAbsDiff(logits.dataSync(), ref.logits.flat());
    // logits span about ±30 here; float32 gets within ~1e-5
    assert.ok(d < 1e-4, `max |Δlogit| ${d}`);
    tf.dispose([ids, logits, hidden]);
    model.dispose();
  });
}

test('KV-cache forward (prefix, then one token at a time) equals a full forward', async () => {
  const { model } = await loadModelDir(`${FX}/model-fp32`);
  const seq = [[5, 17, 99, 3, 250, 8, 41, 376, 12, 60], [7, 7, 300, 1, 2, 90, 14, 15, 16, 200]];
  const full = model.forward(tf.tensor2d(seq, undefined, 'int32'));
  const fullData = full.logits.arraySync();
  let cache: KVCache | undefined;
  const step: number[][][] = [[], []];
  // prefix of 4, then 6 single tokens
  const chunks = [[0, 4], [4, 5], [5, 6], [6, 7], [7, 8], [8, 9], [9, 10]];
  for (const [s, e] of chunks) {
    const ids = tf.tensor2d(seq.map((r) => r.slice(s, e)), undefined, 'int32');
    const out = model.forward(ids, { cache, useCache: true });
    disposeCache(cache);
    cache = out.cache;
    assert.equal(cache!.length, e);
    assert.deepEqual(cache!.layers[0]!.k.shape, [2, 4, e, 16]);
    const l = out.logits.arraySync();
    for (let b = 0; b < 2; b++) step[b]!.push(...l[b]!);
    tf.dispose([ids, out.logits, out.hidden]);
  }
  disposeCache(cache);
  const d = maxAbsDiff(step.flat(2), fullData.flat(2));
  assert.ok(d < 1e-4, `cache vs full ${d}`);
  tf.dispose([full.logits, full.hidden]);
  model.dispose();
});

test('padding: a right-padded row gives the logits of the unpadded sequence; left padding with positionIds too', async () => {
  const { model } = await loadModelDir(`${FX}/model-fp32`);
  const short = [10, 20, 30, 40];
  const alone = model.forward(tf.tensor2d([short], undefined, 'int32')).logits.arraySync()[0]!;
  const right = model.forward(tf.tensor2d([[...short, 0, 0, 0], [1, 2, 3, 4, 5, 6, 7]], undefined, 'int32'), {
    attentionMask: tf.tensor2d([[1, 1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1, 1]]),
  }).logits.arraySync()[0]!;
  assert.ok(maxAbsDiff(right.slice(0, 4).flat(), alone.flat()) < 1e-4);
  const left = model.forward(tf.tensor2d([[0, 0, 0, ...short]], undefined, 'int32'), {
    attentionMask: tf.tensor2d([[0, 0, 0, 1, 1, 1, 1]]),
    positionIds: tf.tensor2d([[0, 0, 0, 0, 1, 2, 3]], undefined, 'int32'),
  }).logits.arraySync()[0]!;
  assert.ok(maxAbsDiff(left.slice(3).flat(), alone.flat()) < 1e-4);
  // without the mask the padding changes the answer: the mask is doing something
  const unmasked = model.forward(tf.tensor2d([[0, 0, 0, ...short]], undefined, 'int32'), {
    positionIds: tf.tensor2d([[0, 0, 0, 0, 1, 2, 3]], undefined, 'int32'),
  }).logits.arraySync()[0]!;
  assert.ok(maxAbsDiff(unmasked.slice(3).flat(), alone.flat()) > 1e-2);
  model.dispose();
});

test('a sequence longer than n_positions is refused', async () => {
  const m = createGpt2({ vocab_size: 50, n_positions: 8, n_embd: 16, n_layer: 1, n_head: 2 }, 1);
  assert.throws(() => m.forward(tf.zeros([1, 9], 'int32') as tf.Tensor2D), /longer than the model's context/);
  m.dispose();
});

test('createGpt2: HF names and shapes, HF init statistics, deterministic per seed', () => {
  const cfg = { vocab_size: 300, n_positions: 64, n_embd: 64, n_layer: 3, n_head: 4, initializer_range: 0.02 };
  const a = createGpt2(cfg, 7);
  const b = createGpt2(cfg, 7);
  const c = createGpt2(cfg, 8);
  const shapes = gpt2ParamShapes(a.config);
  assert.deepEqual([...a.params.keys()], [...shapes.keys()]);
  assert.equal(a.params.size, 4 + 12 * 3);
  assert.deepEqual(a.params.get('transformer.h.0.attn.c_attn.weight')!.shape, [64, 192]); // Conv1D [in, out]
  assert.deepEqual(a.params.get('transformer.h.2.mlp.c_fc.weight')!.shape, [64, 256]);
  const std = (n: string) => {
    const d = Array.from(a.params.get(n)!.dataSync());
    const m = d.reduce((s, x) => s + x, 0) / d.length;
    return Math.sqrt(d.reduce((s, x) => s + (x - m) ** 2, 0) / d.length);
  };
  assert.ok(Math.abs(std('transformer.wte.weight') - 0.02) < 0.002);
  assert.ok(Math.abs(std('transformer.h.1.mlp.c_fc.weight') - 0.02) < 0.002);
  assert.ok(Math.abs(std('transformer.h.1.mlp.c_proj.weight') - 0.02 / Math.sqrt(6)) < 0.001);
  assert.ok(Math.abs(std('transformer.h.1.attn.c_proj.weight') - 0.02 / Math.sqrt(6)) < 0.001);
  assert.deepEqual(Array.from(a.params.get('transformer.ln_f.weight')!.dataSync()), new Array(64).fill(1));
  assert.deepEqual(Array.from(a.params.get('transformer.h.0.attn.c_attn.bias')!.dataSync()), new Array(192).fill(0));
  for (const [k, v] of a.params) assert.deepEqual(Array.from(v.dataSync()), Array.from(b.params.get(k)!.dataSync()), k);
  assert.notDeepEqual(Array.from(a.params.get('transformer.wte.weight')!.dataSync()), Array.from(c.params.get('transformer.wte.weight')!.dataSync()));
  // two models coexist (variable names are prefixed per model)
  for (const m of [a, b, c]) m.dispose();
});

test('gelu_new is the tanh approximation', () => {
  const xs = [-3, -1, -0.5, 0, 0.5, 1, 3];
  const got = geluNew(tf.tensor1d(xs)).dataSync();
  xs.forEach((x, i) => {
    const want = 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
    assert.ok(Math.abs(got[i]! - want) < 1e-6);
  });
});

test('forward leaks no tensors', () => {
  const m = createGpt2({ vocab_size: 40, n_positions: 16, n_embd: 16, n_layer: 2, n_head: 2 }, 3);
  const ids = tf.tensor2d([[1, 2, 3]], undefined, 'int32');
  const before = tf.memory().numTensors;
  for (let i = 0; i < 3; i++) {
    const r = m.forward(ids, { attentionMask: tf.tensor2d([[1, 1, 1]]) });
    tf.dispose([r.logits, r.hidden]);
  }
  // the three attention masks we made are the only new tensors
  assert.equal(tf.memory().numTensors, before + 3);
  m.dispose();
});

test('KV cache with left padding: the cache keeps the padding mask; steps pass only their own mask', async () => {
  const { model } = await loadModelDir(`${FX}/model-fp32`);
  // row 0 has 2 padding tokens on the left
  const seq = [[0, 0, 11, 12, 13, 14, 15], [21, 22, 23, 24, 25, 26, 27]];
  const mask = [[0, 0, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 1]];
  const pos = [[0, 0, 0, 1, 2, 3, 4], [0, 1, 2, 3, 4, 5, 6]];
  const full = model.forward(tf.tensor2d(seq, undefined, 'int32'), { attentionMask: tf.tensor2d(mask), positionIds: tf.tensor2d(pos, undefined, 'int32') });
  const want = full.logits.arraySync();
  const P = 4;
  let out = model.forward(tf.tensor2d(seq.map((r) => r.slice(0, P)), undefined, 'int32'), {
    attentionMask: tf.tensor2d(mask.map((r) => r.slice(0, P))),
    positionIds: tf.tensor2d(pos.map((r) => r.slice(0, P)), undefined, 'int32'),
    useCache: true,
  });
  const got: number[][][] = out.logits.arraySync();
  for (let t = P; t < 7; t++) {
    const prev = out.cache;
    out = model.forward(tf.tensor2d(seq.map((r) => [r[t]!]), undefined, 'int32'), {
      cache: prev,
      useCache: true,
      attentionMask: tf.tensor2d([[1], [1]]),
      positionIds: tf.tensor2d(pos.map((r) => [r[t]!]), undefined, 'int32'),
    });
    disposeCache(prev);
    assert.deepEqual(out.cache!.mask!.shape, [2, t + 1]);
    out.logits.arraySync().forEach((row, b) => got[b]!.push(...row));
  }
  // compare only real (unpadded) query positions
  for (let b = 0; b < 2; b++) for (let t = 0; t < 7; t++) if (mask[b]![t]) assert.ok(maxAbsDiff(got[b]![t]!, want[b]![t]!) < 1e-4, `row ${b} pos ${t}`);
  disposeCache(out.cache);
  model.dispose();
});
