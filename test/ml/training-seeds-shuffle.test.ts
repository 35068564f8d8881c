// Issue 12: a stage seed of 0 must seed every tensor (tfjs reads seed 0 as "no seed" and draws from
// Math.random), and `shuffle: false` walks the training data in dataset order (to reproduce a TRL
// run with shuffling off).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/ml/backend.js';
import { tensorSeed } from '../../src/ml/tensor-seed.js';
import { DataCursor } from '../../src/ml/train/data.js';
import { rewardStage } from '../../src/stages/reward.js';
import { dpoStage } from '../../src/stages/dpo.js';
import { env, modelArtifact, textPairs, datasetArtifact, stageContext } from './dpo-stage-helpers.js';

await initBackend();

test('tensorSeed never yields 0 and keeps every nonzero seed as it was', () => {
  assert.notEqual(tensorSeed(0), 0);
  assert.equal(tensorSeed(7), 7);
  assert.equal(tensorSeed(-3), -3);
  for (let i = 0; i < 2000; i++) assert.notEqual(tensorSeed(0, i), 0);
  // the reason: two draws with seed 0 differ, two with tensorSeed(0) are equal
  const a = tf.randomNormal([4], 0, 1, 'float32', tensorSeed(0));
  const b = tf.randomNormal([4], 0, 1, 'float32', tensorSeed(0));
  assert.deepEqual([...a.dataSync()], [...b.dataSync()]);
  // and seed 0 is a seed of its own, not another name for seed 1
  const c = tf.randomNormal([4], 0, 1, 'float32', tensorSeed(1));
  assert.notDeepEqual([...a.dataSync()], [...c.dataSync()]);
  tf.dispose([a, b, c]);
});

test('two reward-stage runs with seed 0 give identical artifact ids', async () => {
  const e = env();
  const model = await modelArtifact(e);
  const train = await datasetArtifact(e, 'prefs', textPairs(24, 3));
  const config = { seed: 0, max_length: 40, batch_size: 4, max_steps: 2, eval_fraction: 0, log_every: 1, checkpoint_every: 100 };
  const ids: string[] = [];
  for (const name of ['rm-a', 'rm-b']) {
    const r = stageContext(e, 'reward', config, { model, train }, name);
    const out = await rewardStage.run(r.ctx as never);
    assert.equal(out.status, 'done');
    if (out.status === 'done') ids.push(out.outputs.model!.id);
  }
  assert.equal(ids[0], ids[1], 'the same seed 0 must give the same reward head, so the same artifact');
});

test('a data cursor with shuffle off walks every epoch in dataset order; its state says so', () => {
  const c = new DataCursor(5, 9, undefined, { shuffle: false });
  assert.deepEqual(c.take(7), [0, 1, 2, 3, 4, 0, 1]);
  assert.equal(c.state().shuffle, false);
  assert.equal(new DataCursor(5, 9).state().shuffle, undefined, 'a shuffled cursor state is unchanged');
  assert.throws(() => new DataCursor(5, 9).restore(c.state()), /shuffle/);
});

test('shuffle: false is accepted by every training stage and changes the data order (DPO: first step differs)', async () => {
  const e = env();
  const model = await modelArtifact(e);
  const train = await datasetArtifact(e, 'prefs', textPairs(32, 4));
  const base = { max_length: 40, batch_size: 4, max_steps: 1, eval_fraction: 0, log_every: 1 };
  const loss = async (shuffle: boolean, name: string) => {
    const r = stageContext(e, 'dpo', { ...base, shuffle }, { model, train }, name);
    const out = await dpoStage.run(r.ctx as never);
    assert.equal(out.status, 'done');
    return r.metrics.find((m) => m.values['rewards/chosen'] !== undefined && m.values.grad_norm !== undefined)!.values.grad_norm!;
  };
  const inOrder = await loss(false, 'ordered');
  assert.equal(await loss(false, 'ordered-again'), inOrder, 'dataset order is deterministic');
  assert.notEqual(await loss(true, 'shuffled'), inOrder);
  for (const schema of [rewardStage.configSchema, dpoStage.configSchema, (await import('../../src/stages/sft.js')).sftStage.configSchema]) {
    assert.equal((schema.parse({ shuffle: false }) as { shuffle: boolean }).shuffle, false);
    assert.equal((schema.parse({ keep_checkpoints: 2 }) as { keep_checkpoints: number }).keep_checkpoints, 2);
  }
});
