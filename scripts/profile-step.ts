// Kernel-by-kernel profile of one training step (tf.profile), on the bench's reference shape:
//   npx tsx scripts/profile-step.ts [dpo|sft|rm] [backend] [--large]
// Prints each kernel's share of the summed kernel time, largest first, plus the step's wall time.
import * as tf from '@tensorflow/tfjs';
import { createGpt2 } from '../src/ml/models/gpt2.js';
import { train } from '../src/ml/train/loop.js';
import { collate, type Batch } from '../src/ml/train/data.js';
import { causalLmLoss } from '../src/ml/train/lm-loss.js';
import { Rng } from '../src/ml/train/rng.js';
import { collatePairs, type PairBatch, type PreparedPair } from '../src/ml/preference-data.js';
import { computeRefLogps, dpoLossFn } from '../src/ml/dpo.js';
import { createRewardModel, rewardLossFn } from '../src/ml/reward.js';
import { useBackend, type BackendName } from '../src/ml/backend.js';
import { REFERENCE, GPT2_124M } from '../bench/engine.js';

const [kind = 'dpo', backend = 'native'] = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const s = process.argv.includes('--large') ? GPT2_124M : REFERENCE;
await useBackend(backend as BackendName);
const cfg = { vocab_size: s.vocab, n_positions: s.ctx, n_embd: s.d, n_layer: s.layers, n_head: s.heads };
const rng = new Rng(1);
const rows = Array.from({ length: s.batch }, () => Array.from({ length: s.ctx }, () => rng.int(s.vocab)));
const half = s.batch / 2;
const prepared = Array.from({ length: half }, (_, i) => ({ promptIds: rows[i]!.slice(0, s.prompt), chosenIds: rows[i]!.slice(s.prompt), rejectedIds: rows[i + half]!.slice(s.prompt) })) as PreparedPair[];
const model = createGpt2(cfg, 0);
let params = model.params;
let lossFn: (b: never) => ReturnType<ReturnType<typeof dpoLossFn>>;
let batch: unknown;
if (kind === 'sft') {
  batch = collate(rows.map((ids) => ({ ids, lossMask: ids.map((_, t) => (t >= s.prompt ? 1 : 0)) })), 0);
  lossFn = ((b: Batch) => causalLmLoss(model, b)) as never;
} else if (kind === 'rm') {
  const rm = createRewardModel(model, { seed: 1, padTokenId: 0 });
  params = rm.params;
  batch = collatePairs(prepared, [...prepared.keys()], 0);
  lossFn = rewardLossFn(rm) as never;
} else {
  const ref = await computeRefLogps(model, prepared, { batchSize: half, padId: 0 });
  batch = collatePairs(prepared, [...prepared.keys()], 0);
  lossFn = dpoLossFn(model, { beta: 0.1, losses: ['sigmoid'] }, ref) as never;
}
const step = (n: number) =>
  train<unknown>({ params, lossFn: lossFn as never, data: { next: () => batch, state: () => ({}), restore() {}, epoch: () => 0 } as never, maxSteps: n, schedule: { lr: 1e-4, kind: 'constant', warmupSteps: 0 } });
await step(2); // warm-up
const t0 = performance.now();
await step(3);
const wall = (performance.now() - t0) / 3;
const info = await tf.profile(() => step(1) as never);
const by = new Map<string, { ms: number; n: number }>();
for (const k of info.kernels) {
  const e = by.get(k.name) ?? { ms: 0, n: 0 };
  e.ms += Number(k.kernelTimeMs) || 0;
  e.n++;
  by.set(k.name, e);
}
const total = [...by.values()].reduce((a, e) => a + e.ms, 0);
console.log(`${kind} step on ${backend} (${s.name}): wall ${wall.toFixed(1)} ms/step (${((s.batch * s.ctx) / wall * 1000).toFixed(0)} tokens/s); kernel sum ${total.toFixed(1)} ms (profiled step)`);
for (const [name, e] of [...by].sort((a, b) => b[1].ms - a[1].ms).slice(0, 20)) {
  console.log(`${name.padEnd(22)} ${(100 * e.ms / total).toFixed(1).padStart(5)}%  ${e.ms.toFixed(1).padStart(8)} ms  ${String(e.n).padStart(5)} calls`);
}
if (process.argv.includes('--calls')) {
  const rows = info.kernels.map((k) => ({ name: k.name, ms: Number(k.kernelTimeMs) || 0, shapes: k.inputShapes.map((x) => JSON.stringify(x)).join(' ') }));
  const agg = new Map<string, { ms: number; n: number }>();
  for (const r of rows) {
    const key = `${r.name} ${r.shapes}`;
    const e = agg.get(key) ?? { ms: 0, n: 0 };
    e.ms += r.ms;
    e.n++;
    agg.set(key, e);
  }
  for (const [k, e] of [...agg].sort((a, b) => b[1].ms - a[1].ms).slice(0, 30)) console.log(`${e.ms.toFixed(1).padStart(7)} ms ${String(e.n).padStart(4)}× ${k}`);
}
