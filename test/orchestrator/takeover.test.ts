// A run whose driver was killed (kill -9) mid-stage stays `running` with a stale heartbeat.
// `runs resume` refuses it while the heartbeat is fresh (naming the command that takes it over),
// takes it over once it is stale, and the resumed run's metrics equal an uninterrupted run's:
// the steps re-run after the last checkpoint replace their first points instead of doubling them.
import test from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { tmpDir } from '../helpers/tmp.js';
import { cliArgs, cliEnv, runCli } from './helpers.js';
import { uninterruptedRun, writeTakeoverPipeline } from './takeover-pipeline.js';
import { openDb } from '../../src/store/db.js';
import { databasePath } from '../../src/config/paths.js';

const dir = tmpDir();

const cli = (home: string, args: string[], extra: Record<string, string> = {}) => runCli(dir, home, args, extra);

const spec = writeTakeoverPipeline(dir, 'takeover');

test('runs resume takes over a killed run; its metrics equal an uninterrupted run\'s', { timeout: 240_000 }, async () => {
  const { metrics: expected, snapshot: cleanSnap } = uninterruptedRun(cli, spec);

  // The same pipeline, its driver killed with SIGKILL between two checkpoints.
  const home = path.join(tmpDir(), 'home');
  const child = spawn(process.execPath, cliArgs(['run', spec]), { cwd: dir, env: cliEnv(home), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  const exited = new Promise((r) => child.once('exit', r));
  let runId: string | undefined;
  for (let i = 0; i < 600 && !runId; i++) {
    runId = /run (r-[0-9a-z-]+) \(inline\)/.exec(out)?.[1];
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(runId, `no run id in: ${out}`);
  const db = openDb(databasePath(home));
  const loggedSteps = () => (db.$client.prepare("select max(step) as s from metrics where stage_id like ?").get(`${runId}-%`) as { s: number | null }).s ?? 0;
  for (let i = 0; i < 600 && loggedSteps() < 6; i++) await new Promise((r) => setTimeout(r, 20));
  child.kill('SIGKILL');
  await exited;
  const killedAt = loggedSteps();
  assert.ok(killedAt >= 6 && killedAt < 14, `killed mid-stage (after step ${killedAt})`);
  db.$client.close();

  const show = JSON.parse(cli(home, ['runs', 'show', runId, '--json']).out);
  assert.equal(show.status, 'running', 'a killed run is left running');

  // While the heartbeat is fresh (a 10-minute staleness window here) resume refuses, naming what takes it over.
  const refused = cli(home, ['runs', 'resume', runId], { ALIGNFLOW_STALE_MS: '600000' });
  assert.equal(refused.code, 2, refused.out + refused.err);
  assert.match(refused.err, /heartbeat .* ago/);
  assert.match(refused.err, new RegExp(`alignflow runs drive ${runId}`));

  // Once stale, resume takes the run over and finishes it from its last checkpoint.
  const resumed = cli(home, ['runs', 'resume', runId, '--json'], { ALIGNFLOW_STALE_MS: '500' });
  assert.equal(resumed.code, 0, resumed.err);
  const snap = JSON.parse(resumed.out.slice(resumed.out.indexOf('{')));
  assert.equal(snap.status, 'succeeded');
  const logs = cli(home, ['runs', 'logs', runId]).out;
  assert.match(logs, /resuming from step [48]\b/, 'the stage continued from its last checkpoint');

  const got = JSON.parse(cli(home, ['runs', 'metrics', runId, '--json']).out);
  assert.deepEqual(got, expected, 'no duplicated or missing metric points after the takeover');
  const csv = cli(home, ['runs', 'metrics', runId, '--stage', 'a', '--csv']).out.trim().split('\n');
  assert.equal(csv[0], 'stage,step,name,value');
  assert.equal(csv.length, 15);
  assert.equal(csv[1], 'a,1,loss,1');
  // The outputs equal the uninterrupted run's too.
  assert.deepEqual(snap.stages.map((s: { outputs: unknown }) => s.outputs), cleanSnap.stages.map((s: { outputs: unknown }) => s.outputs));
});

test('runs show --json carries each stage\'s time, summary and final metrics; runs metrics names a wrong stage', { timeout: 120_000 }, () => {
  const home = path.join(tmpDir(), 'home');
  const r = cli(home, ['run', spec, '--set', 'stages.a.steps=3', '--set', 'stages.a.step_ms=1', '--json']);
  assert.equal(r.code, 0, r.err);
  const snap = JSON.parse(cli(home, ['runs', 'show', JSON.parse(r.out).id, '--json']).out);
  const a = snap.stages[0];
  assert.equal(typeof a.seconds, 'number');
  assert.ok(a.seconds >= 0);
  assert.deepEqual(a.finalMetrics, { loss: 1 / 3 });
  assert.deepEqual(a.evalMetrics, {});
  assert.ok('summary' in a && 'backend' in a);
  const bad = cli(home, ['runs', 'metrics', snap.id, '--stage', 'nope']);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /no stage named "nope" \(stages: a, b\)/);
});
