// Sizing probe for the demo (not part of the product): trains a fresh GPT-2-shaped model with SFT on
// the mixed corpus, then samples on held-out prompts and reports what the judges think of the
// samples, with the CPU time each phase took. Usage:
//   npx tsx scripts/demo-probe.ts '{"n_embd":64,"n_layer":2,"steps":300,"batch":32,"lr":3e-3}'
import fs from 'node:fs';
import { initBackend } from '../src/ml/backend.js';
import { trainBpeTokenizer } from '../src/ml/tokenizer/index.js';
import { createGpt2 } from '../src/ml/models/gpt2.js';
import { runSft } from '../src/ml/train/sft.js';
import { generate } from '../src/ml/generate.js';
import * as sentiment from '../judges/sentiment.mjs';
import * as count from '../judges/count.mjs';

const o = { n_embd: 64, n_layer: 2, n_head: 4, vocab: 512, steps: 300, batch: 32, lr: 3e-3, maxLength: 48, nEval: 200, ...JSON.parse(process.argv[2] ?? '{}') } as Record<string, number>;
const read = (f: string) => fs.readFileSync(f, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, string>);
const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

const t0 = cpu();
const w0 = Date.now();
const info = await initBackend();
const train = read('datasets/mixed/sft.jsonl');
const evalSft = read('datasets/mixed/sft_eval.jsonl').slice(0, 200);
const tok = trainBpeTokenizer(train.map((r) => r.prompt! + r.completion!), { vocabSize: o.vocab!, modelMaxLength: 64 });
const lens = train.slice(0, 2000).map((r) => tok.encode(r.prompt! + r.completion!).length);
console.log('mean tokens/text', lens.reduce((a, b) => a + b, 0) / lens.length, 'max', Math.max(...lens));
const model = createGpt2({ vocab_size: o.vocab!, n_positions: 64, n_embd: o.n_embd!, n_layer: o.n_layer!, n_head: o.n_head!, bos_token_id: tok.eosTokenId!, eos_token_id: tok.eosTokenId! }, 1);
let n = 0;
for (const v of model.params.values()) n += v.size;
console.log(JSON.stringify({ backend: info.name, params: n, tokVocab: tok.vocabSize, setupCpu: +(cpu() - t0).toFixed(1) }));

const t1 = cpu();
const w1 = Date.now();
const res = await runSft({
  model,
  tokenizer: tok,
  train: train as never,
  eval: evalSft as never,
  hyper: { maxSteps: o.steps, batchSize: o.batch!, gradAccum: 1, lr: o.lr!, schedule: 'cosine', warmupSteps: 20, minLrRatio: 0.1, weightDecay: 0, beta1: 0.9, beta2: 0.999, eps: 1e-8, maxGradNorm: 1, maxLength: o.maxLength!, packing: false, addEos: true, logEvery: 50, evalEvery: Math.max(1, Math.floor(o.steps! / 4)), seed: 1 },
  log: (m) => console.log(m),
  onMetrics: (s, m) => (m.eval_loss !== undefined || s % 50 === 0 ? console.log(s, JSON.stringify(m)) : undefined),
});
console.log(JSON.stringify({ sftCpu: +(cpu() - t1).toFixed(1), sftWall: (Date.now() - w1) / 1000, finalEval: res.finalEvalLoss, tokens: res.data.train.targetTokens }));

async function sample(prompts: string[], seed: number) {
  const g = await generate(model, prompts.map((p) => tok.encode(p)), { maxNewTokens: 32, temperature: 1, seed, eosTokenId: tok.eosTokenId! });
  return g.tokens.map((t) => tok.decode(t.filter((x) => x !== tok.eosTokenId), { skipSpecialTokens: true }));
}
const t2 = cpu();
const sp = read('datasets/sentiment/eval_prompts.jsonl').slice(0, o.nEval).map((r) => r.prompt!);
const sOut: string[] = [];
for (let i = 0; i < sp.length; i += 32) sOut.push(...(await sample(sp.slice(i, i + 32), i)));
const scores = sOut.map((r, i) => sentiment.score(sp[i]!, r));
const cp = read('datasets/count/eval_prompts.jsonl').map((r) => r.prompt!);
const cOut: string[] = [];
for (let i = 0; i < cp.length; i += 32) cOut.push(...(await sample(cp.slice(i, i + 32), 1000 + i)));
const comp = cOut.map((r, i) => count.score(cp[i]!, r));
const corpusWords = new Set(train.flatMap((r) => (r.prompt! + ' ' + r.completion!).toLowerCase().match(/[a-z]+/g) ?? []));
const unk = sOut.filter((r) => (r.toLowerCase().match(/[a-z]+/g) ?? []).some((w) => !corpusWords.has(w))).length;
console.log(JSON.stringify({
  genCpu: +(cpu() - t2).toFixed(1),
  sentiment: { pos: scores.filter((s) => s > 0).length / scores.length, neg: scores.filter((s) => s < 0).length / scores.length, mean: scores.reduce((a, b) => a + b, 0) / scores.length },
  countCompliance: comp.reduce((a, b) => a + b, 0) / comp.length,
  samplesWithNonLexiconWords: unk / sOut.length,
  totalCpu: +(cpu() - t0).toFixed(1),
  totalWall: (Date.now() - w0) / 1000,
}));
for (let i = 0; i < 8; i++) console.log(JSON.stringify([sp[i], sOut[i], scores[i]!.toFixed(2)]));
for (let i = 0; i < 5; i++) console.log(JSON.stringify([cp[i], cOut[i], comp[i]]));
