import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import { tmpDir } from '../helpers/tmp.js';
import { openDb } from '../../src/store/db.js';
import { createLocalStore } from '../../src/store/artifacts.js';
import { databasePath } from '../../src/config/paths.js';
import { getStage, registerStageModule } from '../../src/stages/index.js';
import { parseSpec } from '../../src/config/spec.js';
import { createRun, getRun, runStages } from '../../src/orchestrator/runs.js';
import { driveRun } from '../../src/orchestrator/executors/inline.js';
import { buildServer } from '../../src/server/index.js';
import { addUser } from '../../src/labeling/users.js';
import { createLabelingPort } from '../../src/labeling/port.js';
import { loadJudge, runJudge } from '../../src/labeling/labelers/rule.js';
import { runLabelStage, labelConfigSchema } from '../../src/stages/label.js';
import type { StageContext } from '../../src/stages/contract.js';
import { readDatasetRecords } from '../../src/data/datasets.js';
import { pairsJsonl } from './fixtures/stages.js';
import { writeJudges } from './judges.js';
import { PAIRS_FILE } from '../../src/labeling/pairs-artifact.js';

const fixtures = fileURLToPath(new URL('./fixtures/stages.ts', import.meta.url));

function env() {
  const home = tmpDir('alignflow-stage-');
  const db = openDb(databasePath(home));
  const store = createLocalStore(db, home);
  return { home, db, store };
}

test('a pipeline with a human label stage waits, then continues when the quota is reached through the API', { timeout: 90_000 }, async () => {
  await registerStageModule(fixtures);
  const e = env();
  const yaml = `
name: human-gate
seed: 3
stages:
  pairs:
    kind: fake_pairs
    config: { n: 3 }
  label:
    kind: label
    inputs: { pairs: pairs }
    config: { labeler: human, quota: 2, poll_ms: 100, guidelines: "Pick the good one." }
`;
  const file = path.join(e.home, 'spec.yaml');
  fs.writeFileSync(file, yaml);
  const spec = parseSpec(yaml, { file, lookup: (k: string) => getStage(k), sets: [] });
  const runId = await createRun(e.db, e.store, spec, { executor: 'inline', specPath: file, force: [] });
  const driving = driveRun({ db: e.db, store: e.store, home: e.home }, runId, { pollMs: 50 });

  const stageState = () => runStages(e.db, runId).find((s) => s.name === 'label')!.state;
  for (let i = 0; i < 200 && stageState() !== 'waiting'; i++) await new Promise((r) => setTimeout(r, 50));
  assert.equal(stageState(), 'waiting', 'the label stage waits for humans');
  assert.equal(getRun(e.db, runId).status, 'waiting');

  const app = await buildServer({ db: e.db, home: e.home });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  try {
    const admin = addUser(e.db, 'boss', 'admin').token;
    const batches = (await (await fetch(base + '/api/labeling/batches', { headers: { authorization: `Bearer ${admin}` } })).json()) as { batches: { id: string; runId: string; progress: { total: number } }[] };
    assert.equal(batches.batches.length, 1);
    assert.equal(batches.batches[0]!.runId, runId);
    assert.equal(batches.batches[0]!.progress.total, 6);
    const batchId = batches.batches[0]!.id;
    for (const name of ['ann', 'bob']) {
      const token = addUser(e.db, name, 'labeler').token;
      const h = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
      for (;;) {
        const n = (await (await fetch(`${base}/api/labeling/batches/${batchId}/next`, { method: 'POST', headers: { authorization: h.authorization } })).json()) as { assignment: { assignmentId: string; left: string } | null };
        if (!n.assignment) break;
        // still waiting before the last label
        assert.notEqual(stageState(), 'succeeded');
        const choice = n.assignment.left.startsWith('good') ? 'left' : 'right';
        const r = await fetch(`${base}/api/labeling/assignments/${n.assignment.assignmentId}/label`, { method: 'POST', headers: h, body: JSON.stringify({ choice }) });
        assert.equal(r.status, 200);
      }
    }
    const status = await driving;
    assert.equal(status, 'succeeded', getRun(e.db, runId).error ?? '');
    const out = e.db.$client.prepare(`SELECT a.id, a.kind FROM stage_outputs o JOIN artifacts a ON a.id = o.artifact_id WHERE o.stage_id = ? AND o.role = 'dataset'`).get(runStages(e.db, runId).find((s) => s.name === 'label')!.id) as { id: string };
    const recs = [];
    for await (const r of readDatasetRecords(e.store, out.id, { kind: 'preference' })) recs.push(r);
    assert.equal(recs.length, 3);
    for (const r of recs) assert.match(String(r.chosen), /^good answer/);
    // the batch is closed once its quota is reached: late labels are refused
    const b = e.db.$client.prepare('SELECT status FROM label_batches WHERE id = ?').get(batchId) as { status: string };
    assert.equal(b.status, 'closed');
  } finally {
    await app.close();
  }
});

async function handlerCtx(config: unknown) {
  const e = env();
  const pairs = await e.store.put({ kind: 'pairs', name: 'p', files: [{ path: PAIRS_FILE, data: Buffer.from(pairsJsonl(6, 'x')) }] });
  const logs: string[] = [];
  const runId = 'run-' + Math.random().toString(36).slice(2);
  const stageId = 'stage-' + Math.random().toString(36).slice(2);
  e.db.$client.prepare(`INSERT INTO runs (id, name, spec, spec_hash, status, executor, created_at) VALUES (?, 't', '{}', 'x', 'running', 'inline', 0)`).run(runId);
  e.db.$client.prepare(`INSERT INTO stages (id, run_id, name, kind, config, depends_on, state) VALUES (?, ?, 'label', 'label', '{}', '[]', 'running')`).run(stageId, runId);
  const ctx = {
    runId,
    stageId,
    stageName: 'label',
    kind: 'label',
    config: labelConfigSchema.parse(config),
    inputs: { pairs },
    store: e.store,
    workDir: e.home,
    seed: 1,
    latestCheckpoint: async () => undefined,
    saveCheckpoint: async () => { throw new Error('unused'); },
    progress: () => {},
    metrics: () => {},
    log: { debug: () => {}, info: (m: string) => logs.push(m), warn: (m: string) => logs.push(m), error: (m: string) => logs.push(m) },
    signal: new AbortController().signal,
    labeling: createLabelingPort(e.db),
  } as unknown as StageContext<ReturnType<typeof labelConfigSchema.parse>>;
  return { e, ctx, logs };
}

test('rule judge: identity recorded; a judge that throws or answers nonsense fails that comparison and is counted', async () => {
  const dir = tmpDir('alignflow-judges-');
  const j = writeJudges(dir);
  const good = await loadJudge(j.good);
  assert.equal(good.source, 'judge:prefers-good@2.1');
  const anon = await loadJudge(j.throws);
  assert.match(anon.source, /^judge:throws\.mjs@[0-9a-f]{12}$/);
  await assert.rejects(loadJudge(j.nothing), /exports neither judge/);
  await assert.rejects(loadJudge(path.join(dir, 'missing.mjs')), /does not exist/);

  const pairs = [0, 1, 2].map((i) => ({ pairId: `p${i}`, prompt: 'q', a: { id: `a${i}`, text: `good ${i}` }, b: { id: `b${i}`, text: i === 2 ? 'boom' : 'bad' } }));
  const r = await runJudge(anon, pairs);
  assert.equal(r.labels.length, 2);
  assert.equal(r.failures.length, 1);
  assert.match(r.failures[0]!.message, /failed on pair p2: cannot parse boom/);
  const bad = await runJudge(await loadJudge(j.invalid), pairs);
  assert.equal(bad.labels.length, 0, 'an invalid verdict is never a tie');
  assert.equal(bad.failures.length, 3);
  assert.match(bad.failures[0]!.message, /returned "left"; expected 'a', 'b' or 'tie'/);
  const scored = await runJudge(await loadJudge(j.scorer), pairs);
  assert.deepEqual(scored.labels.map((l) => l.decision), ['a', 'a', 'a']);
  assert.equal(scored.scores.get('a0'), 1);

  // Through the stage: by default any failure fails the stage, with the reason
  const s1 = await handlerCtx({ labeler: 'rule', judge: j.throws });
  await assert.rejects(runLabelStage(s1.ctx), /failed on 2 of 6 comparisons \(allowed: 0\.0%\); first: .*cannot parse boom/);
  assert.equal((s1.e.db.$client.prepare('SELECT count(*) AS n FROM labels').get() as { n: number }).n, 0, 'nothing stored');
  // allowed: the failures are counted in the summary and logged; the rest become labels
  const s2 = await handlerCtx({ labeler: 'rule', judge: j.throws, max_judge_error_rate: 0.5 });
  const out = await runLabelStage(s2.ctx);
  assert.equal(out.status, 'done');
  if (out.status !== 'done') return;
  assert.equal(out.summary!.judgeFailures, 2);
  assert.equal(out.summary!.judged, 4);
  assert.equal(out.summary!.records, 4);
  assert.equal(s2.logs.filter((l) => l.includes('cannot parse boom')).length, 2);
  const sources = s2.e.db.$client.prepare('SELECT DISTINCT source FROM labels').all() as { source: string }[];
  assert.deepEqual(sources.map((s) => s.source), [anon.source]);
  // a rerun of the same stage does not label twice
  const again = await runLabelStage(s2.ctx);
  assert.equal(again.status, 'done');
  assert.equal((s2.e.db.$client.prepare('SELECT count(*) AS n FROM labels').get() as { n: number }).n, 4);
});

test('import labeler: matched by pair id or by text; one bad line imports nothing', async () => {
  const dir = tmpDir('alignflow-import-');
  const good = path.join(dir, 'labels.jsonl');
  fs.writeFileSync(good, [
    JSON.stringify({ pair_id: 'fp-x-0', decision: 'a', annotator: 'vendor-7', strength: 2 }),
    JSON.stringify({ prompt: 'prompt 1', chosen: 'bad answer 1', rejected: 'good answer 1' }),
    JSON.stringify({ prompt: 'prompt 3', response_a: 'bad answer 3', response_b: 'good answer 3', decision: 'b' }),
    JSON.stringify({ pair_id: 'fp-x-4', decision: 'tie' }),
  ].join('\n'));
  const s = await handlerCtx({ labeler: 'import', file: good });
  const out = await runLabelStage(s.ctx);
  assert.equal(out.status, 'done');
  const rows = s.e.db.$client.prepare('SELECT pair_id, decision, source FROM labels ORDER BY pair_id').all() as { pair_id: string; decision: string; source: string }[];
  assert.deepEqual(rows.map((r) => [r.pair_id, r.decision]), [['fp-x-0', 'a'], ['fp-x-1', 'b'], ['fp-x-3', 'a'], ['fp-x-4', 'tie']]);
  assert.equal(rows[0]!.source, 'import:labels.jsonl#vendor-7');
  if (out.status === 'done') assert.equal(out.summary!.records, 3); // the tie is excluded

  const bad = path.join(dir, 'bad.jsonl');
  fs.writeFileSync(bad, [JSON.stringify({ pair_id: 'fp-x-0', decision: 'a' }), JSON.stringify({ pair_id: 'nope', decision: 'a' }), '{oops', JSON.stringify({ pair_id: 'fp-x-2', decision: 'left' })].join('\n'));
  const s2 = await handlerCtx({ labeler: 'import', file: bad });
  await assert.rejects(runLabelStage(s2.ctx), (err: Error & { issues?: { line?: number }[] }) => {
    assert.match(err.message, /3 invalid label line\(s\); nothing was imported/);
    assert.deepEqual(err.issues!.map((i) => i.line), [2, 3, 4]);
    return true;
  });
  assert.equal((s2.e.db.$client.prepare('SELECT count(*) AS n FROM labels').get() as { n: number }).n, 0);
});

test('label stage config is validated', () => {
  assert.throws(() => labelConfigSchema.parse({ labeler: 'rule' }), /judge/);
  assert.throws(() => labelConfigSchema.parse({ labeler: 'import' }), /file/);
  assert.throws(() => labelConfigSchema.parse({ labeler: 'human', quota: 0 }));
  assert.throws(() => labelConfigSchema.parse({ labeler: 'human', typo: 1 }));
  assert.throws(() => labelConfigSchema.parse({ labeler: 'oracle' }));
  assert.equal(labelConfigSchema.parse({ labeler: 'human' }).quota, 1);
});

test('human label stage: waits, then an admin close ends it with the labels so far', async () => {
  const s = await handlerCtx({ labeler: 'human', quota: 2, poll_ms: 250 });
  const first = await runLabelStage(s.ctx);
  assert.equal(first.status, 'waiting');
  if (first.status !== 'waiting') return;
  assert.equal(first.message, 'waiting for labels (0/12)');
  assert.equal(first.retryAfterMs, 250);
  // asking again does not add the pairs twice
  assert.equal((await runLabelStage(s.ctx)).status, 'waiting');
  assert.equal((s.e.db.$client.prepare('SELECT count(*) AS n FROM pairs WHERE batch_id IS NOT NULL').get() as { n: number }).n, 6);
  const { nextAssignment, submitLabel } = await import('../../src/labeling/queue.js');
  const { closeBatch } = await import('../../src/labeling/batches.js');
  const u = addUser(s.e.db, 'solo', 'labeler').user;
  const batchId = (s.e.db.$client.prepare('SELECT id FROM label_batches').get() as { id: string }).id;
  for (let i = 0; i < 3; i++) {
    const a = nextAssignment(s.e.db, batchId, u)!;
    submitLabel(s.e.db, a.assignmentId, u, { choice: a.left.startsWith('good') ? 'left' : 'right' });
  }
  const mid = await runLabelStage(s.ctx);
  assert.equal(mid.status === 'waiting' && mid.message, 'waiting for labels (3/12)');
  closeBatch(s.e.db, batchId);
  const done = await runLabelStage(s.ctx);
  assert.equal(done.status, 'done');
  if (done.status !== 'done') return;
  assert.equal(done.summary!.finished, 'closed');
  assert.equal(done.summary!.records, 3);
});
