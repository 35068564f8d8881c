// The native backend trains as the wasm backend does: 50 SFT steps and 50 DPO steps from the same
// initial weights give the same loss at every step (to 1e-4), and the GPT-2 reference fixtures score
// within 1e-4 of their float64 logits on both. Skipped, with the reason, where either is missing.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { initBackend, useBackend, backendUnavailable, type BackendName } from '../../src/ml/backend.js';
import { createGpt2 } from '../../src/ml/models/gpt2.js';
import { loadModelDir } from '../../src/ml/models/io.js';
import { train } from '../../src/ml/train/loop.js';
import { prepareSftExamples, ExampleBatches } from '../../src/ml/train/data.js';
import { causalLmLoss } from '../../src/ml/train/lm-loss.js';
import { preparePairs, PairBatches } from '../../src/ml/preference-data.js';
import { computeRefLogps, dpoLossFn } from '../../src/ml/dpo.js';
import { toyPairs as sftPairs } from './train-fixtures.js';
import { toyPairs as prefPairs, PAD } from './dpo-toy-data.js';
import { GPT2_FIXTURES } from '../helpers/fixtures.js';

const BACKENDS: BackendName[] = ['native', 'wasm'];
let skip: string | undefined;
before(async () => {
  await initBackend();
  for (const b of BACKENDS) {
    const why = await backendUnavailable(b);
    if (why) skip = `${b}: ${why}`;
  }
});

const CFG = { vocab_size: 64, n_positions: 32, n_embd: 32, n_layer: 2, n_head: 2 };

async function sftLosses(backend: BackendName): Promise<number[]> {
  await useBackend(backend);
  const model = createGpt2(CFG, 3);
  const { examples } = prepareSftExamples(sftPairs(64, 5, CFG.vocab_size), 32);
  const losses: number[] = [];
  await train({
    params: model.params,
    lossFn: (b) => causalLmLoss(model, b),
    data: new ExampleBatches(examples, 8, 0, 11),
    maxSteps: 50,
    schedule: { lr: 3e-3, kind: 'constant', warmupSteps: 0 },
    onMetrics: (_step, m) => void (m.loss !== undefined && losses.push(m.loss)),
  });
  model.dispose();
  return losses;
}

async function dpoLosses(backend: BackendName): Promise<number[]> {
  await useBackend(backend);
  const policy = createGpt2({ ...CFG, vocab_size: 32 }, 1);
  const reference = createGpt2({ ...CFG, vocab_size: 32 }, 1);
  const { pairs } = preparePairs(prefPairs(64, 11), { maxLength: 32 });
  const ref = await computeRefLogps(reference, pairs, { batchSize: 16, padId: PAD });
  const losses: number[] = [];
  await train({
    params: policy.params,
    lossFn: dpoLossFn(policy, { beta: 0.1, losses: ['sigmoid'] }, ref),
    data: new PairBatches(pairs, 8, 1, PAD, 5),
    maxSteps: 50,
    schedule: { lr: 3e-3, kind: 'constant', warmupSteps: 0 },
    onMetrics: (_step, m) => void (m.loss !== undefined && losses.push(m.loss)),
  });
  policy.dispose();
  reference.dispose();
  return losses;
}

function samePerStep(a: number[], b: number[], what: string): void {
  assert.equal(a.length, 50, `${what}: 50 steps logged`);
  assert.equal(b.length, a.length);
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) <= 1e-4, `${what} step ${i + 1}: native ${a[i]} vs wasm ${b[i]}`);
  assert.ok(a.at(-1)! < a[0]!, `${what}: the loss went down (${a[0]} → ${a.at(-1)})`);
}

test('50 SFT steps: the same loss at every step on native and on wasm', async (t) => {
  if (skip) return t.skip(skip);
  const [n, w] = [await sftLosses('native'), await sftLosses('wasm')];
  samePerStep(n, w, 'SFT');
});

test('50 DPO steps: the same loss at every step on native and on wasm', async (t) => {
  if (skip) return t.skip(skip);
  const [n, w] = [await dpoLosses('native'), await dpoLosses('wasm')];
  samePerStep(n, w, 'DPO');
});

for (const backend of BACKENDS) {
  test(`GPT-2 reference fixtures within 1e-4 of the float64 logits on ${backend}`, async (t) => {
    if (skip) return t.skip(skip);
    await useBackend(backend);
    for (const name of ['model-fp32', 'model-bf16']) {
      const ref = JSON.parse(fs.readFileSync(`${GPT2_FIXTURES}/${name}.logits.json`, 'utf8')) as { ids: number[]; logits: number[][] };
      const { model } = await loadModelDir(`${GPT2_FIXTURES}/${name}`);
      const before = tf.memory().numTensors;
      tf.tidy(() => {
        const { logits } = model.forward(tf.tensor2d([ref.ids], undefined, 'int32'));
        const got = logits.dataSync();
        const want = ref.logits.flat();
        let d = 0;
        for (let i = 0; i < want.length; i++) d = Math.max(d, Math.abs(got[i]! - want[i]!));
        assert.ok(d < 1e-4, `${name} on ${backend}: max |Δlogit| ${d}`);
      });
      assert.equal(tf.memory().numTensors, before);
      model.dispose();
    }
  });
}
