// DPO-step and reward-model-step throughput on the reference model (GPT-2 shape, vocab 512, d 128,
// 4 layers, 4 heads, context 128) with 8 pairs of 128-token sequences (64 prompt + 64 completion
// tokens): one optimizer update per step, chosen and rejected in one [16, 128] forward, reference
// log-probs precomputed (as the DPO stage does). Prints one JSON line per figure.
//   npx tsx bench/preference.ts        (or through npm run bench)
import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/ml/backend.js';
import { createGpt2 } from '../src/ml/models/gpt2.js';
import { train } from '../src/ml/train/loop.js';
import { Rng } from '../src/ml/train/rng.js';
import { PairBatches, type PreparedPair } from '../src/ml/preference-data.js';
import { computeRefLogps, dpoLossFn } from '../src/ml/dpo.js';
import { createRewardModel, rewardLossFn } from '../src/ml/reward.js';
import type { MicroBatchOutput } from '../src/ml/train/loop.js';
import type { PairBatch } from '../src/ml/preference-data.js';
import type { Emit } from './index.js';

const CONFIG = { vocab_size: 512, n_positions: 128, n_embd: 128, n_layer: 4, n_head: 4 };
const PAIRS = 8;
const PROMPT = 64;
const COMPLETION = 64;

function pairs(n: number, seed: number): PreparedPair[] {
  const rng = new Rng(seed);
  const seq = (k: number) => Array.from({ length: k }, () => 1 + Math.floor(rng.next() * 510));
  return Array.from({ length: n }, (_, index) => ({ index, promptIds: seq(PROMPT), chosenIds: seq(COMPLETION), rejectedIds: seq(COMPLETION) }));
}

async function timeSteps(name: string, params: Map<string, tf.Variable>, lossFn: (b: PairBatch) => MicroBatchOutput, data: PreparedPair[], steps: number, warmup: number) {
  const times: number[] = [];
  const cpu: number[] = [];
  let last = performance.now();
  let lastCpu = process.cpuUsage();
  await train({
    params,
    lossFn,
    data: new PairBatches(data, PAIRS, 1, 0, 1),
    maxSteps: warmup + steps,
    schedule: { lr: 1e-4, kind: 'constant', warmupSteps: 0 },
    onProgress: () => {
      const now = performance.now();
      times.push(now - last);
      last = now;
      const c = process.cpuUsage(lastCpu);
      cpu.push((c.user + c.system) / 1000);
      lastCpu = process.cpuUsage();
    },
  });
  const measured = times.slice(warmup).sort((a, b) => a - b);
  const median = measured[Math.floor(measured.length / 2)]!;
  const cpuMeasured = cpu.slice(warmup).sort((a, b) => a - b);
  const cpuMedian = cpuMeasured[Math.floor(cpuMeasured.length / 2)]!;
  const tokens = 2 * PAIRS * (PROMPT + COMPLETION);
  return {
    bench: 'preference',
    name,
    value: Math.round(tokens / (median / 1000)),
    unit: 'tokens/s',
    tf_backend: tf.getBackend(),
    model: 'gpt2 vocab 512, d 128, 4 layers, 4 heads, ctx 128',
    pairs_per_step: PAIRS,
    tokens_per_step: tokens,
    steps: measured.length,
    median_step_s: +(median / 1000).toFixed(4),
    tokens_per_s: Math.round(tokens / (median / 1000)),
    // CPU time of this process per step: the figure to compare when other work shares the cores
    median_step_cpu_s: +(cpuMedian / 1000).toFixed(4),
    tokens_per_cpu_s: Math.round(tokens / (cpuMedian / 1000)),
  };
}

export async function benchPreference(o: { steps?: number; warmup?: number; print?: (line: string) => void } = {}): Promise<Record<string, unknown>[]> {
  await initBackend();
  const steps = o.steps ?? 5;
  const warmup = o.warmup ?? 1;
  const print = o.print ?? ((l: string) => process.stdout.write(l + '\n'));
  const data = pairs(PAIRS * (steps + warmup), 7);
  const out: Record<string, unknown>[] = [];

  const policy = createGpt2(CONFIG, 1);
  const reference = createGpt2(CONFIG, 1);
  const ref = await computeRefLogps(reference, data, { batchSize: PAIRS, padId: 0 });
  reference.dispose();
  const dpo = await timeSteps('dpo_step_tokens_per_s', policy.params, dpoLossFn(policy, { beta: 0.1, losses: ['sigmoid'] }, ref), data, steps, warmup);
  print(JSON.stringify(dpo));
  out.push(dpo);
  policy.dispose();

  const rm = createRewardModel(createGpt2(CONFIG, 2), { padTokenId: 0 });
  const r = await timeSteps('reward_model_step_tokens_per_s', rm.params, rewardLossFn(rm), data, steps, warmup);
  print(JSON.stringify(r));
  out.push(r);
  rm.dispose();
  return out;
}

/** bench/index.ts entry: one figure per step kind. */
export async function run(emit: Emit): Promise<void> {
  await benchPreference({ print: (l) => emit(JSON.parse(l)) });
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await benchPreference();
}
