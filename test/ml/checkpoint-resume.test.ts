import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { train, evaluateLoss } from '../../src/ml/train/loop.js';
import { ExampleBatches, prepareSftExamples, sequentialBatches, type Batch } from '../../src/ml/train/data.js';
import { causalLmLoss } from '../../src/ml/train/lm-loss.js';
import { readCheckpointDir, writeCheckpointDir, restoreTrainer, type TrainerCheckpoint } from '../../src/ml/train/checkpoint.js';
import { AdamW } from '../../src/ml/train/optimizer.js';
import { AlignflowError } from '../../src/errors.js';
import { tmpDir } from '../helpers/tmp.js';
import { backend, tinyModel, toyPairs, weightsBytes } from './train-fixtures.js';

await backend();

const { examples } = prepareSftExamples(toyPairs(16, 21), 32);
const evalBatches = sequentialBatches(prepareSftExamples(toyPairs(8, 99), 32).examples, 8, 0);

function options(model: ReturnType<typeof tinyModel>, dir: string, extra: Partial<Parameters<typeof train<Batch>>[0]> = {}) {
  return {
    params: model.params,
    lossFn: (b: Batch) => causalLmLoss(model, b),
    data: new ExampleBatches(examples, 4, 0, 1234),
    maxSteps: 12,
    gradAccum: 2,
    optimizer: { weightDecay: 0.1 },
    schedule: { lr: 5e-3, kind: 'cosine' as const, warmupSteps: 3, minLrRatio: 0.1 },
    maxGradNorm: 0.5,
    seed: 77,
    evalEvery: 5,
    evalFn: async () => ({ eval_loss: (await evaluateLoss(evalBatches, (b) => causalLmLoss(model, b))).loss }),
    checkpointEvery: 4,
    onCheckpoint: async (k: TrainerCheckpoint) => writeCheckpointDir(path.join(dir, `step-${String(k.state.step).padStart(5, '0')}`), k),
    ...extra,
  };
}

const latest = (dir: string) => path.join(dir, fs.readdirSync(dir).filter((d) => d.startsWith('step-')).sort().at(-1)!);

test('interrupted at step 6 (abort) and resumed: final weights are bit-identical to an uninterrupted run', async () => {
  const root = tmpDir();
  // uninterrupted
  const a = tinyModel(3);
  const ra = await train(options(a, path.join(root, 'a')));
  const want = await weightsBytes(a.params);
  a.dispose();
  assert.equal(ra.step, 12);

  // interrupted: abort once step 6 is done → the loop checkpoints step 6 and throws 'cancelled'
  const dirB = path.join(root, 'b');
  const b = tinyModel(3);
  const ctl = new AbortController();
  const err = await train(options(b, dirB, { signal: ctl.signal, onProgress: ({ step }) => void (step === 6 && ctl.abort()) })).catch((e) => e);
  b.dispose();
  assert.ok(err instanceof AlignflowError && err.kind === 'cancelled', String(err));
  assert.equal(path.basename(latest(dirB)), 'step-00006');

  // resume in a fresh model (different init: everything must come from the checkpoint)
  const c = tinyModel(999);
  const ckpt = await readCheckpointDir(latest(dirB));
  assert.equal(ckpt.state.step, 6);
  const rc = await train(options(c, dirB, { resume: ckpt }));
  assert.equal(rc.step, 12);
  const got = await weightsBytes(c.params);
  c.dispose();
  assert.equal(got.size, want.size);
  for (const [n, bytes] of want) assert.ok(Buffer.from(got.get(n)!).equals(Buffer.from(bytes)), `tensor ${n} differs`);

  // and from the periodic checkpoint of step 4 (mid-epoch cursor, optimizer moments, schedule)
  const d = tinyModel(5);
  await train(options(d, path.join(root, 'd'), { resume: await readCheckpointDir(path.join(dirB, 'step-00004')) }));
  const got4 = await weightsBytes(d.params);
  d.dispose();
  for (const [n, bytes] of want) assert.ok(Buffer.from(got4.get(n)!).equals(Buffer.from(bytes)), `tensor ${n} differs (resume from 4)`);
  // the best eval loss travels with the checkpoints
  assert.ok(typeof rc.bestEvalLoss === 'number' && rc.bestEvalLoss === ra.bestEvalLoss);
});

test('a checkpoint that does not fit the model is refused before anything changes', async () => {
  const root = tmpDir();
  const m = tinyModel(3);
  await train(options(m, root, { maxSteps: 4 }));
  const ckpt = await readCheckpointDir(latest(root));
  m.dispose();
  const other = tinyModel(3, { n_embd: 8 });
  const before = await weightsBytes(other.params);
  const opt = new AdamW(other.params, { weightDecay: 0.1 });
  assert.throws(() => restoreTrainer(ckpt, other.params, opt), (e: unknown) => e instanceof AlignflowError && e.kind === 'integrity' && /transformer\.wte\.weight/.test(e.message));
  const after = await weightsBytes(other.params);
  for (const [n, bytes] of before) assert.ok(Buffer.from(after.get(n)!).equals(Buffer.from(bytes)), n);
  opt.dispose();
  other.dispose();
  // a truncated file is an integrity/input error naming the file, not a crash
  const broken = path.join(root, 'broken');
  fs.cpSync(latest(root), broken, { recursive: true });
  fs.truncateSync(path.join(broken, 'optimizer.safetensors'), 100);
  await assert.rejects(readCheckpointDir(broken), /optimizer\.safetensors/);
  fs.rmSync(path.join(broken, 'trainer_state.json'));
  await assert.rejects(readCheckpointDir(broken), /trainer_state\.json/);
  assert.equal(tf.memory().numTensors >= 0, true);
});

test('checkpoint directories: the last N plus the best by eval loss are kept', async () => {
  const { saveCheckpointDir, latestCheckpointDir } = await import('../../src/ml/train/checkpoint.js');
  const root = tmpDir();
  const m = tinyModel(3);
  const losses = [3, 1, 2.5, 2.4, 2.6, 2.7];
  let i = 0;
  await train(
    options(m, root, {
      maxSteps: 6,
      evalEvery: 1,
      evalFn: async () => ({ eval_loss: losses[i++]! }), // scripted eval losses at steps 1..6: the best is step 2's
      checkpointEvery: 1,
      onCheckpoint: async (k: TrainerCheckpoint) => void saveCheckpointDir(root, k, { keep: 2 }),
    }),
  );
  m.dispose();
  assert.deepEqual(fs.readdirSync(root).sort(), ['step-000002', 'step-000005', 'step-000006']);
  assert.equal(path.basename(latestCheckpointDir(root)!), 'step-000006');
  const best = await readCheckpointDir(path.join(root, 'step-000002'));
  assert.equal(best.state.evalLoss, 1);
  assert.equal(best.state.bestEvalLoss, 1);
});
