// Engine benchmarks, each backend side by side in one run, with an optional PyTorch side
// (bench/pytorch_ref.py) so every figure also prints as a ratio measured under the same load:
// - matmul 1024³ GFLOP/s;
// - SFT, DPO (reference log-probs precomputed) and reward-model steps (forward + backward + AdamW,
//   through the real training loop) in tokens/s, on the reference shape (vocab 512, d 128, 4 layers,
//   4 heads, ctx 128, 16 × 128 tokens a step) and, with --large, on a GPT-2-124M shape (vocab 50257,
//   d 768, 12 layers, 12 heads, ctx 256, batch 4);
// - KV-cached greedy generation tokens/s; the SFT step's model-FLOPs utilisation;
// - with --rss-steps N (native only): N SFT steps of the 124M shape at 4 × 256, peak RSS;
// - with --flat-steps N (native only): N DPO steps on the reference shape, RSS and tf.memory()'s
//   tensor count after the first tenth of the steps and at the end (a leak shows as growth).
// Options (after `npm run bench -- engine`): --threads N (native and PyTorch threads, default 2),
// --backends native,wasm, --reps N, --large, --rss-steps N, --flat-steps N, --no-pytorch. ALIGNFLOW_BENCH_PYTHON picks
// the Python (default /work/venv/bin/python, then python3); without torch the PyTorch side is skipped
// with a note.
import os from 'node:os';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { createGpt2 } from '../src/ml/models/gpt2.js';
import { generate } from '../src/ml/generate.js';
import { train } from '../src/ml/train/loop.js';
import { collate, type Batch, type BatchSource } from '../src/ml/train/data.js';
import { causalLmLoss } from '../src/ml/train/lm-loss.js';
import { Rng } from '../src/ml/train/rng.js';
import { collatePairs, type PairBatch, type PreparedPair } from '../src/ml/preference-data.js';
import { computeRefLogps, dpoLossFn } from '../src/ml/dpo.js';
import { createRewardModel, rewardLossFn } from '../src/ml/reward.js';
import { useBackend, backendUnavailable, type BackendName } from '../src/ml/backend.js';
import type { Emit } from './index.js';

interface Shape { name: string; vocab: number; ctx: number; d: number; layers: number; heads: number; batch: number; prompt: number }
export const REFERENCE: Shape = { name: 'reference', vocab: 512, ctx: 128, d: 128, layers: 4, heads: 4, batch: 16, prompt: 16 };
export const GPT2_124M: Shape = { name: 'gpt2-124m', vocab: 50257, ctx: 256, d: 768, layers: 12, heads: 12, batch: 4, prompt: 32 };

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const gptConfig = (s: Shape) => ({ vocab_size: s.vocab, n_positions: s.ctx, n_embd: s.d, n_layer: s.layers, n_head: s.heads });

export interface EngineOptions { threads: number; backends: BackendName[]; reps: number; large: boolean; rssSteps: number; flatSteps: number; pytorch: boolean }

export function parseEngineArgs(argv: string[]): EngineOptions {
  const o: EngineOptions = { threads: 2, backends: ['native', 'wasm'], reps: 3, large: false, rssSteps: 0, flatSteps: 0, pytorch: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const num = () => {
      const v = Number(argv[++i]);
      if (!Number.isInteger(v) || v < 1) throw new Error(`bench: ${a} needs a positive integer`);
      return v;
    };
    if (a === '--threads') o.threads = num();
    else if (a === '--reps') o.reps = num();
    else if (a === '--rss-steps') o.rssSteps = num();
    else if (a === '--flat-steps') o.flatSteps = num();
    else if (a === '--large') o.large = true;
    else if (a === '--no-pytorch') o.pytorch = false;
    else if (a === '--backends') o.backends = argv[++i]!.split(',') as BackendName[];
  }
  return o;
}

async function matmulGflops(n: number, reps: number): Promise<number> {
  const a = tf.randomNormal([n, n], 0, 1, 'float32', 1);
  const b = tf.randomNormal([n, n], 0, 1, 'float32', 2);
  const times: number[] = [];
  for (let i = 0; i < reps + 1; i++) {
    const t0 = performance.now();
    const c = tf.matMul(a, b);
    await c.data();
    c.dispose();
    if (i > 0) times.push((performance.now() - t0) / 1000);
  }
  tf.dispose([a, b]);
  return (2 * n ** 3) / median(times) / 1e9;
}

class Fixed<B> implements BatchSource<B> {
  constructor(readonly batch: B) {}
  next() {
    return this.batch;
  }
  state() {
    return {};
  }
  restore() {}
  epoch() {
    return 0;
  }
}

/** Median seconds of one optimizer step over `reps` steps after one warm-up step. */
async function stepSeconds<B>(params: Map<string, tf.Variable>, lossFn: Parameters<typeof train<B>>[0]['lossFn'], batch: B, reps: number): Promise<number> {
  const stamps: number[] = [];
  await train<B>({
    params,
    lossFn,
    data: new Fixed(batch),
    maxSteps: reps + 1,
    schedule: { lr: 1e-4, kind: 'constant', warmupSteps: 0 },
    onProgress: () => void stamps.push(performance.now()),
  });
  return median(stamps.slice(1).map((t, i) => (t - stamps[i]!) / 1000));
}

function randomRows(s: Shape, seed: number): number[][] {
  const rng = new Rng(seed);
  return Array.from({ length: s.batch }, () => Array.from({ length: s.ctx }, () => rng.int(s.vocab)));
}

/** SFT, DPO and reward-model step tokens/s on one shape, the active backend. */
async function trainingSteps(s: Shape, reps: number): Promise<Record<'sft' | 'dpo' | 'rm', number>> {
  const tokens = s.batch * s.ctx;
  const rows = randomRows(s, 1);
  const out = {} as Record<'sft' | 'dpo' | 'rm', number>;
  {
    const model = createGpt2(gptConfig(s), 0);
    const batch = collate(rows.map((ids) => ({ ids, lossMask: ids.map((_, t) => (t >= s.prompt ? 1 : 0)) })), 0);
    out.sft = tokens / (await stepSeconds<Batch>(model.params, (b) => causalLmLoss(model, b), batch, reps));
    model.dispose();
  }
  // batch/2 pairs of full-length rows: chosen and rejected share the prompt, as in a real pair
  const half = s.batch / 2;
  const prepared: PreparedPair[] = Array.from({ length: half }, (_, i) => ({
    promptIds: rows[i]!.slice(0, s.prompt),
    chosenIds: rows[i]!.slice(s.prompt),
    rejectedIds: rows[i + half]!.slice(s.prompt),
  })) as PreparedPair[];
  const pairBatch = collatePairs(prepared, [...prepared.keys()], 0);
  {
    const policy = createGpt2(gptConfig(s), 0);
    const ref = await computeRefLogps(policy, prepared, { batchSize: half, padId: 0 });
    out.dpo = tokens / (await stepSeconds<PairBatch>(policy.params, dpoLossFn(policy, { beta: 0.1, losses: ['sigmoid'] }, ref), pairBatch, reps));
    policy.dispose();
  }
  {
    const base = createGpt2(gptConfig(s), 0);
    const rm = createRewardModel(base, { seed: 1, padTokenId: 0 });
    out.rm = tokens / (await stepSeconds<PairBatch>(rm.params, rewardLossFn(rm), pairBatch, reps));
    rm.dispose();
  }
  return out;
}

async function generation(s: Shape): Promise<number> {
  const model = createGpt2(gptConfig(s), 0);
  const prompts = randomRows({ ...s, batch: 16, ctx: 16 }, 2);
  await generate(model, prompts.slice(0, 2), { maxNewTokens: 4, temperature: 0, eosTokenId: null, useCache: true }); // warm-up
  const t0 = performance.now();
  const r = await generate(model, prompts, { maxNewTokens: 64, temperature: 0, eosTokenId: null, useCache: true });
  const secs = (performance.now() - t0) / 1000;
  model.dispose();
  return r.tokens.reduce((a, t) => a + t.length, 0) / secs;
}

function pytorch(o: EngineOptions, shapes: Shape[]): { figures: Map<string, number>; note?: string } {
  const figures = new Map<string, number>();
  const candidates = [process.env.ALIGNFLOW_BENCH_PYTHON, '/work/venv/bin/python', 'python3'].filter(Boolean) as string[];
  const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'pytorch_ref.py');
  const cfg = JSON.stringify({ threads: o.threads, reps: o.reps, shapes, gen: REFERENCE });
  let note = 'no Python with torch found (set ALIGNFLOW_BENCH_PYTHON)';
  for (const py of candidates) {
    if (spawnSync(py, ['-c', 'import torch, transformers'], { encoding: 'utf8' }).status !== 0) continue;
    const r = spawnSync(py, [script, cfg], { encoding: 'utf8', maxBuffer: 1 << 24, env: { ...process.env, OMP_NUM_THREADS: String(o.threads) } });
    if (r.status !== 0) {
      note = `${py} ${script} failed: ${(r.stderr || '').trim().split('\n').at(-1)}`;
      continue;
    }
    for (const line of r.stdout.split('\n').filter((l) => l.startsWith('{'))) {
      const f = JSON.parse(line) as { name: string; shape?: string; value?: number; version?: string };
      if (f.value !== undefined) figures.set(f.shape ? `${f.name}:${f.shape}` : f.name, f.value);
      if (f.version) figures.set('torch_version:' + f.version, 0);
    }
    return { figures };
  }
  return { figures, note };
}

async function rssRun(steps: number): Promise<{ peakMb: number; stepSecs: number }> {
  const s = GPT2_124M;
  const model = createGpt2(gptConfig(s), 0);
  const batch = collate(randomRows(s, 3).map((ids) => ({ ids, lossMask: ids.map((_, t) => (t >= s.prompt ? 1 : 0)) })), 0);
  let peak = process.memoryUsage().rss;
  const stamps: number[] = [];
  await train<Batch>({
    params: model.params,
    lossFn: (b) => causalLmLoss(model, b),
    data: new Fixed(batch),
    maxSteps: steps,
    schedule: { lr: 1e-4, kind: 'constant', warmupSteps: 0 },
    onProgress: () => {
      stamps.push(performance.now());
      peak = Math.max(peak, process.memoryUsage().rss);
    },
  });
  model.dispose();
  return { peakMb: peak / 2 ** 20, stepSecs: median(stamps.slice(1).map((t, i) => (t - stamps[i]!) / 1000)) };
}

/** N DPO steps on the reference shape: RSS and live tensors after the first tenth and at the end. */
async function flatRun(steps: number): Promise<{ rssEarlyMb: number; rssEndMb: number; tensorsEarly: number; tensorsEnd: number; stepSecs: number }> {
  const s = REFERENCE;
  const rows = randomRows(s, 4);
  const half = s.batch / 2;
  const prepared = Array.from({ length: half }, (_, i) => ({ promptIds: rows[i]!.slice(0, s.prompt), chosenIds: rows[i]!.slice(s.prompt), rejectedIds: rows[i + half]!.slice(s.prompt) })) as PreparedPair[];
  const policy = createGpt2(gptConfig(s), 0);
  const ref = await computeRefLogps(policy, prepared, { batchSize: half, padId: 0 });
  const early = Math.max(1, Math.round(steps / 10));
  let at: { rss: number; tensors: number } | undefined;
  let last: { rss: number; tensors: number } | undefined;
  const stamps: number[] = [];
  await train<PairBatch>({
    params: policy.params,
    lossFn: dpoLossFn(policy, { beta: 0.1, losses: ['sigmoid'] }, ref),
    data: new Fixed(collatePairs(prepared, [...prepared.keys()], 0)),
    maxSteps: steps,
    schedule: { lr: 1e-4, kind: 'constant', warmupSteps: 0 },
    onProgress: ({ step }) => {
      stamps.push(performance.now());
      const now = { rss: process.memoryUsage().rss, tensors: tf.memory().numTensors };
      if (step === early) at = now;
      last = now; // inside the loop, optimizer state still alive: comparable with `at`
    },
  });
  const end = last!;
  policy.dispose();
  return { rssEarlyMb: at!.rss / 2 ** 20, rssEndMb: end.rss / 2 ** 20, tensorsEarly: at!.tensors, tensorsEnd: end.tensors, stepSecs: median(stamps.slice(1).map((t, i) => (t - stamps[i]!) / 1000)) };
}

export async function run(emitRaw: Emit, argv: string[] = []): Promise<void> {
  const o = parseEngineArgs(argv);
  // the machine may be shared: record how busy it was beside every figure
  const emit: Emit = (f) => emitRaw({ ...f, loadavg1: +os.loadavg()[0]!.toFixed(2) });
  const shapes = o.large ? [REFERENCE, GPT2_124M] : [REFERENCE];
  const ours = new Map<string, number>(); // `${backend}:${figure}`
  for (const b of o.backends) {
    const why = await backendUnavailable(b);
    if (why) {
      emit({ bench: 'engine', name: 'skipped', value: 0, unit: '', engine: b, note: why });
      continue;
    }
    await useBackend(b);
    const put = (name: string, value: number, unit: string, extra: Record<string, unknown> = {}) => {
      ours.set(`${b}:${name}`, value);
      emit({ bench: 'engine', name, value: +value.toFixed(2), unit, engine: b, ...extra });
    };
    put('matmul_gflops', await matmulGflops(1024, 4), 'GFLOP/s', { shape: '1024x1024 @ 1024x1024 fp32' });
    for (const s of shapes) {
      if (b === 'wasm' && s === GPT2_124M) continue; // wasm's 4 GB heap cannot hold its training state
      const r = await trainingSteps(s, o.reps);
      for (const k of ['sft', 'dpo', 'rm'] as const) put(`${k}_step_tokens_per_s:${s.name}`, r[k], 'tokens/s', { batch: `${s.batch}x${s.ctx}` });
    }
    put('generate_tokens_per_s_kv_cache', await generation(REFERENCE), 'tokens/s', { batch: 16, prompt_tokens: 16, new_tokens: 64 });
    if (b === 'native' && o.rssSteps > 0) {
      const r = await rssRun(o.rssSteps);
      put('gpt2_124m_sft_peak_rss_mb', r.peakMb, 'MiB', { steps: o.rssSteps, step_s: +r.stepSecs.toFixed(2), batch: '4x256' });
    }
    if (b === 'native' && o.flatSteps > 0) {
      const r = await flatRun(o.flatSteps);
      put('dpo_flat_rss_growth_mb', r.rssEndMb - r.rssEarlyMb, 'MiB', { steps: o.flatSteps, rss_early_mb: +r.rssEarlyMb.toFixed(1), rss_end_mb: +r.rssEndMb.toFixed(1), tensors_early: r.tensorsEarly, tensors_end: r.tensorsEnd, step_s: +r.stepSecs.toFixed(3) });
    }
  }
  // ratios to the first backend (native when present) within this run
  const [first, ...rest] = o.backends.filter((b) => [...ours.keys()].some((k) => k.startsWith(`${b}:`)));
  for (const other of rest) {
    for (const [k, v] of ours) {
      if (!k.startsWith(`${first}:`)) continue;
      const w = ours.get(`${other}:${k.slice(first!.length + 1)}`);
      if (w) emit({ bench: 'engine', name: `ratio_${first}_over_${other}:${k.slice(first!.length + 1)}`, value: +(v / w).toFixed(3), unit: '×' });
    }
  }
  if (!o.pytorch) return;
  const py = pytorch(o, shapes);
  if (py.note) {
    emit({ bench: 'engine', name: 'pytorch_skipped', value: 0, unit: '', note: py.note });
    return;
  }
  for (const [k, v] of py.figures) {
    if (k.startsWith('torch_version:')) continue;
    emit({ bench: 'engine', name: `pytorch:${k}`, value: +v.toFixed(2), unit: k.startsWith('matmul') ? 'GFLOP/s' : 'tokens/s', engine: 'pytorch', threads: o.threads });
    for (const b of o.backends) {
      const mine = ours.get(`${b}:${k}`);
      if (mine) emit({ bench: 'engine', name: `ratio_${b}_over_pytorch:${k}`, value: +(mine / v).toFixed(3), unit: '×' });
    }
  }
}
