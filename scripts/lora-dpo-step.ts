// Tokens/s of LoRA DPO training steps on a SmolLM2-135M-shaped random Llama (the figure in
// docs/engine-models.md): npx tsx scripts/lora-dpo-step.ts [pairs=2] [seqLen=64] [steps=3] [preset=smollm2-135m]
// Random weights and random token pairs: the arithmetic is the same as for the real checkpoint.
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/ml/backend.js';
import { modelFamily, PRESETS } from '../src/ml/models/registry.js';
import { attachLora, baseView } from '../src/ml/lora.js';
import { computeRefLogps, dpoLossFn } from '../src/ml/dpo.js';
import { preparePairs, PairBatches } from '../src/ml/preference-data.js';
import { train } from '../src/ml/train/loop.js';
import { Rng } from '../src/ml/train/rng.js';

const [pairs = 2, seqLen = 64, steps = 3] = process.argv.slice(2, 5).map(Number);
const preset = process.argv[5] ?? 'smollm2-135m';
const backend = await initBackend();
const family = modelFamily(String(PRESETS[preset]!.model_type))!;
const config = family.withDefaults(PRESETS[preset]!);
let t = performance.now();
const model = family.create(config, 1);
const initS = (performance.now() - t) / 1000;
const log = (m: string) => process.stderr.write(`${m} (rss ${Math.round(process.memoryUsage().rss / 2 ** 20)} MB, ${tf.memory().numTensors} tensors)\n`);
log(`initialised in ${initS.toFixed(1)} s`);
const adapter = attachLora(model, { r: 16, alpha: 32, target_modules: 'all-linear' }, 2);
const rng = new Rng(3);
const V = model.vocabSize;
const half = seqLen / 2;
const tok = () => 3 + Math.floor(rng.next() * (V - 3));
const data = Array.from({ length: pairs * (steps + 1) }, () => ({
  promptIds: Array.from({ length: half }, tok),
  chosenIds: Array.from({ length: half }, tok),
  rejectedIds: Array.from({ length: half }, tok),
}));
const { pairs: prepared } = preparePairs(data, { maxLength: seqLen });
t = performance.now();
const ref = await computeRefLogps(baseView(model), prepared, { batchSize: pairs, padId: 0 });
const refS = (performance.now() - t) / 1000;
log(`reference pass ${refS.toFixed(1)} s`);
const stamps: number[] = [];
const cpu: number[] = [];
let last = performance.now();
let lastCpu = process.cpuUsage();
const losses: number[] = [];
await train({
  params: adapter.params,
  lossFn: dpoLossFn(model, { beta: 0.1, losses: ['sigmoid'] }, ref),
  data: new PairBatches(prepared, pairs, 1, 0, 4),
  maxSteps: steps,
  schedule: { lr: 1e-4, kind: 'constant', warmupSteps: 0 },
  onMetrics: (_s, m) => {
    const now = performance.now();
    stamps.push((now - last) / 1000);
    last = now;
    const c = process.cpuUsage(lastCpu); // the shared build machine's wall clock includes other jobs; CPU time does not
    cpu.push((c.user + c.system) / 1e6);
    lastCpu = process.cpuUsage();
    losses.push(m.loss!);
    log(`step ${stamps.length}: ${stamps.at(-1)!.toFixed(2)} s wall, ${cpu.at(-1)!.toFixed(2)} s CPU, loss ${m.loss}`);
  },
});
const tokensPerStep = 2 * pairs * seqLen;
const steady = stamps.slice(1);
const median = [...(steady.length ? steady : stamps)].sort((a, b) => a - b)[Math.floor((steady.length || stamps.length) / 2)]!;
console.log(
  JSON.stringify({
    preset,
    backend,
    parameters: [...model.params.values()].reduce((n, v) => n + v.size, 0),
    lora_parameters: adapter.parameterCount,
    pairs,
    seqLen,
    tokens_per_step: tokensPerStep,
    init_s: +initS.toFixed(1),
    ref_pass_s: +refS.toFixed(1),
    step_s: stamps.map((s) => +s.toFixed(2)),
    step_cpu_s: cpu.map((s) => +s.toFixed(2)),
    tokens_per_cpu_s_median: +(tokensPerStep / [...cpu.slice(1)].sort((a, b) => a - b)[Math.floor((cpu.length - 1) / 2)]!).toFixed(1),
    tokens_per_s_median: +(tokensPerStep / median).toFixed(1),
    first_loss: losses[0],
    rss_mb: Math.round(process.memoryUsage().rss / 2 ** 20),
    numTensors: tf.memory().numTensors,
  }),
);
