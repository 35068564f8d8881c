// The eval stage on tiny real models (tfjs, real SQLite-backed artifact store, real judge modules):
// KL of a model against itself is 0, judge errors are counted (not ties), contamination is flagged,
// and the artifact holds report.json + report.html.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { openDb } from '../../src/store/db.js';
import { createLocalStore } from '../../src/store/artifacts.js';
import { importDataset } from '../../src/data/datasets.js';
import { createGpt2 } from '../../src/ml/models/gpt2.js';
import { saveModelDir } from '../../src/ml/models/io.js';
import { bytesTokenizer } from '../../src/ml/tokenizer/index.js';
import { initBackend } from '../../src/ml/backend.js';
import { evalStage, evalConfigSchema, type EvalStageContext } from '../../src/stages/eval.js';
import type { EvalReport } from '../../src/eval/report-types.js';
import type { ArtifactManifest } from '../../src/store/types.js';
import { loadModelArtifact } from '../../src/ml/models/store.js';
import { completionLogps } from '../../src/ml/logprobs.js';
import { preferenceRecordText, sftRecordText } from '../../src/ml/train/records.js';
import { tmpDir } from '../helpers/tmp.js';
import * as tf from '@tensorflow/tfjs';
import { implicitRewards, type PreferenceLossName } from '../../src/ml/losses/index.js';

await initBackend();
const home = tmpDir();
const db = openDb(path.join(home, 'state.db'));
const store = createLocalStore(db, home);
const tok = bytesTokenizer({ modelMaxLength: 64 });

async function model(seed: number, name: string, metadata: Record<string, unknown> = {}): Promise<ArtifactManifest> {
  const m = createGpt2({ vocab_size: 260, n_positions: 64, n_embd: 16, n_layer: 1, n_head: 2, eos_token_id: tok.eosTokenId, bos_token_id: tok.eosTokenId }, seed);
  const dir = path.join(home, name);
  saveModelDir(m, tok, dir);
  m.dispose();
  return store.put({ kind: 'model', name, files: fs.readdirSync(dir).map((f) => ({ path: f, sourceFile: path.join(dir, f) })), metadata });
}

async function dataset(name: string, lines: unknown[]): Promise<ArtifactManifest> {
  const f = path.join(home, `${name}.jsonl`);
  fs.writeFileSync(f, lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
  return (await importDataset(db, store, f, { name })).artifact;
}

const evalPrompts = ['the movie was', 'this film is', 'the plot felt', 'overall the cast', 'the ending was', 'i thought the music'];
const candidate = await model(4, 'cand');
const other = await model(9, 'other');
// The same weights as a separate artifact: loaded and run separately, so KL ≈ 0 is computed, not short-cut.
const candidateCopy = await model(4, 'cand-copy', { copy: true });
const prompts = await dataset('eval-prompts', evalPrompts.map((prompt) => ({ prompt })));
const train = await dataset('train-prompts', [{ prompt: 'THE MOVIE WAS ' }, { prompt: 'unrelated' }, { prompt: 'the  ending was' }]);
const pairs = await dataset('eval-pairs', [
  { prompt: 'the movie was', chosen: ' great', rejected: ' awful' },
  { prompt: 'the plot', chosen: ' wonderful', rejected: ' dull' },
]);
const heldout = await dataset('heldout', [{ prompt: 'the movie', completion: ' was great fun.' }, { prompt: 'a', completion: ' dull plot.' }]);

// A pairwise judge that throws on one prompt and returns an invalid verdict on another.
const badJudge = path.join(home, 'flaky-judge.mjs');
fs.writeFileSync(badJudge, `export const name = 'flaky'; export const version = '2';
export function judge(prompt, a, b) {
  if (prompt === 'this film is') throw new Error('boom');
  if (prompt === 'the plot felt') return 'maybe';
  return a.length >= b.length ? 'a' : 'b';
}\n`);
const sentiment = path.resolve('judges/sentiment.mjs');

function ctxFor(inputs: Record<string, ArtifactManifest>, config: unknown, history?: EvalStageContext['history']) {
  const metrics: Record<string, number>[] = [];
  const ctx: EvalStageContext = {
    runId: 'r-eval', stageId: 's-eval', stageName: 'eval', kind: 'eval',
    config: evalConfigSchema.parse(config), inputs, store,
    workDir: fs.mkdtempSync(path.join(home, 'work-')), seed: 7,
    latestCheckpoint: async () => undefined,
    saveCheckpoint: async () => { throw new Error('no checkpoints in eval'); },
    progress: () => {}, metrics: (_s, v) => void metrics.push(v),
    log: { debug() {}, info() {}, warn() {}, error() {} },
    signal: new AbortController().signal,
    history,
  };
  return { ctx, metrics };
}

async function reportOf(m: ArtifactManifest): Promise<EvalReport> {
  return JSON.parse((await store.readFile(m.id, 'report.json')).toString('utf8')) as EvalReport;
}

test('a model against itself: KL ≈ 0, identical samples, every comparison a tie', { timeout: 300_000 }, async () => {
  assert.notEqual(candidateCopy.id, candidate.id);
  const { ctx } = ctxFor({ model: candidate, baseline_self: candidateCopy, prompts }, {
    judges: [{ type: 'rule', module: sentiment }], sampling: { max_new_tokens: 8 }, bootstrap_resamples: 200,
  });
  const out = await evalStage.run(ctx);
  assert.equal(out.status, 'done');
  if (out.status !== 'done') return;
  const r = await reportOf(out.outputs.report!);
  const cand = r.modelStats.find((s) => s.label === 'candidate')!;
  assert.ok(cand.kl, 'KL computed');
  assert.ok(Math.abs(cand.kl!.k1.value) < 1e-6, `k1 ${cand.kl!.k1.value}`);
  assert.ok(Math.abs(cand.kl!.k3.value) < 1e-6, `k3 ${cand.kl!.k3.value}`);
  assert.ok(cand.kl!.meanTokens > 0);
  // Same weights, same sampling seed → the same text.
  for (const s of r.samples) assert.equal(s.responses.candidate!.text, s.responses.self!.text);
  const c = r.comparisons[0]!;
  assert.equal(c.winRate.ties, evalPrompts.length);
  assert.equal(c.winRate.value, 0.5);
  assert.equal(r.provenance.sampling.max_new_tokens, 8);
  assert.equal(r.judges[0]!.name, 'sentiment-lexicon');
});

test('two models, rule judges, eval pairs, held-out loss, contamination, judge errors counted', { timeout: 300_000 }, async () => {
  const { ctx, metrics } = ctxFor({ model: candidate, baseline_sft: other, prompts, pairs, heldout, train }, {
    judges: [{ type: 'rule', module: sentiment }, { type: 'rule', module: badJudge }],
    sampling: { max_new_tokens: 8 }, bootstrap_resamples: 200,
  }, () => ({ curves: [{ stage: 'dpo', kind: 'dpo', metric: 'loss', points: [[1, Math.LN2], [2, Math.LN2], [3, Math.LN2]] }], stageConfigs: { dpo: { beta: 0.1 } } }));
  const out = await evalStage.run(ctx);
  assert.equal(out.status, 'done');
  if (out.status !== 'done') return;
  const m = out.outputs.report!;
  assert.equal(m.kind, 'eval-report');
  assert.deepEqual(m.files.map((f) => f.path).sort(), ['report.html', 'report.json']);
  const r = await reportOf(m);
  // Judge errors: 'this film is' threw (2 orders), 'the plot felt' returned 'maybe' (2 orders).
  const flaky = r.comparisons.find((c) => c.judge === 'flaky')!;
  assert.equal(flaky.winRate.errors, 4);
  assert.equal(flaky.winRate.n, (evalPrompts.length - 2) * 2);
  assert.ok(flaky.errorExamples.some((e) => /failed: boom/.test(e.message)));
  assert.ok(flaky.errorExamples.some((e) => /"maybe"/.test(e.message)));
  assert.ok(flaky.orderConsistency && flaky.orderConsistency.n === evalPrompts.length - 2);
  assert.ok(r.warnings.some((w) => w.code === 'judge_errors'));
  // Contamination: two eval prompts appear (modulo case/spaces) in the training prompts.
  assert.equal(r.contamination!.overlapping, 2);
  assert.ok(r.warnings.some((w) => w.code === 'contamination'));
  // Preference metrics, KL, held-out loss are there and finite.
  const cand = r.modelStats.find((s) => s.label === 'candidate')!;
  assert.ok(Number.isFinite(cand.implicitReward!['eval_rewards/margins']));
  assert.equal(cand.implicitReward!.pairs, 2);
  assert.ok(cand.heldOut!.loss > 0 && cand.heldOut!.perplexity > 1);
  assert.ok(cand.kl!.k3.value >= 0);
  const sft = r.modelStats.find((s) => s.label === 'sft')!;
  assert.ok(Math.abs(sft.kl!.k1.value) < 1e-6, 'the reference against itself');
  // Curves and their warnings came through the history port.
  assert.ok(r.warnings.some((w) => w.code === 'dpo_loss_stuck'));
  assert.deepEqual(r.provenance.stageConfigs, { dpo: { beta: 0.1 } });
  // Headline metrics recorded; HTML carries the same win rate.
  const key = 'win_rate/sft/sentiment-lexicon';
  const wr = r.summary.find((s) => s.key === key)!;
  assert.equal(metrics[0]![`eval/${key}`], wr.value);
  const html = (await store.readFile(m.id, 'report.html')).toString('utf8');
  assert.ok(html.includes(`data-key="${key}" data-value="${wr.value}"`));
  assert.doesNotMatch(html, /https?:\/\//);
});

test('bad configuration fails clearly', async () => {
  await assert.rejects(evalStage.run(ctxFor({ prompts }, {}).ctx), /needs a "model" input/);
  const { ctx } = ctxFor({ model: candidate, prompts }, { judges: [{ type: 'rule', module: path.join(home, 'missing.mjs') }] });
  await assert.rejects(evalStage.run(ctx), /does not exist/);
});

test('per-token log-probs (used by KL) sum to the engine\'s completion log-probs', async () => {
  const { completionTokenLogps } = await import('../../src/eval/token-logps.js');
  const { completionLogps } = await import('../../src/ml/logprobs.js');
  const { createGpt2: mk } = await import('../../src/ml/models/gpt2.js');
  const m = mk({ vocab_size: 260, n_positions: 64, n_embd: 16, n_layer: 1, n_head: 2 }, 11);
  try {
    const items = [
      { promptIds: tok.encode('the movie'), completionIds: tok.encode(' was great') },
      { promptIds: [], completionIds: tok.encode('abc') }, // empty prompt: first token unscored
      { promptIds: tok.encode('a longer prompt here'), completionIds: tok.encode('!') },
    ];
    const per = await completionTokenLogps(m, items, { batchSize: 2 });
    const sums = await completionLogps(m, items, { batchSize: 2 });
    per.forEach((p, i) => {
      assert.equal(p.length, sums[i]!.tokens);
      assert.ok(Math.abs(p.reduce((a, b) => a + b, 0) - sums[i]!.sum) < 1e-4, `item ${i}`);
      for (const x of p) assert.ok(x < 0);
    });
  } finally {
    m.dispose();
  }
});

test('eval pairs and held-out records are scored as the training stages tokenize them (EOS appended)', { timeout: 300_000 }, async () => {
  const beta = 0.5;
  const run = async (addEos: boolean) => {
    const { ctx } = ctxFor({ model: candidate, reference: other, prompts, pairs, heldout }, { sampling: { max_new_tokens: 4 }, beta, add_eos: addEos, bootstrap_resamples: 200 });
    const out = await evalStage.run(ctx);
    assert.equal(out.status, 'done');
    if (out.status !== 'done') throw new Error('not done');
    return (await reportOf(out.outputs.report!)).modelStats.find((s) => s.label === 'candidate')!;
  };
  // Independently: the same records through TRL's record → text mapping, scored by the engine.
  const expected = async (addEos: boolean) => {
    const pol = await loadModelArtifact(store, candidate.id);
    const ref = await loadModelArtifact(store, other.id);
    try {
      const recs = [
        { prompt: 'the movie was', chosen: ' great', rejected: ' awful' },
        { prompt: 'the plot', chosen: ' wonderful', rejected: ' dull' },
      ];
      const items = (k: 'chosen' | 'rejected') => recs.map((r) => {
        const t = preferenceRecordText(tok, r, { addEos });
        return { promptIds: tok.encode(t.prompt), completionIds: tok.encode(t[k]) };
      });
      const lp = async (m: typeof pol, k: 'chosen' | 'rejected') => (await completionLogps(m.model, items(k), { padId: tok.padTokenId })).map((x) => x.sum);
      const [pc, pr, rc, rr] = [await lp(pol, 'chosen'), await lp(pol, 'rejected'), await lp(ref, 'chosen'), await lp(ref, 'rejected')];
      const margins = pc.map((_, i) => beta * (pc[i]! - rc[i]!) - beta * (pr[i]! - rr[i]!));
      const held = [{ prompt: 'the movie', completion: ' was great fun.' }, { prompt: 'a', completion: ' dull plot.' }].map((r) => {
        const t = sftRecordText(tok, r, { addEos });
        return { promptIds: tok.encode(t.prompt), completionIds: tok.encode(t.completion) };
      });
      const h = await completionLogps(pol.model, held, { padId: tok.padTokenId });
      return { margin: (margins[0]! + margins[1]!) / 2, loss: -(h[0]!.sum + h[1]!.sum) / (h[0]!.tokens + h[1]!.tokens) };
    } finally {
      pol.model.dispose();
      ref.model.dispose();
    }
  };
  const withEos = await run(true);
  const want = await expected(true);
  const without = await expected(false);
  assert.ok(Math.abs(want.margin - without.margin) > 1e-3, 'the EOS token changes the margin (otherwise this test proves nothing)');
  assert.ok(Math.abs(withEos.implicitReward!['eval_rewards/margins'] - want.margin) < 1e-5, `${withEos.implicitReward!['eval_rewards/margins']} vs ${want.margin}`);
  assert.ok(Math.abs(withEos.heldOut!.loss - want.loss) < 1e-5, `${withEos.heldOut!.loss} vs ${want.loss}`);
  const noEos = await run(false);
  assert.ok(Math.abs(noEos.implicitReward!['eval_rewards/margins'] - without.margin) < 1e-5);
});

test('implicit rewards follow the candidate DPO artifact: its β and its losses\' reward definition, as training computes them', { timeout: 300_000 }, async () => {
  const recs = [
    { prompt: 'the movie was', chosen: ' great', rejected: ' awful' },
    { prompt: 'the plot', chosen: ' wonderful', rejected: ' dull' },
  ];
  // Training's own function (tensors) on the same summed log-probs and token counts.
  const trained = async (losses: PreferenceLossName[], beta: number) => {
    const pol = await loadModelArtifact(store, candidate.id);
    const ref = await loadModelArtifact(store, other.id);
    try {
      const items = (k: 'chosen' | 'rejected') => recs.map((r) => {
        const t = preferenceRecordText(tok, r, { addEos: true });
        return { promptIds: tok.encode(t.prompt), completionIds: tok.encode(t[k]) };
      });
      const lp = (m: typeof pol, k: 'chosen' | 'rejected') => completionLogps(m.model, items(k), { padId: tok.padTokenId });
      const [pc, pr, rc, rr] = [await lp(pol, 'chosen'), await lp(pol, 'rejected'), await lp(ref, 'chosen'), await lp(ref, 'rejected')];
      const t1 = (xs: { sum: number }[]) => tf.tensor1d(xs.map((x) => x.sum));
      const r = implicitRewards(
        { chosenLogps: t1(pc), rejectedLogps: t1(pr), refChosenLogps: t1(rc), refRejectedLogps: t1(rr), chosenLengths: tf.tensor1d(pc.map((x) => x.tokens)), rejectedLengths: tf.tensor1d(pr.map((x) => x.tokens)) },
        { beta, losses },
      );
      const m = tf.sub(r.chosen, r.rejected).dataSync();
      return (m[0]! + m[1]!) / 2;
    } finally {
      pol.model.dispose();
      ref.model.dispose();
    }
  };
  const margin = async (cand: ArtifactManifest, config: Record<string, unknown> = {}) => {
    const { ctx } = ctxFor({ model: cand, reference: other, prompts, pairs }, { sampling: { max_new_tokens: 4 }, bootstrap_resamples: 200, ...config });
    const out = await evalStage.run(ctx);
    if (out.status !== 'done') throw new Error('not done');
    return (await reportOf(out.outputs.report!)).modelStats.find((s) => s.label === 'candidate')!.implicitReward!;
  };
  const ipo = await margin(await model(4, 'cand-ipo', { stage: 'dpo', losses: ['ipo'], beta: 0.3 }));
  assert.equal(ipo.beta, 0.3, 'β comes from the DPO artifact');
  const wantIpo = await trained(['ipo'], 0.3);
  assert.ok(Math.abs(ipo['eval_rewards/margins'] - wantIpo) < 1e-5, `ipo (per-token): ${ipo['eval_rewards/margins']} vs ${wantIpo}`);
  assert.ok(Math.abs(wantIpo - (await trained(['sigmoid'], 0.3))) > 1e-4, 'per-token and summed rewards differ here (otherwise this proves nothing)');
  const simpo = await margin(await model(4, 'cand-simpo', { stage: 'dpo', losses: ['simpo'], beta: 2 }));
  const wantSimpo = await trained(['simpo'], 2);
  assert.ok(Math.abs(simpo['eval_rewards/margins'] - wantSimpo) < 1e-5, `simpo (reference-free): ${simpo['eval_rewards/margins']} vs ${wantSimpo}`);
  // the config's β overrides the artifact's
  const over = await margin(await model(4, 'cand-sigmoid', { stage: 'dpo', losses: ['sigmoid'], beta: 0.3 }), { beta: 0.6 });
  assert.equal(over.beta, 0.6);
  assert.ok(Math.abs(over['eval_rewards/margins'] - (await trained(['sigmoid'], 0.6))) < 1e-5);
});

test('sampling.seed: two eval stages (different stage seeds) sample the same baseline answers; without it they differ', { timeout: 300_000 }, async () => {
  const texts = async (stageSeed: number, sampling: Record<string, unknown>) => {
    const { ctx } = ctxFor({ model: candidate, baseline_sft: other, prompts }, { judges: [{ type: 'rule', module: sentiment }], sampling: { max_new_tokens: 8, ...sampling }, bootstrap_resamples: 100 });
    ctx.seed = stageSeed;
    const out = await evalStage.run(ctx);
    assert.equal(out.status, 'done');
    if (out.status !== 'done') throw new Error('not done');
    const r = await reportOf(out.outputs.report!);
    return r.samples.map((s) => s.responses.sft!.text);
  };
  assert.deepEqual(await texts(7, { seed: 123 }), await texts(8, { seed: 123 }), 'one seed, one set of baseline answers');
  assert.notDeepEqual(await texts(7, {}), await texts(8, {}), 'derived from the stage seed by default');
  assert.throws(() => evalConfigSchema.parse({ sampling: { seed: -1 } }));
});
