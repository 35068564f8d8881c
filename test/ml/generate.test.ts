import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { generate, sampleToken } from '../../src/ml/generate.js';
import { Rng } from '../../src/ml/train/rng.js';
import { backend, tinyModel } from './train-fixtures.js';

await backend();

// a model with a large init spread so greedy paths are not all the same token
const model = tinyModel(17, { initializer_range: 0.4, eos_token_id: 47, bos_token_id: 47 });
const prompts = [[5, 9, 13, 2, 8, 30], [7], [44, 3, 19], []];

test('KV-cache greedy generation gives the same tokens as no-cache generation', async () => {
  const before = tf.memory().numTensors;
  const a = await generate(model, prompts, { maxNewTokens: 12, temperature: 0, eosTokenId: null });
  const b = await generate(model, prompts, { maxNewTokens: 12, temperature: 0, eosTokenId: null, useCache: false });
  assert.deepEqual(a.tokens, b.tokens);
  assert.equal(a.forwardPasses, 12);
  assert.ok(a.tokens.every((t) => t.length === 12));
  assert.ok(new Set(a.tokens.flat()).size > 3, 'degenerate model: the test would not bite');
  assert.equal(tf.memory().numTensors, before, 'generation leaked tensors');
});

test('a left-padded batch generates exactly what each prompt generates alone', async () => {
  const batch = await generate(model, prompts, { maxNewTokens: 8, temperature: 0, eosTokenId: null });
  for (let i = 0; i < prompts.length; i++) {
    const alone = await generate(model, [prompts[i]!], { maxNewTokens: 8, temperature: 0, eosTokenId: null });
    assert.deepEqual(batch.tokens[i], alone.tokens[0], `prompt ${i}`);
  }
});

test('seeded sampling is repeatable, cache or not; EOS stops a row', async () => {
  const o = { maxNewTokens: 10, temperature: 1.3, topK: 20, topP: 0.95, seed: 5, eosTokenId: null };
  const a = await generate(model, prompts, o);
  const b = await generate(model, prompts, o);
  const c = await generate(model, prompts, { ...o, useCache: false });
  assert.deepEqual(a.tokens, b.tokens);
  assert.deepEqual(a.tokens, c.tokens);
  assert.notDeepEqual((await generate(model, prompts, { ...o, seed: 6 })).tokens, a.tokens);
  // use the first greedy token of prompt 0 as "EOS": that row stops after one token, the others go on
  const g = await generate(model, prompts, { maxNewTokens: 6, temperature: 0, eosTokenId: null });
  const stop = g.tokens[0]![0]!;
  const e = await generate(model, prompts, { maxNewTokens: 6, temperature: 0, eosTokenId: stop });
  assert.deepEqual(e.tokens[0], [stop]);
  assert.equal(e.finishReasons[0], 'eos');
  for (let i = 1; i < prompts.length; i++) {
    const cut = g.tokens[i]!.indexOf(stop);
    assert.deepEqual(e.tokens[i], cut < 0 ? g.tokens[i] : g.tokens[i]!.slice(0, cut + 1));
  }
});

test('prompts longer than the context are cut to their last tokens and counted, never a crash', async () => {
  const long = Array.from({ length: 40 }, (_, i) => (i * 7) % 40);
  const r = await generate(model, [long], { maxNewTokens: 4, temperature: 0, eosTokenId: null });
  assert.equal(r.truncatedPrompts, 1);
  const same = await generate(model, [long.slice(40 - 28)], { maxNewTokens: 4, temperature: 0, eosTokenId: null });
  assert.deepEqual(r.tokens, same.tokens);
  await assert.rejects(generate(model, [[99]], { maxNewTokens: 2 }), /outside the vocabulary/);
  await assert.rejects(generate(model, [[1]], { maxNewTokens: 0 }), /max new tokens/);
});

test('sampleToken: top-k 1 is greedy, top-p keeps the nucleus, temperature 0 is argmax', () => {
  const logits = new Float32Array([0, 3, 1, 2.9]);
  const r = new Rng(1);
  assert.equal(sampleToken(logits, { temperature: 0 }, r), 1);
  for (let i = 0; i < 50; i++) assert.equal(sampleToken(logits, { temperature: 1, topK: 1 }, r), 1);
  const seen = new Set<number>();
  for (let i = 0; i < 300; i++) seen.add(sampleToken(logits, { temperature: 1, topP: 0.8 }, r));
  assert.deepEqual([...seen].sort(), [1, 3]); // p(1)+p(3) ≈ 0.83 ≥ 0.8; token 2 and 0 are outside
});
