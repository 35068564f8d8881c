import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/ml/backend.js';
import { loadModelDir } from '../../src/ml/models/io.js';
import { createGpt2 } from '../../src/ml/models/gpt2.js';
import { collateScoring, completionLogps, sequenceLogpsTensors, tokenLogps, truncatePair } from '../../src/ml/logprobs.js';
import { tokenizePair } from '../../src/ml/tokenizer/index.js';
import { GPT2_FIXTURES } from '../helpers/fixtures.js';

const FX = GPT2_FIXTURES;
const readJsonl = (f: string) => fs.readFileSync(f, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);

before(async () => {
  await initBackend();
});

for (const name of ['model-fp32', 'model-bf16']) {
  for (const eos of [false, true]) {
    test(`${name}${eos ? ' +eos' : ''}: pair log-probs match the reference to 1e-4`, async () => {
      const { model, tokenizer } = await loadModelDir(`${FX}/${name}`);
      const pairs = readJsonl(`${FX}/pairs.jsonl`) as { prompt: string; chosen: string; rejected: string }[];
      interface Expected {
        prompt_ids: number[];
        chosen_ids: number[];
        rejected_ids: number[];
        chosen_logps: number;
        rejected_logps: number;
        chosen_logps_mean: number;
        rejected_logps_mean: number;
        chosen_tokens: number;
        rejected_tokens: number;
      }
      const expected = readJsonl(`${FX}/${name}.pairs.expected${eos ? '-eos' : ''}.jsonl`) as unknown as Expected[];
      const items = pairs.flatMap((p) => [tokenizePair(tokenizer!, p.prompt, p.chosen, { addEos: eos }), tokenizePair(tokenizer!, p.prompt, p.rejected, { addEos: eos })]);
      // batch size 3 so that chosen/rejected of one record land in different, differently padded batches
      const got = await completionLogps(model, items, { batchSize: 3 });
      expected.forEach((e, i) => {
        assert.deepEqual(items[2 * i]!.promptIds, e.prompt_ids);
        assert.deepEqual(items[2 * i]!.completionIds, e.chosen_ids);
        assert.deepEqual(items[2 * i + 1]!.completionIds, e.rejected_ids);
        const c = got[2 * i]!;
        const r = got[2 * i + 1]!;
        assert.equal(c.tokens, e.chosen_tokens);
        assert.equal(r.tokens, e.rejected_tokens);
        assert.ok(Math.abs(c.sum - e.chosen_logps) < 1e-4, `record ${i} chosen ${c.sum} vs ${e.chosen_logps}`);
        assert.ok(Math.abs(r.sum - e.rejected_logps) < 1e-4, `record ${i} rejected ${r.sum} vs ${e.rejected_logps}`);
        assert.ok(Math.abs(c.mean - e.chosen_logps_mean) < 1e-5);
        assert.ok(Math.abs(r.mean - e.rejected_logps_mean) < 1e-5);
      });
      // the empty prompt (record 6): its first completion token is not scored
      assert.equal(expected[6]!.chosen_tokens, expected[6]!.chosen_ids.length - 1);
      model.dispose();
    });
  }
}

test('results do not depend on batch size or padding', async () => {
  const m = createGpt2({ vocab_size: 64, n_positions: 32, n_embd: 32, n_layer: 2, n_head: 2, initializer_range: 0.3 }, 5);
  const items = [
    { promptIds: [1, 2, 3], completionIds: [4, 5] },
    { promptIds: [], completionIds: [9, 8, 7, 6, 5, 4, 3] },
    { promptIds: [10, 11, 12, 13, 14, 15], completionIds: [1] },
  ];
  const one = await completionLogps(m, items, { batchSize: 1 });
  const all = await completionLogps(m, items, { batchSize: 3, padId: 63 });
  one.forEach((o, i) => assert.ok(Math.abs(o.sum - all[i]!.sum) < 1e-4));
  assert.deepEqual(one.map((o) => o.tokens), [2, 6, 1]);
  m.dispose();
});

test('tokenLogps (flat gather) equals log_softmax picked by one-hot, and its gradient too', () => {
  const logits = tf.randomNormal([3, 5, 11], 0, 2, 'float32', 1) as tf.Tensor3D;
  const ids = tf.tensor2d([[1, 2, 3, 4, 10], [0, 0, 5, 6, 7], [9, 8, 7, 6, 5]], undefined, 'int32');
  const oneHotWay = (l: tf.Tensor3D) => {
    const pred = tf.slice(l, [0, 0, 0], [3, 4, 11]);
    const tgt = tf.slice(ids, [0, 1], [3, 4]);
    return tf.sum(tf.mul(tf.logSoftmax(pred), tf.oneHot(tgt, 11)), -1);
  };
  const a = tokenLogps(logits, ids).dataSync();
  const b = oneHotWay(logits).dataSync();
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) < 1e-5);
  const ga = tf.grad((l: tf.Tensor) => tf.sum(tokenLogps(l as tf.Tensor3D, ids)))(logits).dataSync();
  const gb = tf.grad((l: tf.Tensor) => tf.sum(oneHotWay(l as tf.Tensor3D)))(logits).dataSync();
  for (let i = 0; i < ga.length; i++) assert.ok(Math.abs(ga[i]! - gb[i]!) < 1e-5);
});

test('sequenceLogpsTensors is differentiable: gradient matches a finite difference', () => {
  const m = createGpt2({ vocab_size: 32, n_positions: 16, n_embd: 16, n_layer: 1, n_head: 2, initializer_range: 0.2 }, 9);
  const batch = collateScoring([
    { promptIds: [1, 2], completionIds: [3, 4, 5] },
    { promptIds: [7], completionIds: [8] },
  ]);
  const name = 'transformer.h.0.mlp.c_fc.weight';
  const v = m.params.get(name)!;
  const f = () => tf.sum(sequenceLogpsTensors(m, batch).sum) as tf.Scalar;
  const { grads } = tf.variableGrads(f, [v]);
  const g = grads[v.name]!.dataSync();
  const base = v.dataSync().slice();
  const eps = 1e-2;
  for (const idx of [0, 17, 100, 250]) {
    const at = (delta: number) => {
      const w = base.slice();
      w[idx] = w[idx]! + delta;
      v.assign(tf.tensor(w, v.shape));
      return tf.tidy(() => f().dataSync()[0]!);
    };
    const fd = (at(eps) - at(-eps)) / (2 * eps);
    assert.ok(Math.abs(fd - g[idx]!) < 2e-3 + 2e-2 * Math.abs(fd), `param ${idx}: analytic ${g[idx]} vs fd ${fd}`);
  }
  m.dispose();
});

test('truncatePair: prompt loses tokens from the left first, then the completion from the right', () => {
  assert.deepEqual(truncatePair({ promptIds: [1, 2, 3, 4], completionIds: [5, 6] }, 4), { promptIds: [3, 4], completionIds: [5, 6], truncated: true });
  assert.deepEqual(truncatePair({ promptIds: [1, 2], completionIds: [5, 6, 7, 8, 9] }, 3), { promptIds: [], completionIds: [5, 6, 7], truncated: true });
  assert.equal(truncatePair({ promptIds: [1], completionIds: [2] }, 2).truncated, false);
});

test('sequences longer than the context are truncated and flagged, not a crash', async () => {
  const m = createGpt2({ vocab_size: 32, n_positions: 8, n_embd: 16, n_layer: 1, n_head: 2 }, 2);
  const [r] = await completionLogps(m, [{ promptIds: [1, 2, 3, 4, 5, 6], completionIds: [7, 8, 9, 10] }]);
  assert.equal(r!.truncated, true);
  assert.equal(r!.tokens, 4);
  assert.ok(Number.isFinite(r!.sum));
  m.dispose();
});
