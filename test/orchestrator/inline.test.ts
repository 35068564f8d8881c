import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { eq } from 'drizzle-orm';
import { setup, submit, writeFile } from './helpers.js';
import { driveRun } from '../../src/orchestrator/executors/inline.js';
import { runStages, getRun, cancelRun, resumeRun, runLogs } from '../../src/orchestrator/runs.js';
import { runLine } from '../../src/orchestrator/follow.js';
import { checkpoints, stageOutputs } from '../../src/store/schema.js';
import { listDatasets, resolveDataset } from '../../src/data/datasets.js';

const pipeline = (dir: string, extra = '') => `
name: chain
seed: 7
datasets:
  data: data.jsonl
stages:
  a:
    kind: count
    inputs: { data: datasets.data }
    config: { steps: 4, step_ms: 5, trace: ${JSON.stringify(path.join(dir, 'trace.jsonl'))} }
  b:
    kind: count
    inputs: { prev: a }
    config: { steps: 3, step_ms: 5 }
  j:
    kind: join
    inputs: { x: a, y: b.result }
${extra}`;

test('inline executor runs a DAG in order, then a second run is fully cached', { timeout: 120_000 }, async () => {
  const env = await setup();
  writeFile(env.dir, 'data.jsonl', '{"text":"hi"}\n');
  const id = await submit(env, pipeline(env.dir));
  const s1 = await driveRun(env, id);
  assert.equal(s1, 'succeeded', getRun(env.db, id).error ?? '');
  const st = runStages(env.db, id);
  assert.deepEqual(st.map((s) => s.state), ['succeeded', 'succeeded', 'succeeded']);
  const cps = env.db.select().from(checkpoints).where(eq(checkpoints.stageId, st[0]!.id)).all();
  // the last 3 (default) are kept; the best by eval loss (1/step) is the newest here
  assert.deepEqual(cps.map((c) => c.step).sort(), [2, 3, 4]);

  const id2 = await submit(env, pipeline(env.dir));
  assert.equal(await driveRun(env, id2), 'succeeded');
  const st2 = runStages(env.db, id2);
  assert.deepEqual(st2.map((s) => s.state), ['cached', 'cached', 'cached']);
  assert.equal(st2[0]!.cachedFromStageId, st[0]!.id);
  const outs = (sid: string) => env.db.select().from(stageOutputs).where(eq(stageOutputs.stageId, sid)).all().map((o) => o.artifactId);
  assert.deepEqual(outs(st2[2]!.id), outs(st[2]!.id));
  assert.equal(getRun(env.db, id2).status, 'succeeded');
});

test('editing a data file and running again re-runs what depends on it; the name resolves to the newest version', { timeout: 120_000 }, async () => {
  const env = await setup();
  writeFile(env.dir, 'data.jsonl', '{"text":"hi"}\n');
  const first = await submit(env, pipeline(env.dir));
  assert.equal(await driveRun(env, first), 'succeeded');
  const v1 = resolveDataset(env.db, 'data');

  writeFile(env.dir, 'data.jsonl', '{"text":"hi"}\n{"text":"there"}\n');
  const second = await submit(env, pipeline(env.dir));
  assert.equal(await driveRun(env, second), 'succeeded', getRun(env.db, second).error ?? '');
  // a's input changed, so it runs again instead of coming from the cache.
  assert.equal(runStages(env.db, second)[0]!.state, 'succeeded');
  const v2 = resolveDataset(env.db, 'data');
  assert.notEqual(v2.artifactId, v1.artifactId);
  assert.equal(v2.records, 2);
  assert.deepEqual(listDatasets(env.db).filter((d) => d.name === 'data').map((d) => d.artifactId).sort(), [v1.artifactId, v2.artifactId].sort());
  // The first run still points at the data it used.
  assert.equal(resolveDataset(env.db, v1.id).records, 1);
});

test('--force re-runs one stage; its identical output lets the next stage come from the cache', { timeout: 120_000 }, async () => {
  const env = await setup();
  writeFile(env.dir, 'data.jsonl', '{"text":"hi"}\n');
  const first = await submit(env, pipeline(env.dir));
  assert.equal(await driveRun(env, first), 'succeeded');
  const id = await submit(env, pipeline(env.dir), { force: ['a'] });
  assert.equal(await driveRun(env, id), 'succeeded');
  assert.deepEqual(runStages(env.db, id).map((s) => s.state), ['succeeded', 'cached', 'cached']);
  await assert.rejects(submit(env, pipeline(env.dir), { force: ['nope'] }), /no stage named "nope"/);
});

test('cancel stops a running stage within a step, keeps its checkpoints; resume continues from the last one', { timeout: 120_000 }, async () => {
  const env = await setup();
  const ref = await setup();
  const trace = path.join(env.dir, 'trace.jsonl');
  const spec = (t: string) => `
name: long
seed: 1
stages:
  a: { kind: count, config: { steps: 15, step_ms: 80${t} } }
  b: { kind: join, inputs: { x: a } }
`;
  const r0 = await submit(ref, spec(''));
  assert.equal(await driveRun(ref, r0), 'succeeded');

  const id = await submit(env, spec(`, trace: ${JSON.stringify(trace)}`));
  const driving = driveRun(env, id);
  while (!fs.existsSync(trace) || fs.readFileSync(trace, 'utf8').split('\n').filter((l) => l.includes('"step"')).length < 3) await new Promise((r) => setTimeout(r, 20));
  const t0 = Date.now();
  cancelRun(env.db, id);
  assert.equal(await driving, 'cancelled');
  const lines = () => fs.readFileSync(trace, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  const lastStepAt = Math.max(...lines().map((l) => l.t));
  // same process: aborted at once (other processes notice at their next heartbeat, ≤ 1 s)
  assert.ok(lastStepAt - t0 < 800, `stopped ${lastStepAt - t0} ms after cancel`);
  const st = runStages(env.db, id);
  assert.deepEqual(st.map((s) => s.state), ['cancelled', 'cancelled']);
  const kept = env.db.select().from(checkpoints).where(eq(checkpoints.stageId, st[0]!.id)).all();
  assert.ok(kept.length > 0, 'checkpoints survive cancellation');
  const stepsDone = Math.max(...kept.map((c) => c.step));

  assert.deepEqual(resumeRun(env.db, id), ['a', 'b']);
  assert.equal(await driveRun(env, id), 'succeeded');
  const starts = lines().filter((l) => l.event === 'start');
  assert.equal(starts.length, 2);
  const resumedSteps = lines().filter((l) => l.event === 'step' && l.t >= starts[1].t).map((l) => l.step);
  assert.equal(resumedSteps[0], stepsDone + 1, 'continued after the last checkpoint');
  const outs = (e: typeof env, r: string) => runStages(e.db, r).map((s) => e.db.select().from(stageOutputs).where(eq(stageOutputs.stageId, s.id)).all().map((o) => o.artifactId));
  assert.deepEqual(outs(env, id), outs(ref, r0), 'same artifacts as an uninterrupted run');
  assert.throws(() => resumeRun(env.db, id), /succeeded; nothing to resume/);
});

test('a waiting stage holds no worker, burns no attempts, and continues when its condition is met', { timeout: 120_000 }, async () => {
  const env = await setup();
  const labels = path.join(env.dir, 'labels.txt');
  fs.writeFileSync(labels, 'one\n');
  const id = await submit(env, `
name: hitl
stages:
  gate: { kind: gate, config: { file: ${JSON.stringify(labels)}, need: 3, retry_ms: 50 } }
  after: { kind: join, inputs: { l: gate } }
`);
  const driving = driveRun(env, id);
  while (getRun(env.db, id).status !== 'waiting') await new Promise((r) => setTimeout(r, 20));
  assert.match(runLine(env.db, id), /waiting for labels \(1\/3\)/);
  fs.appendFileSync(labels, 'two\n');
  // The stage looks again every 50 ms; wait for it (a loaded machine may take longer than that).
  const deadline = Date.now() + 10_000;
  while (!/waiting for labels \(2\/3\)/.test(runLine(env.db, id)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.match(runLine(env.db, id), /waiting for labels \(2\/3\)/);
  fs.appendFileSync(labels, 'three\n');
  assert.equal(await driving, 'succeeded');
  const gate = runStages(env.db, id)[0]!;
  assert.equal(gate.attempts, 1, 'polls while waiting are not attempts');
});

test('transient errors are retried with backoff (from the checkpoint); config errors fail at once', { timeout: 120_000 }, async () => {
  const env = await setup();
  const marker = path.join(env.dir, 'failed-once');
  const id = await submit(env, `
name: flaky
stages:
  a: { kind: count, config: { steps: 4, step_ms: 5, fail_once_at: 3, fail_marker: ${JSON.stringify(marker)} } }
`);
  assert.equal(await driveRun(env, id), 'succeeded');
  const a = runStages(env.db, id)[0]!;
  assert.equal(a.attempts, 2);
  assert.ok(runLogs(env.db, id).some((e) => /resuming from step 2/.test(e.message)));

  const bad = await submit(env, `
name: broken
stages:
  a: { kind: count, config: { bad: true } }
  b: { kind: join, inputs: { x: a } }
  c: { kind: count_light, config: { steps: 1, step_ms: 1 } }
`);
  assert.equal(await driveRun(env, bad), 'failed');
  const st = runStages(env.db, bad);
  assert.deepEqual(st.map((s) => [s.state, s.attempts]), [['failed', 1], ['pending', 0], ['succeeded', 1]]);
  assert.equal(st[0]!.errorKind, 'config');
  assert.match(getRun(env.db, bad).error!, /bad: true/);
});
