// The reward model learns the toy preference (GOOD vs BAD token) to eval accuracy > 0.9, saves in
// transformers' GPT2ForSequenceClassification layout and loads back to the same scores.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/ml/backend.js';
import { createGpt2 } from '../../src/ml/models/gpt2.js';
import { train, evaluateLoss } from '../../src/ml/train/loop.js';
import { readSafetensors } from '../../src/ml/safetensors.js';
import { preparePairs, PairBatches, sequentialPairBatches } from '../../src/ml/preference-data.js';
import { createRewardModel, loadRewardModelDir, rewardLossFn, saveRewardModelDir, scoreWithRewardModel, pairRewardValues } from '../../src/ml/reward.js';
import { rewardModelMetrics, withPrefix } from '../../src/ml/losses/index.js';
import { toyPairs, PAD } from './dpo-toy-data.js';
import { tmpDir } from '../helpers/tmp.js';

before(async () => {
  await initBackend();
});

test('reward model reaches eval accuracy > 0.9 on the toy preference task; HF layout round trip', async () => {
  const t0 = Date.now();
  const cfg = { vocab_size: 32, n_positions: 32, n_embd: 32, n_layer: 2, n_head: 2 };
  const rm = createRewardModel(createGpt2(cfg, 2), { seed: 3, padTokenId: PAD });
  const { pairs: tr } = preparePairs(toyPairs(128, 21), { maxLength: 32 });
  const { pairs: ev } = preparePairs(toyPairs(64, 22), { maxLength: 32 });
  const evalFn = async () => {
    const r = await evaluateLoss(sequentialPairBatches(ev, 64, PAD), rewardLossFn(rm));
    return withPrefix({ loss: r.loss, ...r.metrics }, 'eval_');
  };
  const result = await train({
    params: rm.params,
    lossFn: rewardLossFn(rm, { centerCoefficient: 0.01 }),
    data: new PairBatches(tr, 8, 1, PAD, 7),
    maxSteps: 60,
    schedule: { lr: 3e-3, kind: 'constant', warmupSteps: 0 },
    evalEvery: 60,
    evalAtStart: true,
    evalFn,
  });
  const first = result.evals[0]!.metrics;
  const last = result.evals.at(-1)!.metrics;
  console.log(
    `RM toy: eval_accuracy ${first.eval_accuracy!.toFixed(3)} → ${last.eval_accuracy!.toFixed(3)}, eval_loss ${first.eval_loss!.toFixed(4)} → ${last.eval_loss!.toFixed(4)}, ` +
      `eval_margin → ${last.eval_margin!.toFixed(3)}, ${result.step} steps in ${((Date.now() - t0) / 1000).toFixed(1)} s on ${tf.getBackend()}`,
  );
  assert.ok(last.eval_accuracy! > 0.9, `eval accuracy ${last.eval_accuracy}`);
  assert.ok(last.eval_loss! < first.eval_loss!);
  for (const k of ['eval_accuracy', 'eval_margin', 'eval_min_reward', 'eval_mean_reward', 'eval_max_reward', 'eval_loss']) assert.ok(k in last, k);
  // one eval batch covers the whole split, so the loop's metrics equal the pure metric function
  const vals = await pairRewardValues(rm, ev, 16);
  const pure = rewardModelMetrics({ ...vals, loss: 0 });
  assert.ok(Math.abs(pure.accuracy! - last.eval_accuracy!) < 1e-6);
  assert.ok(Math.abs(pure.min_reward! - last.eval_min_reward!) < 1e-4);

  // save → the transformers layout → load → same scores
  const dir = path.join(tmpDir(), 'rm');
  saveRewardModelDir(rm, undefined, dir);
  const config = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  assert.deepEqual(config.architectures, ['GPT2ForSequenceClassification']);
  assert.equal(config.num_labels, 1);
  assert.equal(config.pad_token_id, PAD);
  const st = readSafetensors(path.join(dir, 'model.safetensors'));
  assert.deepEqual(st.tensors.get('score.weight')!.shape, [1, 32]);
  assert.ok(st.tensors.has('transformer.wte.weight'));
  assert.ok(!st.tensors.has('lm_head.weight') && !st.tensors.has('score.bias'));
  const { model: back } = await loadRewardModelDir(dir);
  const items = ev.slice(0, 5).flatMap((p) => [
    { promptIds: p.promptIds, completionIds: p.chosenIds },
    { promptIds: p.promptIds, completionIds: p.rejectedIds },
  ]);
  const a = await scoreWithRewardModel(rm, items, { batchSize: 3 });
  const b = await scoreWithRewardModel(back, items, { batchSize: 10 });
  a.forEach((s, i) => assert.ok(Math.abs(s.reward - b[i]!.reward) < 1e-5, `score ${i}: ${s.reward} vs ${b[i]!.reward}`));
  // batching and padding do not change a score (pooling reads the last real token)
  const single = await scoreWithRewardModel(rm, [items[3]!]);
  assert.ok(Math.abs(single[0]!.reward - a[3]!.reward) < 1e-5);
  rm.dispose();
  back.dispose();
});
