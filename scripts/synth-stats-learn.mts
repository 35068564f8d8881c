import fs from 'node:fs';
import { initBackend } from '../src/ml/backend.js';
import { trainBpeTokenizer } from '../src/ml/tokenizer/index.js';
import { createGpt2 } from '../src/ml/models/gpt2.js';
import { runSft } from '../src/ml/train/sft.js';
import { generate } from '../src/ml/generate.js';
import * as sj from '../judges/sentiment.mjs';
import * as cj from '../judges/count.mjs';

const steps = Number(process.argv[2] ?? 400);
const read = (f: string) => fs.readFileSync(f, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
const sSft = read('/work/main/datasets/sentiment/sft.jsonl');
const cSft = read('/work/main/datasets/count/sft.jsonl');
const train = [...sSft, ...cSft];
const evalRecs = [...read('/work/main/datasets/sentiment/sft_eval.jsonl').slice(0, 100), ...read('/work/main/datasets/count/sft_eval.jsonl').slice(0, 50)];
const info = await initBackend();
console.log('backend', info.name);
const tok = trainBpeTokenizer(train.map((r) => r.prompt + r.completion), { vocabSize: Number(process.argv[3] ?? 512) });
const eos = tok.eosTokenId!;
const model = createGpt2({ vocab_size: Number(process.argv[3] ?? 512), n_embd: 128, n_layer: 4, n_head: 4, n_positions: 64, bos_token_id: eos, eos_token_id: eos }, 1);
const t0 = Date.now();
const res = await runSft({
  model, tokenizer: tok, train, eval: evalRecs,
  hyper: { maxSteps: steps, batchSize: 16, gradAccum: 1, lr: 1e-3, schedule: 'cosine', warmupSteps: 20, minLrRatio: 0.1, weightDecay: 0.01, beta1: 0.9, beta2: 0.95, eps: 1e-8, maxGradNorm: 1, maxLength: 64, packing: false, addEos: true, logEvery: 50, evalEvery: steps, seed: 1 },
  onMetrics: (s, m) => console.log('step', s, JSON.stringify(m), ((Date.now() - t0) / 1000).toFixed(1) + 's'),
});
console.log('sft seconds', ((Date.now() - t0) / 1000).toFixed(1), 'initial eval loss', res.initialEvalLoss, 'final', res.finalEvalLoss, 'targetTokens/epoch', res.data.train.targetTokens);

const known = new Set(sj.lexiconWords());
for (const r of sSft) for (const w of sj.tokenize(r.prompt + r.completion)) known.add(w);
const sp = read('/work/main/datasets/sentiment/eval_prompts.jsonl').slice(0, 200).map((r) => r.prompt as string);
const cp = read('/work/main/datasets/count/eval_prompts.jsonl').map((r) => r.prompt as string);
const t1 = Date.now();
const gen = async (prompts: string[]) => {
  const out: string[] = [];
  for (let i = 0; i < prompts.length; i += 50) {
    const batch = prompts.slice(i, i + 50);
    const g = await generate(model, batch.map((p) => tok.encode(p)), { maxNewTokens: 32, temperature: 1, seed: 7 + i });
    out.push(...g.tokens.map((t) => tok.decode(t, { skipSpecialTokens: true })));
  }
  return out;
};
const sOut = await gen(sp);
const cOut = await gen(cp);
const genTokens = sOut.length + cOut.length;
console.log('generation seconds', ((Date.now() - t1) / 1000).toFixed(1), 'for', genTokens, 'samples');
const scores = sOut.map((c, i) => sj.score(sp[i]!, c));
const allKnown = sOut.filter((c) => sj.tokenize(c).every((w) => known.has(w))).length / sOut.length;
console.log('sentiment samples: pos', scores.filter((s) => s > 0).length / scores.length, 'neg', scores.filter((s) => s < 0).length / scores.length, 'all words known', allKnown, 'ends with period', sOut.filter((c) => /\.\s*$/.test(c)).length / sOut.length);
console.log('count compliance', cOut.filter((c, i) => cj.score(cp[i]!, c) === 1).length / cOut.length);
for (let i = 0; i < 8; i++) console.log(JSON.stringify(sp[i]), '->', JSON.stringify(sOut[i]), scores[i]!.toFixed(2));
for (let i = 0; i < 6; i++) console.log(JSON.stringify(cp[i]), '->', JSON.stringify(cOut[i]), cj.check(cp[i]!, cOut[i]!).problems.join('; '));
