// The BullMQ executor against a real redis-server started by this file.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { eq } from 'drizzle-orm';
import { setup, submit, writeFile, readTrace, type Env } from './helpers.js';
import { startRedis } from './redis.js';
import { spawnWorker, stopWorker } from './workers.js';
import { driveRun } from '../../src/orchestrator/executors/inline.js';
import { Dispatcher, startWorkers } from '../../src/orchestrator/executors/bullmq.js';
import { cancelRun, getRun, runStages } from '../../src/orchestrator/runs.js';
import { stageOutputs } from '../../src/store/schema.js';

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

test('the same pipeline under inline and bullmq gives the same artifact ids', { timeout: 120_000 }, async () => {
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

test('kill -9 of a worker mid-stage: another worker resumes from the last checkpoint, same artifacts', { timeout: 120_000 }, async () => {
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
  const w2 = await spawnWorker(env.home, redis.url, ['--stages', 'count,count_light,join']);
  try {
    assert.equal(await waitRun(env, runId, 90_000), 'succeeded');
  } finally {
    assert.equal(await stopWorker(w2), 0, 'worker exits cleanly on SIGTERM');
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

test('Redis restarts mid-run (state lost): SQLite rebuilds the queue and the run completes', { timeout: 120_000, skip: !redis.own && 'ALIGNFLOW_TEST_REDIS_URL cannot be restarted' }, async () => {
  const env = await setup();
  writeFile(env.dir, 'data.jsonl', '{"text":"restart"}\n');
  const trace = path.join(env.dir, 'trace.jsonl');
  // `q` is independent of `a`: its job sits in Redis, untaken (no count_light worker yet), when Redis dies.
  const spec = chain(env.dir, 10, 150) + '  q: { kind: count_light, config: { steps: 1, step_ms: 1 } }\n';
  const runId = await submit(env, spec, { executor: 'bullmq' });
  const w1 = await spawnWorker(env.home, redis.url, ['--stages', 'count']);
  let w2: Awaited<ReturnType<typeof spawnWorker>> | undefined;
  try {
    await dispatch(env, runId);
    await waitFor(() => readTrace(trace).filter((t) => t.event === 'step').length >= 3, 60_000, 'three steps');
    assert.equal(runStages(env.db, runId).find((s) => s.name === 'q')!.state, 'queued');
    await redis.kill(); // everything in Redis is gone: queues, locks, the active job, q's job
    await new Promise((r) => setTimeout(r, 300));
    await redis.start();
    w2 = await spawnWorker(env.home, redis.url, ['--stages', 'count_light,join']);
    assert.equal(await waitRun(env, runId, 90_000), 'succeeded');
    assert.match(w1.output() + w2.output(), /reconcile: re-enqueued \d+ job/);
    // The running stage kept its (SQLite) claim and was not run a second time.
    assert.equal(readTrace(trace).filter((t) => t.event === 'start').length, 1);
    assert.equal(runStages(env.db, runId).find((s) => s.name === 'a')!.attempts, 1);
  } finally {
    await stopWorker(w1);
    if (w2) await stopWorker(w2);
  }
});

test('4 workers, 20 concurrent runs: every stage runs exactly once, never twice at once', { timeout: 120_000 }, async () => {
  const env = await setup();
  writeFile(env.dir, 'data.jsonl', '{"text":"many"}\n');
  const trace = path.join(env.dir, 'trace.jsonl');
  const spec = `
name: tiny
datasets: { data: data.jsonl }
stages:
  x: { kind: count_light, inputs: { data: datasets.data }, config: { steps: 2, step_ms: 30, trace: ${JSON.stringify(trace)} } }
  y: { kind: count_light, inputs: { prev: x }, config: { steps: 2, step_ms: 30, trace: ${JSON.stringify(trace)} } }
`;
  const workers = await Promise.all([0, 1, 2, 3].map(() => spawnWorker(env.home, redis.url, ['--stages', 'count_light', '--concurrency', '2'])));
  try {
    const ids = [];
    for (let i = 0; i < 20; i++) ids.push(await submit(env, spec, { executor: 'bullmq', sets: [`stages.x.salt=${i}`] }));
    const d = new Dispatcher(redis.url);
    await Promise.all(ids.map((id) => d.dispatchRun(env.db, id)));
    await d.close();
    for (const id of ids) assert.equal(await waitRun(env, id, 120_000), 'succeeded');
  } finally {
    await Promise.all(workers.map((w) => stopWorker(w)));
  }
  const t = readTrace(trace);
  const byStage = new Map<string, typeof t>();
  for (const e of t) byStage.set(e.stage, [...(byStage.get(e.stage) ?? []), e]);
  assert.equal(byStage.size, 40);
  for (const [stage, evs] of byStage) {
    assert.deepEqual(evs.map((e) => e.event), ['start', 'step', 'step', 'end'], `stage ${stage} ran exactly once`);
  }
  assert.ok(new Set(t.map((e) => e.pid)).size >= 2, 'work was spread over several workers');
});

test('the same spec submitted twice while the first runs: the second waits and reuses (no duplicate work)', { timeout: 120_000 }, async () => {
  const env = await setup();
  writeFile(env.dir, 'data.jsonl', '{"text":"twice"}\n');
  const trace = path.join(env.dir, 'trace.jsonl');
  const spec = chain(env.dir, 8, 100);
  const w = await startWorkers(env, redis.url, { kinds: ['count', 'count_light', 'join'], concurrency: 2, reconcileMs: 500 });
  try {
    const r1 = await submit(env, spec, { executor: 'bullmq' });
    await dispatch(env, r1);
    await waitFor(() => readTrace(trace).some((t) => t.event === 'step'), 30_000, 'first run started');
    const r2 = await submit(env, spec, { executor: 'bullmq' });
    await dispatch(env, r2);
    assert.equal(runStages(env.db, r2).find((s) => s.name === 'a')!.state, 'pending', 'waits for the identical in-flight stage');
    assert.equal(await waitRun(env, r1), 'succeeded');
    assert.equal(await waitRun(env, r2), 'succeeded');
    assert.equal(readTrace(trace).filter((t) => t.event === 'start').length, 1, 'stage a computed once');
    const s2 = runStages(env.db, r2);
    assert.deepEqual(s2.map((s) => s.state), ['cached', 'cached', 'cached', 'cached']);
    assert.equal(s2[0]!.cachedFromStageId, runStages(env.db, r1)[0]!.id);
  } finally {
    await w.shutdown();
  }
});

test('bullmq: a waiting stage is re-invoked by a delayed job and continues when its quota is met', { timeout: 120_000 }, async () => {
  const env = await setup();
  const labels = path.join(env.dir, 'labels.txt');
  fs.writeFileSync(labels, ''); // a spec's files must exist when it is validated; the gate waits for lines
  const runId = await submit(env, `
name: hitl
stages:
  gate: { kind: gate, config: { file: ${JSON.stringify(labels)}, need: 2, retry_ms: 300 } }
  after: { kind: join, inputs: { l: gate } }
`, { executor: 'bullmq' });
  const w = await startWorkers(env, redis.url, { kinds: ['gate', 'join'], reconcileMs: 0 });
  try {
    await dispatch(env, runId);
    await waitFor(() => getRun(env.db, runId).status === 'waiting', 20_000, 'waiting');
    // Between polls the stage is a delayed job: sampled, the gate queue is almost never active.
    let idle = 0;
    for (let i = 0; i < 10; i++) {
      if ((await w.dispatcher.queue('gate').getActiveCount()) === 0) idle++;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(idle >= 7, `no worker is held while waiting (idle in ${idle}/10 samples)`);
    fs.writeFileSync(labels, 'a\nb\n');
    assert.equal(await waitRun(env, runId, 20_000), 'succeeded');
    assert.equal(runStages(env.db, runId)[0]!.attempts, 1);
  } finally {
    await w.shutdown();
  }
});

test('SIGTERM: the worker stops the active step, the stage is re-queued with its checkpoints, and exits 0', { timeout: 120_000 }, async () => {
  const env = await setup();
  writeFile(env.dir, 'data.jsonl', '{"text":"term"}\n');
  const trace = path.join(env.dir, 'trace.jsonl');
  const runId = await submit(env, chain(env.dir, 12, 150), { executor: 'bullmq' });
  const w1 = await spawnWorker(env.home, redis.url, ['--stages', 'count']);
  await dispatch(env, runId);
  await waitFor(() => readTrace(trace).filter((t) => t.event === 'step').length >= 3, 60_000, 'three steps');
  const t0 = Date.now();
  assert.equal(await stopWorker(w1), 0);
  assert.ok(Date.now() - t0 < 5000, `stopped in ${Date.now() - t0} ms`);
  const a = runStages(env.db, runId).find((s) => s.name === 'a')!;
  assert.equal(a.state, 'queued');
  const w2 = await spawnWorker(env.home, redis.url, ['--stages', 'count,count_light,join']);
  try {
    assert.equal(await waitRun(env, runId, 60_000), 'succeeded');
  } finally {
    await stopWorker(w2);
  }
  const t = readTrace(trace);
  const starts = t.filter((x) => x.event === 'start');
  assert.equal(starts.length, 2);
  const second = t.filter((x) => x.event === 'step' && x.t >= starts[1]!.t).map((x) => x.step!);
  assert.ok(second[0]! > 1, 'continued from its checkpoint');
});

test('cancel from another process: the worker notices at its next heartbeat and stops the stage', { timeout: 120_000 }, async () => {
  const env = await setup();
  writeFile(env.dir, 'data.jsonl', '{"text":"cancel"}\n');
  const trace = path.join(env.dir, 'trace.jsonl');
  const runId = await submit(env, chain(env.dir, 30, 100), { executor: 'bullmq' });
  const w = await spawnWorker(env.home, redis.url, ['--stages', 'count,count_light,join']);
  try {
    await dispatch(env, runId);
    await waitFor(() => readTrace(trace).filter((t) => t.event === 'step').length >= 2, 60_000, 'two steps');
    const t0 = Date.now();
    cancelRun(env.db, runId);
    assert.equal(await waitRun(env, runId), 'cancelled');
    await new Promise((r) => setTimeout(r, 600));
    const last = Math.max(...readTrace(trace).map((t) => t.t));
    assert.ok(last - t0 < 1000, `last step ${last - t0} ms after cancel (heartbeat 250 ms + one 100 ms step)`);
    assert.ok(readTrace(trace).filter((t) => t.event === 'step').length < 30);
    assert.equal(runStages(env.db, runId).find((s) => s.name === 'a')!.state, 'cancelled');
  } finally {
    await stopWorker(w);
  }
});
