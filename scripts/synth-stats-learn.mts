// Learnability check (not a test; a few CPU-minutes): trains a tiny GPT-2-shaped model from scratch
// on datasets/mixed/sft.jsonl with the engine's runSft, samples completions for held-out prompts and
// reports how much of the synthetic language it learned. Figures in docs/synth.md came from it.
//   npx tsx scripts/synth-stats-learn.mts [STEPS=300] [BPE_VOCAB=1024]
import fs from 'node:fs';
import { initBackend } from '../src/ml/backend.js';
import { trainBpeTokenizer } from '../src/ml/tokenizer/index.js';
import { createGpt2 } from '../src/ml/models/gpt2.js';
import { runSft } from '../src/ml/train/sft.js';
import { generate } from '../src/ml/generate.js';
import * as sj from '../judges/sentiment.mjs';
import * as cj from '../judges/count.mjs';
import type { SftRecord } from '../src/data/formats.js';

const steps = Number(process.argv[2] ?? 300);
const vocabSize = Number(process.argv[3] ?? 1024);
const read = (f: string) => fs.readFileSync(f, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, string>);
const train = read('datasets/mixed/sft.jsonl');
const heldOut = read('datasets/mixed/sft_eval.jsonl').slice(0, 150);
const info = await initBackend();
console.log('backend', info.name);
const tok = trainBpeTokenizer(train.map((r) => r.prompt! + r.completion!), { vocabSize });
const eos = tok.eosTokenId!;
const model = createGpt2({ vocab_size: vocabSize, n_embd: 128, n_layer: 4, n_head: 4, n_positions: 64, bos_token_id: eos, eos_token_id: eos }, 1);
const t0 = Date.now();
const res = await runSft({
  model,
  tokenizer: tok,
  train: train as SftRecord[],
  eval: heldOut as SftRecord[],
  hyper: { maxSteps: steps, batchSize: 16, gradAccum: 1, lr: 1e-3, schedule: 'cosine', warmupSteps: 20, minLrRatio: 0.1, weightDecay: 0.01, beta1: 0.9, beta2: 0.95, eps: 1e-8, maxGradNorm: 1, maxLength: 64, packing: false, addEos: true, logEvery: 50, evalEvery: steps, seed: 1 },
  onMetrics: (s, m) => console.log('step', s, JSON.stringify(m), `${((Date.now() - t0) / 1000).toFixed(1)}s`),
});
console.log('sft seconds', ((Date.now() - t0) / 1000).toFixed(1), 'eval loss', res.initialEvalLoss, '→', res.finalEvalLoss);

const known = new Set(sj.lexiconWords());
for (const r of train) for (const w of sj.tokenize(r.prompt! + r.completion!)) known.add(w);
const sp = read('datasets/sentiment/eval_prompts.jsonl').slice(0, 200).map((r) => r.prompt!);
const cp = read('datasets/count/eval_prompts.jsonl').map((r) => r.prompt!);
const sample = async (prompts: string[]) => {
  const out: string[] = [];
  for (let i = 0; i < prompts.length; i += 50) {
    const g = await generate(model, prompts.slice(i, i + 50).map((p) => tok.encode(p)), { maxNewTokens: 32, temperature: 1, seed: 7 + i });
    out.push(...g.tokens.map((t) => tok.decode(t, { skipSpecialTokens: true })));
  }
  return out;
};
const t1 = Date.now();
const sOut = await sample(sp);
const cOut = await sample(cp);
console.log('generation seconds', ((Date.now() - t1) / 1000).toFixed(1), 'for', sOut.length + cOut.length, 'samples');
const scores = sOut.map((c, i) => sj.score(sp[i]!, c));
const share = (xs: unknown[], f: (x: never) => boolean) => (xs.filter(f as (x: unknown) => boolean).length / xs.length).toFixed(3);
console.log(
  'sentiment samples: positive',
  share(scores, (s: number) => s > 0),
  'negative',
  share(scores, (s: number) => s < 0),
  'only corpus words',
  share(sOut, (c: string) => sj.tokenize(c).every((w) => known.has(w))),
);
console.log('count compliance', share(cOut.map((c, i) => cj.score(cp[i]!, c)), (s: number) => s === 1));
for (let i = 0; i < 6; i++) console.log(JSON.stringify(sp[i]), '->', JSON.stringify(sOut[i]), scores[i]!.toFixed(2));
for (let i = 0; i < 6; i++) console.log(JSON.stringify(cp[i]), '->', JSON.stringify(cOut[i]), cj.check(cp[i]!, cOut[i]!).problems.join('; '));
