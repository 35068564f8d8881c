// Learnability figures for the synthetic tasks (not a test): corpus size, vocabulary, tokens per
// text under a 512- and a 1024-token byte-level BPE, the ground-truth judge's score distribution, and how
// clearly it separates best-of-k samples from random ones. Run:
//   npx tsx scripts/synth-stats.ts [--seed N] [--trials N]
import * as sentimentJudge from '../judges/sentiment.mjs';
import * as countJudge from '../judges/count.mjs';
import { generateCount, generateSentiment, Prng, sampleCompletion } from '../src/data/synth/index.js';
import { trainBpeTokenizer } from '../src/ml/tokenizer/index.js';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const seed = arg('--seed', 1);
const trials = arg('--trials', 4000);

const quantiles = (xs: number[], qs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return qs.map((q) => s[Math.min(s.length - 1, Math.floor(q * s.length))]!);
};
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;
const print = (figure: string, value: unknown) => console.log(JSON.stringify({ figure, value }));

const sent = generateSentiment({ seed });
const count = generateCount({ seed });
const file = (ds: typeof sent, name: string) => ds.files.find((f) => f.name === name)!.records;
const sSft = file(sent, 'sft.jsonl');
const cSft = file(count, 'sft.jsonl');
const text = (r: Record<string, string>) => r.prompt! + r.completion!;

// Vocabulary and lengths.
for (const [task, sft] of [['sentiment', sSft], ['count', cSft]] as const) {
  const words = new Set<string>();
  for (const r of sft) for (const w of sentimentJudge.tokenize(text(r))) words.add(w);
  print(`${task}.sft.records`, sft.length);
  print(`${task}.sft.distinct_words`, words.size);
  print(`${task}.sft.chars_per_text.mean`, round(mean(sft.map((r) => text(r).length)), 1));
  print(`${task}.sft.words_per_text.mean`, round(mean(sft.map((r) => sentimentJudge.tokenize(text(r)).length)), 1));
}

// Tokens under a byte-level BPE trained on both SFT corpora (as the demo would), at 512 and 1024
// tokens: with 1024 every word of both tasks is one token, so a tiny model learns words, not spellings.
for (const vocabSize of [512, 1024]) {
  const t0 = Date.now();
  const tok = trainBpeTokenizer([...sSft, ...cSft].map(text), { vocabSize });
  const b = `bpe${vocabSize}`;
  print(`${b}.train_seconds`, round((Date.now() - t0) / 1000, 1));
  let words = 0;
  let single = 0;
  for (const r of [...sSft, ...cSft]) {
    for (const m of text(r).matchAll(/ ?[a-z]+/g)) {
      words++;
      if (tok.encode(m[0]).length === 1) single++;
    }
  }
  print(`${b}.share_of_words_that_are_one_token`, round(single / words));
  for (const [task, sft] of [['sentiment', sSft], ['count', cSft]] as const) {
    const p = sft.map((r) => tok.encode(r.prompt!).length);
    const c = sft.map((r) => tok.encode(r.completion!).length);
    const full = sft.map((r, i) => p[i]! + c[i]! + 1); // + EOS
    print(`${task}.${b}.prompt_tokens.mean`, round(mean(p), 1));
    print(`${task}.${b}.completion_tokens.[mean,p95,max]`, [round(mean(c), 1), ...quantiles(c, [0.95, 1])]);
    print(`${task}.${b}.text_tokens_with_eos.[mean,p50,p95,max]`, [round(mean(full), 1), ...quantiles(full, [0.5, 0.95, 1])]);
    const prefs = file(task === 'sentiment' ? sent : count, 'prefs.jsonl');
    const pairTokens = prefs.map((r) => 2 * tok.encode(r.prompt!).length + tok.encode(r.chosen!).length + tok.encode(r.rejected!).length + 2);
    print(`${task}.${b}.tokens_per_pair_(both_sequences).mean`, round(mean(pairTokens), 1));
  }
}

// The ground-truth judge on the SFT corpus: should be spread, about half positive, half negative.
const scores = sSft.map((r) => sentimentJudge.score(r.prompt!, r.completion!));
print('sentiment.judge.sft.share_[positive,zero,negative]', [
  round(scores.filter((s) => s > 0).length / scores.length),
  round(scores.filter((s) => s === 0).length / scores.length),
  round(scores.filter((s) => s < 0).length / scores.length),
]);
print('sentiment.judge.sft.score_quantiles_[5,25,50,75,95]', quantiles(scores, [0.05, 0.25, 0.5, 0.75, 0.95]).map((x) => round(x)));
print('sentiment.judge.sft.distinct_scores', new Set(scores).size);
// What a policy must reach: the win rate against random corpus samples of one that always writes
// a text of raw score x (e.g. 4 = "great. i loved it.", 6 = "extremely brilliant.").
const raws = sSft.map((r) => sentimentJudge.rawScore(r.prompt + ' ' + r.completion));
print(
  'sentiment.win_rate_of_a_policy_always_at_raw_[1,2,3,4,5,6,8]',
  [1, 2, 3, 4, 5, 6, 8].map((x) => round((raws.filter((v) => v < x).length + raws.filter((v) => v === x).length / 2) / raws.length)),
);

// Separation: a policy (best-of-k of the corpus distribution, or "always positive") against one
// random corpus sample, on held-out prompts, ties counting one half (as win rates usually do).
const evalPrompts = file(sent, 'eval_prompts.jsonl').map((r) => r.prompt!);
const rng = new Prng(seed, 'stats');
const judgeOf = (p: string, c: string) => sentimentJudge.score(p, c);
function winRate(policy: (p: string) => string): { win_rate: number; tie_rate: number; mean_score: number } {
  let w = 0;
  let t = 0;
  let sum = 0;
  for (let i = 0; i < trials; i++) {
    const p = evalPrompts[i % evalPrompts.length]!;
    const a = judgeOf(p, policy(p));
    const b = judgeOf(p, sampleCompletion(rng, p));
    sum += a;
    if (a > b) w++;
    else if (a === b) t++;
  }
  return { win_rate: round((w + t / 2) / trials), tie_rate: round(t / trials), mean_score: round(sum / trials) };
}
const bestOf = (k: number, latent?: -1 | 0 | 1) => (p: string) => {
  let best = '';
  let bestScore = -Infinity;
  for (let j = 0; j < k; j++) {
    const c = sampleCompletion(rng, p, latent);
    const s = judgeOf(p, c);
    if (s > bestScore) [best, bestScore] = [c, s];
  }
  return best;
};
for (const k of [1, 2, 4, 8, 16]) print(`sentiment.best_of_${k}_vs_random`, winRate(bestOf(k)));
print('sentiment.always_positive_vs_random', winRate(bestOf(1, 1)));
print('sentiment.always_positive_best_of_4_vs_random', winRate(bestOf(4, 1)));

// Labeled pairs: the judge's gap between chosen and rejected.
for (const name of ['prefs.jsonl', 'eval_prefs.jsonl']) {
  const gaps = file(sent, name).map((r) => sentimentJudge.rawScore(r.prompt + ' ' + r.chosen) - sentimentJudge.rawScore(r.prompt + ' ' + r.rejected));
  print(`sentiment.${name}.raw_gap_quantiles_[5,50,95]`, quantiles(gaps, [0.05, 0.5, 0.95]));
}

// How hard the preference sets are: a Bradley–Terry model that is linear in unigram + bigram
// counts (bigrams see "not bad", "very good"), trained by SGD on the first N of prefs.jsonl, scored
// on eval_prefs.jsonl. A transformer reward model or DPO's implicit reward should do at least as well.
for (const n of [500, 2000]) {
  const w = new Map<string, number>();
  const feats = (t: string) => {
    const k = sentimentJudge.tokenize(t);
    return [...k, ...k.slice(1).map((x, i) => k[i] + '_' + x)];
  };
  const r = (t: string) => feats(t).reduce((acc, x) => acc + (w.get(x) ?? 0), 0);
  const train = file(sent, 'prefs.jsonl').slice(0, n);
  for (let epoch = 0; epoch < 20; epoch++) {
    for (const p of train) {
      const g = 1 / (1 + Math.exp(r(p.chosen!) - r(p.rejected!))); // −d/dΔ of log σ(Δ)
      for (const x of feats(p.chosen!)) w.set(x, (w.get(x) ?? 0) + 0.05 * g);
      for (const x of feats(p.rejected!)) w.set(x, (w.get(x) ?? 0) - 0.05 * g);
    }
  }
  const ev = file(sent, 'eval_prefs.jsonl');
  print(`sentiment.bigram_bt_model_on_${n}_prefs.eval_prefs_accuracy`, round(ev.filter((p) => r(p.chosen!) > r(p.rejected!)).length / ev.length));
}

// Counting: the SFT corpus's compliance (1 − error rate) and the judge on the labeled pairs.
const comply = cSft.map((r) => countJudge.score(r.prompt!, r.completion!));
print('count.judge.sft.compliance', round(mean(comply)));
for (const name of ['prefs.jsonl', 'eval_prefs.jsonl']) {
  const ok = file(count, name).every((r) => countJudge.score(r.prompt!, r.chosen!) === 1 && countJudge.score(r.prompt!, r.rejected!) === 0);
  print(`count.${name}.judge_agrees_with_labels`, ok);
}
