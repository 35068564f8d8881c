// Engine benchmarks on the reference model (GPT-2 shape, vocab 512, 128 wide, 4 layers, 4 heads,
// 128 context; 16 sequences): SFT step tokens/s, generation tokens/s with and without the KV cache,
// matmul GFLOP/s of the active backend and the model-FLOPs utilisation of the SFT step.
import os from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { createGpt2 } from '../src/ml/models/gpt2.js';
import { generate } from '../src/ml/generate.js';
import { train } from '../src/ml/train/loop.js';
import { collate, type Batch, type BatchSource } from '../src/ml/train/data.js';
import { causalLmLoss } from '../src/ml/train/lm-loss.js';
import { Rng } from '../src/ml/train/rng.js';
import type { Emit } from './index.js';

export const REFERENCE = { vocab_size: 512, n_positions: 128, n_embd: 128, n_layer: 4, n_head: 4 };
const BATCH = 16;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

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
  a.dispose();
  b.dispose();
  return (2 * n ** 3) / median(times) / 1e9;
}

class Fixed implements BatchSource<Batch> {
  constructor(readonly batch: Batch) {}
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

export async function run(emitRaw: Emit): Promise<void> {
  // the machine is shared: record how busy it was beside every figure
  const emit: Emit = (f) => emitRaw({ ...f, loadavg1: +os.loadavg()[0]!.toFixed(2) });
  const shape = `vocab ${REFERENCE.vocab_size}, d ${REFERENCE.n_embd}, ${REFERENCE.n_layer} layers, ${REFERENCE.n_head} heads, ctx ${REFERENCE.n_positions}`;
  const peak = await matmulGflops(1024, 4);
  emit({ bench: 'engine', name: 'matmul_gflops', value: +peak.toFixed(2), unit: 'GFLOP/s', shape: '1024x1024 @ 1024x1024 fp32' });

  const model = createGpt2(REFERENCE, 0);
  const nParams = [...model.params.values()].reduce((a, v) => a + v.size, 0);
  const rng = new Rng(1);
  const T = REFERENCE.n_positions;
  const seqs = Array.from({ length: BATCH }, () => Array.from({ length: T }, () => rng.int(REFERENCE.vocab_size)));
  // SFT-shaped rows: a 16-token prompt, 112 completion tokens
  const batch = collate(seqs.map((ids) => ({ ids, lossMask: ids.map((_, t) => (t >= 16 ? 1 : 0)) })), 0);

  // --- SFT step (forward + backward + AdamW), through the real training loop
  const steps = 5;
  const stamps: number[] = [];
  await train<Batch>({
    params: model.params,
    lossFn: (b) => causalLmLoss(model, b),
    data: new Fixed(batch),
    maxSteps: steps + 1,
    schedule: { lr: 1e-4, kind: 'constant', warmupSteps: 0 },
    onProgress: () => void stamps.push(performance.now()),
  });
  const stepSecs = median(stamps.slice(1).map((t, i) => (t - stamps[i]!) / 1000));
  const tokens = BATCH * T;
  const tps = tokens / stepSecs;
  // training FLOPs per token ≈ 6·N (matmuls, fwd+bwd) + 12·L·T·d (attention scores and values), PaLM appendix B
  const flopsPerToken = 6 * nParams + 12 * REFERENCE.n_layer * T * REFERENCE.n_embd;
  const achieved = (tps * flopsPerToken) / 1e9;
  emit({ bench: 'engine', name: 'sft_step_tokens_per_s', value: Math.round(tps), unit: 'tokens/s', step_s: +stepSecs.toFixed(3), batch: `${BATCH}x${T}`, params: nParams, model: shape });
  emit({ bench: 'engine', name: 'sft_step_model_gflops', value: +achieved.toFixed(2), unit: 'GFLOP/s', flops_per_token: flopsPerToken });
  emit({ bench: 'engine', name: 'sft_mfu', value: +(achieved / peak).toFixed(3), unit: 'fraction of measured matmul GFLOP/s' });

  // --- generation: 16 prompts of 16 tokens, 64 new tokens each, greedy, EOS never stops early
  const prompts = seqs.map((s) => s.slice(0, 16));
  const newTokens = 64;
  for (const useCache of [true, false]) {
    await generate(model, prompts.slice(0, 2), { maxNewTokens: 4, temperature: 0, eosTokenId: null, useCache }); // warm-up
    const t0 = performance.now();
    const r = await generate(model, prompts, { maxNewTokens: newTokens, temperature: 0, eosTokenId: null, useCache });
    const secs = (performance.now() - t0) / 1000;
    const n = r.tokens.reduce((a, t) => a + t.length, 0);
    emit({ bench: 'engine', name: useCache ? 'generate_tokens_per_s_kv_cache' : 'generate_tokens_per_s_no_cache', value: Math.round(n / secs), unit: 'tokens/s', batch: BATCH, prompt_tokens: 16, new_tokens: newTokens, seconds: +secs.toFixed(2) });
  }
  model.dispose();
}
