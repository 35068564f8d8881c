// The collect stage on a tiny byte-level GPT-2 (real tfjs sampling), then the label stage on its pairs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { env, modelArtifact, datasetArtifact, type Env } from '../ml/dpo-stage-helpers.js';
import { collectConfigSchema, runCollectStage, dedupe, formPairs } from '../../src/stages/collect.js';
import { labelConfigSchema, runLabelStage } from '../../src/stages/label.js';
import { createLabelingPort } from '../../src/labeling/port.js';
import type { StageContext } from '../../src/stages/contract.js';
import type { ArtifactManifest } from '../../src/store/types.js';
import { PAIRS_FILE, type PairsLine } from '../../src/labeling/pairs-artifact.js';
import { readDatasetRecords } from '../../src/data/datasets.js';
import { tmpDir } from '../helpers/tmp.js';
import { writeJudges } from './judges.js';
import fs from 'node:fs';
import path from 'node:path';

function ctxFor<C>(e: Env, kind: string, config: C, inputs: Record<string, ArtifactManifest>, seed = 11): StageContext<C> {
  const runId = 'run-' + Math.random().toString(36).slice(2);
  const stageId = 'st-' + Math.random().toString(36).slice(2);
  e.db.$client.prepare(`INSERT INTO runs (id, name, spec, spec_hash, status, executor, created_at) VALUES (?, 't', '{}', 'x', 'running', 'inline', 0)`).run(runId);
  e.db.$client.prepare(`INSERT INTO stages (id, run_id, name, kind, config, depends_on, state) VALUES (?, ?, ?, ?, '{}', '[]', 'running')`).run(stageId, runId, kind, kind);
  const workDir = path.join(e.home, 'work-' + stageId);
  fs.mkdirSync(workDir, { recursive: true });
  return {
    runId, stageId, stageName: kind, kind, config, inputs, store: e.store, workDir, seed,
    latestCheckpoint: async () => undefined,
    saveCheckpoint: async () => { throw new Error('unused'); },
    progress: () => {}, metrics: () => {},
    log: { debug() {}, info() {}, warn() {}, error() {} },
    signal: new AbortController().signal,
    labeling: createLabelingPort(e.db),
  };
}

const readPairs = async (e: Env, a: ArtifactManifest) => (await e.store.readFile(a.id, PAIRS_FILE)).toString('utf8').trim().split('\n').map((l) => JSON.parse(l) as PairsLine);

test('pair formation and de-duplication (pure)', () => {
  assert.deepEqual(dedupe([{ text: 'x' }, { text: 'y' }, { text: 'x' }]).map((s) => s.text), ['x', 'y']);
  const s = [{ text: 'a', seed: 1, index: 0, score: 0.2 }, { text: 'b', seed: 1, index: 1, score: 0.9 }, { text: 'c', seed: 1, index: 2, score: -1 }];
  assert.deepEqual(formPairs(s, 'all', 10), [[0, 1], [0, 2], [1, 2]]);
  assert.deepEqual(formPairs(s, 'all', 2), [[0, 1], [0, 2]]);
  assert.deepEqual(formPairs(s, 'best_vs_worst', 10), [[1, 2]]);
  assert.deepEqual(formPairs([s[0]!], 'all', 10), []);
});

test('collect samples k completions per prompt (seeded), stores pairs, and label turns them into a preference dataset', { timeout: 120_000 }, async () => {
  const e = env();
  const model = await modelArtifact(e, 3);
  const prompts = await datasetArtifact(e, 'prompts', [{ prompt: 'q one:' }, { prompt: 'q two:' }, { prompt: 'q three:' }]);
  const config = collectConfigSchema.parse({ k: 3, max_new_tokens: 5, temperature: 1, batch_size: 2 });
  const out = await runCollectStage(ctxFor(e, 'collect', config, { model, prompts }));
  assert.equal(out.status, 'done');
  if (out.status !== 'done') return;
  const lines = await readPairs(e, out.outputs.pairs!);
  assert.ok(lines.length >= 3 && lines.length <= 9, `${lines.length} pairs`);
  for (const l of lines) {
    assert.ok(['q one:', 'q two:', 'q three:'].includes(l.prompt));
    assert.notEqual(l.response_a.text, l.response_b.text, 'exact duplicates are dropped');
    assert.equal(l.response_a.model, model.id);
    assert.deepEqual(l.response_a.sampling, { temperature: 1, top_k: null, top_p: null, max_new_tokens: 5, k: 3, sample_index: (l.response_a.sampling as { sample_index: number }).sample_index });
    assert.equal(typeof l.response_a.seed, 'number');
  }
  const rows = e.db.$client.prepare('SELECT count(*) AS n FROM pairs WHERE batch_id IS NULL').get() as { n: number };
  assert.equal(rows.n, lines.length, 'pairs stored in SQLite');
  const resp = e.db.$client.prepare('SELECT model_artifact_id, sampling, seed FROM responses LIMIT 1').get() as { model_artifact_id: string; sampling: string; seed: number };
  assert.equal(resp.model_artifact_id, model.id);
  assert.equal(JSON.parse(resp.sampling).temperature, 1);

  // same seed, same completions
  const again = await runCollectStage(ctxFor(e, 'collect', config, { model, prompts }));
  if (again.status !== 'done') throw new Error('not done');
  assert.deepEqual((await readPairs(e, again.outputs.pairs!)).map((l) => [l.response_a.text, l.response_b.text]), lines.map((l) => [l.response_a.text, l.response_b.text]));

  // greedy sampling makes the k completions identical: all dropped, no pairs → a clear error
  await assert.rejects(runCollectStage(ctxFor(e, 'collect', collectConfigSchema.parse({ k: 3, max_new_tokens: 4, temperature: 0 }), { model, prompts })), /formed no pairs/);

  // best-vs-worst with a score judge: one pair per prompt, the better-scored response first
  const j = writeJudges(tmpDir('alignflow-judges-'));
  const lenJudge = path.join(path.dirname(j.good), 'len.mjs');
  fs.writeFileSync(lenJudge, "export const name = 'length'; export const version = '1'; export function score(p, r) { return r.length; }\n");
  const bw = await runCollectStage(ctxFor(e, 'collect', collectConfigSchema.parse({ k: 4, max_new_tokens: 6, pairing: 'best_vs_worst', judge: lenJudge }), { model, prompts }));
  if (bw.status !== 'done') throw new Error('not done');
  const bwl = await readPairs(e, bw.outputs.pairs!);
  assert.ok(bwl.length <= 3);
  for (const l of bwl) assert.ok(l.response_a.score! >= l.response_b.score!);

  // the label stage (rule judge on length) reads the pairs artifact and writes a preference dataset
  const lab = await runLabelStage(ctxFor(e, 'label', labelConfigSchema.parse({ labeler: 'rule', judge: lenJudge }), { pairs: out.outputs.pairs! }));
  if (lab.status !== 'done') throw new Error('not done');
  const recs = [];
  for await (const r of readDatasetRecords(e.store, lab.outputs.dataset!.id, { kind: 'preference' })) recs.push(r);
  for (const r of recs) assert.ok(String(r.chosen).length > String(r.rejected).length);
  assert.equal(recs.length + ((lab.summary!.excluded as { tie: number }).tie), lines.length);
  assert.equal(lab.outputs.labels!.kind, 'labels');
});

test('collect items: ranking makes one k-way item per prompt; a human label stage turns the rankings into pairs by pair_rule', { timeout: 120_000 }, async () => {
  assert.throws(() => collectConfigSchema.parse({ items: 'ranking', k: 9 }), /at most 8 answers/);
  assert.throws(() => collectConfigSchema.parse({ items: 'ranking', pairing: 'best_vs_worst', judge: 'j.mjs' }), /pair_rule/);
  const e = env();
  const model = await modelArtifact(e, 3);
  const prompts = await datasetArtifact(e, 'prompts', [{ prompt: 'q one:' }, { prompt: 'q two:' }, { prompt: 'q three:' }]);
  const out = await runCollectStage(ctxFor(e, 'collect', collectConfigSchema.parse({ items: 'ranking', k: 4, max_new_tokens: 6, temperature: 1 }), { model, prompts }));
  if (out.status !== 'done') throw new Error('not done');
  assert.equal(out.outputs.pairs!.metadata.items, 'ranking');
  const lines = await readPairs(e, out.outputs.pairs!);
  assert.equal(lines.length, 3, 'one item per prompt');
  for (const l of lines) {
    assert.ok(l.responses && l.responses.length >= 2 && l.responses.length <= 4);
    assert.equal(new Set(l.responses.map((r) => r.text)).size, l.responses.length, 'distinct answers');
    assert.deepEqual([l.response_a.id, l.response_b.id], [l.responses[0]!.id, l.responses[1]!.id]);
  }
  // Machine labelers compare two answers; a ranking item needs people.
  await assert.rejects(runLabelStage(ctxFor(e, 'label', labelConfigSchema.parse({ labeler: 'rule', judge: 'x.mjs' }), { pairs: out.outputs.pairs! })), /only the human labeler ranks/);

  // A gold ranking (gold_file of {prompt, responses, ranking} lines) mixed in at a quarter of the queue.
  const goldFile = path.join(tmpDir('alignflow-gold-'), 'gold.jsonl');
  fs.writeFileSync(goldFile, JSON.stringify({ prompt: 'gold item', responses: ['g1', 'g22', 'g333'], ranking: [[3], [2], [1]] }) + '\n');
  const ctx = ctxFor(e, 'label', labelConfigSchema.parse({ labeler: 'human', pair_rule: 'best_vs_rest', gold_rate: 0.25, gold_file: goldFile }), { pairs: out.outputs.pairs! });
  const first = await runLabelStage(ctx);
  assert.equal(first.status, 'waiting');
  const batch = e.db.$client.prepare('SELECT id, kind, pair_rule FROM label_batches').get() as { id: string; kind: string; pair_rule: string };
  assert.deepEqual([batch.kind, batch.pair_rule], ['ranking', 'best_vs_rest']);
  const { nextAssignment, submitLabel } = await import('../../src/labeling/queue.js');
  const { addUser } = await import('../../src/labeling/users.js');
  const u = addUser(e.db, 'ranker', 'labeler').user;
  let expected = 0;
  for (;;) {
    const a = nextAssignment(e.db, batch.id, u);
    if (!a) break;
    // The longest answer first, the rest tied: best_vs_rest gives k − 1 pairs, all longest-first.
    const k = a.answers!.length;
    const longest = a.answers!.reduce((bi, t, i) => (t.length > a.answers![bi]!.length ? i : bi), 0);
    const rest = Array.from({ length: k }, (_, i) => i + 1).filter((n) => n !== longest + 1);
    submitLabel(e.db, a.assignmentId, u, { ranking: [[longest + 1], rest] });
    if (a.prompt !== 'gold item') expected += k - 1;
  }
  assert.equal((e.db.$client.prepare('SELECT count(*) AS n FROM pairs WHERE is_gold = 1 AND gold_ranking IS NOT NULL').get() as { n: number }).n, 1);
  const { batchStats } = await import('../../src/labeling/stats.js');
  // The longest gold answer is the known best: a top-1 match; its other two tie in the label.
  const gs = batchStats(e.db, batch.id).gold;
  assert.deepEqual(gs.map((g) => [g.annotator, g.correct, g.total]), [['user:ranker', 1, 1]]);
  const done = await runLabelStage(ctx);
  if (done.status !== 'done') throw new Error(`not done: ${JSON.stringify(done)}`);
  const recs = [];
  for await (const r of readDatasetRecords(e.store, done.outputs.dataset!.id, { kind: 'preference' })) recs.push(r);
  assert.equal(recs.length, expected);
  for (const r of recs) assert.ok(String(r.chosen).length >= String(r.rejected).length);
});
