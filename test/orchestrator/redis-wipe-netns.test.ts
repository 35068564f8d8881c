// Redis wiped mid-run across hosts, for real: the coordinator (`alignflow serve --redis`) and a
// password-protected redis-server in one network namespace, one `alignflow worker --coordinator`
// (concurrency 1) in another. A short pipeline (model init, then two SFT stages that both need
// it) runs; while one SFT runs on the remote worker and the other waits in Redis, Redis gets
// FLUSHALL. SQLite is the system of record: the coordinator's reconcile re-enqueues the waiting
// stage Redis lost, the running stage's holder keeps its claim (its heartbeat to the coordinator
// never stopped, so nothing is stale and nobody takes over), and the run ends with the artifact
// ids of an inline run, every stage run once. Skipped (saying why) where `ip netns` is unusable.
import test from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { eq } from 'drizzle-orm';
import { waitFor } from './helpers.js';
import { coordinatorHost, createTopology, inlineRun, netnsUnavailable, outputsOf } from './netns.js';
import { fastTimings } from './workers.js';
import { tmpDir } from '../helpers/tmp.js';
import { getRun, runLogs, runStages } from '../../src/orchestrator/runs.js';
import { checkpoints } from '../../src/store/schema.js';
import { loadStages } from '../../src/stages/index.js';

const why = netnsUnavailable();
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
await loadStages(['model_init', 'sft']);

const abs = (p: string) => JSON.stringify(path.join(root, p));
const sft = (steps: number, lr: number) =>
  `{ inputs: { model: model, train: datasets.sft }, kind: sft, config: { max_steps: ${steps}, batch_size: 4, lr: ${lr}, schedule: cosine, warmup_steps: 2, max_length: 48, checkpoint_every: 4, keep_checkpoints: 2 } }`;
const spec = `
name: redis-wipe
seed: 7
model:
  fresh:
    preset: gpt2-micro
    tokenizer: { type: bytes, dataset: sft }
datasets:
  sft: ${abs('datasets/samples/sft-prompt-completion.jsonl')}
stages:
  sft_a: ${sft(32, 0.003)}
  sft_b: ${sft(8, 0.002)}
`;

// Heartbeats every 250 ms, presumed dead after 5 s; reconcile every 700 ms.
const timings = { ...fastTimings, ALIGNFLOW_STALE_MS: '5000' };

test('multi-host: Redis FLUSHALL while a stage runs on a remote worker; reconcile rebuilds the queue, same artifacts as inline', { skip: why, timeout: 600_000 }, async (t) => {
  const topo = createTopology(1);
  t.after(() => topo.destroy());
  const refP = inlineRun(spec);
  const host = await coordinatorHost(topo, timings);
  const coordinator = await host.startCoordinator();
  const worker = host.startWorker(0, path.join(tmpDir(), 'worker'), { args: ['--stages', 'model_init,sft', '--concurrency', '1'] });
  await worker.waitFor('ready:', 180_000);
  const { db, redisCli } = host;
  const failure = (runId: string) => `${JSON.stringify(runStages(db, runId).map((s) => [s.name, s.state, s.worker, s.attempts, s.error]))}\n--- worker:\n${worker.output().slice(-2000)}\n--- coordinator:\n${coordinator.output().slice(-2000)}`;
  const runId = host.submit(spec);

  // One SFT running on the remote worker (a checkpoint recorded: it is well inside the stage),
  // the other queued in Redis behind it (the worker takes one job at a time).
  const stage = (n: string) => runStages(db, runId).find((s) => s.name === n)!;
  const running = await waitFor(() => {
    const [a, b] = [stage('sft_a'), stage('sft_b')];
    const r = a.state === 'running' ? a : b.state === 'running' ? b : undefined;
    const q = r === a ? b : a;
    return r && q.state === 'queued' && db.select().from(checkpoints).where(eq(checkpoints.stageId, r.id)).all().length > 0 ? r : undefined;
  }, 300_000, 'an SFT running on the remote worker with a checkpoint', 50).catch((e: Error) => assert.fail(`${e.message}: ${failure(runId)}`));
  assert.match(running.worker ?? '', /^wk\//, 'held by the remote worker');
  const waiting = running.name === 'sft_a' ? 'sft_b' : 'sft_a';
  const keysBefore = Number(redisCli('DBSIZE'));
  assert.ok(keysBefore > 0, 'Redis holds the queues before the wipe');
  const seenBefore = coordinator.output().length;
  assert.equal(redisCli('FLUSHALL'), 'OK');
  const flushedAt = Date.now();

  // The coordinator's reconcile puts the waiting stage's job back; the run completes.
  const line = await waitFor(() => /reconcile: re-enqueued [1-9]\d* job\S* Redis had lost/.exec(coordinator.output().slice(seenBefore))?.[0], 60_000, 'the reconcile after the wipe', 50).catch((e: Error) => assert.fail(`${e.message}: ${failure(runId)}`));
  t.diagnostic(`FLUSHALL (${keysBefore} keys) while ${running.name} ran; coordinator said "${line}" ${Date.now() - flushedAt} ms later`);
  const status = await waitFor(() => {
    const s = getRun(db, runId).status;
    return s === 'succeeded' || s === 'failed' || s === 'cancelled' ? s : undefined;
  }, 400_000, 'the run', 250).catch((e: Error) => assert.fail(`${e.message}: ${failure(runId)}`));
  assert.equal(status, 'succeeded', failure(runId));

  assert.deepEqual(outputsOf(db, runId), (await refP).outputs, 'the artifact ids of an inline run');
  const stages = runStages(db, runId);
  for (const s of stages) {
    assert.equal(s.attempts, 1, `${s.name} ran once: ${failure(runId)}`);
    assert.match(s.worker ?? '', /^wk\//, `${s.name} ran on the remote worker`);
  }
  assert.equal(stage(running.name).worker, running.worker, 'the running stage kept its holder through the wipe');
  const logs = runLogs(db, runId).map((e) => e.message);
  assert.ok(!logs.some((m) => /stopped answering; .* takes over/.test(m)), 'no takeover: the holder never went stale');
  assert.ok(stage(waiting).startedAt! > running.startedAt!, `${waiting} ran after the wipe, from the re-enqueued job`);
  t.diagnostic(`run finished ${Date.now() - flushedAt} ms after the wipe; worker lines about locks: ${JSON.stringify(worker.output().split('\n').filter((l) => /error|lock|missing/i.test(l)).slice(0, 5))}`);
  db.$client.close();
});
