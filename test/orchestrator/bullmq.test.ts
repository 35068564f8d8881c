// The BullMQ executor against a real redis-server started by this file.
import test from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { eq } from 'drizzle-orm';
import { setup, submit, writeFile, readTrace, type Env } from './helpers.js';
import { startRedis } from './redis.js';
import { spawnWorker } from './workers.js';
import { driveRun } from '../../src/orchestrator/executors/inline.js';
import { Dispatcher, startWorkers } from '../../src/orchestrator/executors/bullmq.js';
import { getRun, runStages } from '../../src/orchestrator/runs.js';
import { stageOutputs } from '../../src/store/schema.js';
import { timing } from '../../src/orchestrator/execute.js';

const redis = await startRedis();

async function waitRun(env: Env, runId: string, ms = 60_000): Promise<string> {
  const end = Date.now() + ms;
  for (;;) {
    const s = getRun(env.db, runId).status;
    if (s === 'succeeded' || s === 'failed' || s === 'cancelled') return s;
    if (Date.now() > end) throw new Error(`run ${runId} still ${s}: ${JSON.stringify(runStages(env.db, runId).map((x) => [x.name, x.state, x.error]))}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function waitFor(cond: () => boolean, ms = 30_000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const outputsOf = (env: Env, runId: string) =>
  Object.fromEntries(runStages(env.db, runId).map((s) => [s.name, env.db.select().from(stageOutputs).where(eq(stageOutputs.stageId, s.id)).all().map((o) => `${o.role}=${o.artifactId}`).sort().join(',')]));

const chain = (dir: string, steps = 4, stepMs = 5) => `
name: chain
seed: 3
datasets:
  data: data.jsonl
stages:
  a: { kind: count, inputs: { data: datasets.data }, config: { steps: ${steps}, step_ms: ${stepMs}, trace: ${JSON.stringify(path.join(dir, 'trace.jsonl'))} } }
  b: { kind: count_light, inputs: { prev: a }, config: { steps: 2, step_ms: 5 } }
  c: { kind: count_light, inputs: { prev: a }, config: { steps: 3, step_ms: 5 } }
  j: { kind: join, inputs: { x: b, y: c, z: a.result } }
`;

async function dispatch(env: Env, runId: string) {
  const d = new Dispatcher(redis.url);
  await d.dispatchRun(env.db, runId);
  await d.close();
}

test('the same pipeline under inline and bullmq gives the same artifact ids', async () => {
  const a = await setup();
  const b = await setup();
  // Same spec text (trace path excluded from the comparison by using no trace here).
  for (const env of [a, b]) writeFile(env.dir, 'data.jsonl', '{"text":"same"}\n');
  const spec = chain('/dev/null').replace(/, trace: [^}]*\}/, ' }');
  const ra = await submit(a, spec);
  assert.equal(await driveRun(a, ra), 'succeeded');
  const rb = await submit(b, spec, { executor: 'bullmq' });
  const w = await startWorkers(b, redis.url, { kinds: ['count', 'count_light', 'join'], reconcileMs: 0 });
  try {
    await dispatch(b, rb);
    assert.equal(await waitRun(b, rb), 'succeeded');
  } finally {
    await w.shutdown();
  }
  assert.deepEqual(outputsOf(b, rb), outputsOf(a, ra));
});

test('kill -9 of a worker mid-stage: another worker resumes from the last checkpoint, same artifacts', async () => {
  const ref = await setup();
  const env = await setup();
  for (const e of [ref, env]) writeFile(e.dir, 'data.jsonl', '{"text":"crash"}\n');
  const spec = (dir: string) => chain(dir, 12, 150);
  // Reference: uninterrupted, inline.
  const r0 = await submit(ref, spec('/dev/null').replace(/, trace: [^}]*\}/, ' }'));
  assert.equal(await driveRun(ref, r0), 'succeeded');

  const trace = path.join(env.dir, 'trace.jsonl');
  const runId = await submit(env, spec(env.dir).replace(/, trace: [^}]*\}/, ` , trace: ${JSON.stringify(trace)} }`), { executor: 'bullmq' });
  // Worker 1 takes only `count` (the training-like stage); worker 2 can do everything.
  const w1 = await spawnWorker(env.home, redis.url, ['--stages', 'count']);
  await dispatch(env, runId);
  await waitFor(() => readTrace(trace).filter((t) => t.event === 'step').length >= 4, 60_000, 'four steps');
  w1.proc.kill('SIGKILL');
  await w1.exited;
  const stepsBefore = readTrace(trace).filter((t) => t.event === 'step').map((t) => t.step!);
  const w2 = await spawnWorker(env.home, redis.url);
  try {
    assert.equal(await waitRun(env, runId, 90_000), 'succeeded');
  } finally {
    w2.proc.kill('SIGTERM');
    await w2.exited;
  }
  const t = readTrace(trace);
  const starts = t.filter((x) => x.event === 'start');
  assert.equal(starts.length, 2, 'started twice: once per worker');
  assert.notEqual(starts[0]!.pid, starts[1]!.pid);
  // The second attempt continued after the last checkpoint, not from step 1.
  const secondSteps = t.filter((x) => x.event === 'step' && x.t >= starts[1]!.t).map((x) => x.step!);
  assert.ok(secondSteps[0]! > 1, `resumed at step ${secondSteps[0]}`);
  assert.ok(secondSteps[0]! <= Math.max(...stepsBefore) + 1);
  assert.equal(runStages(env.db, runId).find((s) => s.name === 'a')!.attempts, 2);
  assert.deepEqual(outputsOf(env, runId), outputsOf(ref, r0));
});
