// `runs resume RUN --redis URL` takes over a BullMQ run whose driver (`alignflow run --redis`) and
// worker were both killed with kill -9 mid-stage, against a redis-server this file starts on its own
// port. The dead worker's BullMQ lock is long (10 min), the fresh worker does not reconcile, so the
// job that finishes the stage is the takeover job `resume` enqueues, not BullMQ's stalled-job
// re-delivery. The resumed run's metrics and outputs equal an uninterrupted run's.
import test from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { tmpDir } from '../helpers/tmp.js';
import { cliArgs, cliEnv, runCli, waitFor } from './helpers.js';
import { startRedis } from './redis.js';
import { uninterruptedRun, writeTakeoverPipeline } from './takeover-pipeline.js';
import { fastTimings, spawnWorker, stopWorker } from './workers.js';
import { openDb } from '../../src/store/db.js';
import { databasePath } from '../../src/config/paths.js';

const redis = await startRedis();
const dir = tmpDir();
const cli = (home: string, args: string[], extra: Record<string, string> = {}, timeout?: number) => runCli(dir, home, args, { ...fastTimings, ...extra }, timeout);

const spec = writeTakeoverPipeline(dir, 'takeover-bullmq');

test('runs resume --redis takes over a bullmq run whose driver and worker were killed; metrics equal an uninterrupted run\'s', { timeout: 240_000 }, async () => {
  // Reference: the same pipeline, uninterrupted, inline (the executors give the same artifact ids).
  const { metrics: expected, snapshot: cleanSnap } = uninterruptedRun(cli, spec);

  const home = path.join(tmpDir(), 'home');
  // Its BullMQ lock outlives the test: Redis alone would never hand the job to another worker.
  const w1 = await spawnWorker(home, redis.url, ['--reconcile-ms', '0'], { ALIGNFLOW_LOCK_MS: '600000' });
  const driver = spawn(process.execPath, cliArgs(['run', spec, '--redis', redis.url]), { cwd: dir, env: cliEnv(home, fastTimings), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  driver.stdout.on('data', (d) => (out += d));
  driver.stderr.on('data', (d) => (out += d));
  const driverExited = new Promise((r) => driver.once('exit', r));
  const runId = await waitFor(() => /run (r-[0-9a-z-]+) \(bullmq\)/.exec(out)?.[1], 60_000, `a run id in: ${out}`);
  const db = openDb(databasePath(home));
  const loggedSteps = () => (db.$client.prepare('select max(step) as s from metrics where stage_id like ?').get(`${runId}-%`) as { s: number | null }).s ?? 0;
  await waitFor(() => (loggedSteps() >= 6 ? true : undefined), 60_000, 'six steps', 20);
  driver.kill('SIGKILL');
  w1.proc.kill('SIGKILL');
  await Promise.all([driverExited, w1.exited]);
  const killedAt = loggedSteps();
  db.$client.close();
  assert.ok(killedAt >= 6 && killedAt < 14, `killed mid-stage (after step ${killedAt})`);

  const show = JSON.parse(cli(home, ['runs', 'show', runId, '--json']).out);
  assert.equal(show.status, 'running', 'a killed run is left running');
  assert.equal(show.stages[0].state, 'running');

  // While the heartbeat is fresh, resume refuses and names the dead worker and what takes over.
  const refused = cli(home, ['runs', 'resume', runId, '--redis', redis.url], { ALIGNFLOW_STALE_MS: '600000' });
  assert.equal(refused.code, 2, refused.out + refused.err);
  assert.match(refused.err, /stage a is held by \S+-\d+ \(heartbeat \d+ s ago\)/);
  assert.match(refused.err, new RegExp(`then \`alignflow runs resume ${runId} --redis URL\` \\(with a worker running\\) takes the run over`));

  // A fresh worker (no reconcile) does not touch the run by itself.
  const w2 = await spawnWorker(home, redis.url, ['--reconcile-ms', '0']);
  try {
    await new Promise((r) => setTimeout(r, Number(fastTimings.ALIGNFLOW_STALE_MS) + 1000));
    assert.equal(loggedStepsOf(home, runId), killedAt, 'nothing ran before resume');

    // (It follows the run to its end; without the takeover job it would wait forever.)
    const resumed = cli(home, ['runs', 'resume', runId, '--redis', redis.url, '--json'], {}, 60_000);
    assert.equal(resumed.code, 0, resumed.out + resumed.err);
    const snap = JSON.parse(resumed.out.slice(resumed.out.indexOf('{')));
    assert.equal(snap.status, 'succeeded');
    assert.equal(snap.executor, 'bullmq');
    const logs = cli(home, ['runs', 'logs', runId]).out;
    assert.match(logs, /resumed \(its driver had stopped\): taking over a/);
    assert.match(logs, /resuming from step [48]\b/, 'the stage continued from its last checkpoint');

    const got = JSON.parse(cli(home, ['runs', 'metrics', runId, '--json']).out);
    assert.deepEqual(got, expected, 'no duplicated or missing metric points after the takeover');
    assert.deepEqual(snap.stages.map((s: { outputs: unknown }) => s.outputs), cleanSnap.stages.map((s: { outputs: unknown }) => s.outputs));
  } finally {
    assert.equal(await stopWorker(w2), 0, 'the fresh worker exits cleanly on SIGTERM');
  }
});

function loggedStepsOf(home: string, runId: string): number {
  const db = openDb(databasePath(home));
  try {
    return (db.$client.prepare('select max(step) as s from metrics where stage_id like ?').get(`${runId}-%`) as { s: number | null }).s ?? 0;
  } finally {
    db.$client.close();
  }
}
