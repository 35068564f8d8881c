// The orchestrator's reliability claims with the REAL built-in stages (model_init → sft → dpo on a
// fresh micro GPT-2, byte tokenizer, the bundled sample datasets, real tfjs arithmetic), against
// a real redis-server started by this file. The other orchestrator tests use deterministic
// stand-in handlers; these check that the actual training stages keep the same promises:
//   - inline and BullMQ produce the same artifact ids for every stage;
//   - kill -9 of a worker mid-SFT: another worker takes the stage over, resumes from its last
//     checkpoint, and the final artifacts are bit-identical to an uninterrupted run's
//     (artifact ids are content hashes: equal ids ⇔ identical bytes).
import test from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { and, eq, gte } from 'drizzle-orm';
import { setup, submit, waitFor, type Env } from './helpers.js';
import { startRedis } from './redis.js';
import { spawnWorker, stopWorker } from './workers.js';
import { runSnapshot } from '../../src/orchestrator/follow.js';
import { driveRun } from '../../src/orchestrator/executors/inline.js';
import { Dispatcher, startWorkers } from '../../src/orchestrator/executors/bullmq.js';
import { getRun, runLogs, runStages } from '../../src/orchestrator/runs.js';
import { checkpoints, metrics, stageOutputs } from '../../src/store/schema.js';
import { loadStages } from '../../src/stages/index.js';

// The built-in handlers are loaded on first use; validating the spec needs their config schemas.
await loadStages(['model_init', 'sft', 'dpo']);
const redis = await startRedis();
const samples = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../datasets/samples');

const SFT_STEPS = 60;
const CKPT_EVERY = 4;
// Small enough to stay within a few CPU-seconds per run, long enough (a few seconds of SFT) that
// the test can kill the worker between the first checkpoint and the end of the stage.
const spec = `
name: real
seed: 11
model:
  fresh:
    preset: gpt2-micro
    tokenizer: { type: bytes, dataset: sft }
datasets:
  sft: ${JSON.stringify(path.join(samples, 'sft-prompt-completion.jsonl'))}
  prefs: { path: ${JSON.stringify(path.join(samples, 'preference-explicit.jsonl'))}, kind: preference }
stages:
  sft:
    inputs: { model: model, train: datasets.sft }
    config: { max_steps: ${SFT_STEPS}, batch_size: 4, lr: 0.003, schedule: cosine, warmup_steps: 2, max_length: 48, checkpoint_every: ${CKPT_EVERY}, keep_checkpoints: 2 }
  dpo:
    inputs: { model: sft, reference: sft, train: datasets.prefs }
    config: { max_steps: 3, batch_size: 4, lr: 0.001, max_length: 48, eval_fraction: 0.2, log_every: 1, checkpoint_every: 2 }
`;


const waitRun = (env: Env, runId: string, ms: number) =>
  waitFor(
    () => {
      const s = getRun(env.db, runId).status;
      return s === 'succeeded' || s === 'failed' || s === 'cancelled' ? s : undefined;
    },
    ms,
    `run ${runId} to finish`,
    100,
  ).catch((err: Error) => {
    throw new Error(`${err.message}: ${JSON.stringify(runStages(env.db, runId).map((x) => [x.name, x.state, x.error]))}`);
  });

/** stage name → "role=artifactId,…" for every stage of the run. */
const outputsOf = (env: Env, runId: string) =>
  Object.fromEntries(
    runStages(env.db, runId).map((s) => [
      s.name,
      env.db.select().from(stageOutputs).where(eq(stageOutputs.stageId, s.id)).all().map((o) => `${o.role}=${o.artifactId}`).sort().join(','),
    ]),
  );

const failure = (env: Env, runId: string) => `${getRun(env.db, runId).error ?? ''} ${JSON.stringify(runStages(env.db, runId).map((s) => [s.name, s.state, s.error]))}`;

// The uninterrupted inline run, shared by both tests (computed once).
let reference: Promise<Record<string, string>> | undefined;
function inlineReference(): Promise<Record<string, string>> {
  reference ??= (async () => {
    const env = await setup();
    const runId = await submit(env, spec);
    const t0 = Date.now();
    assert.equal(await driveRun(env, runId), 'succeeded', failure(env, runId));
    const took = runStages(env.db, runId).map((st) => `${st.name} ${(((st.finishedAt ?? 0) - (st.startedAt ?? 0)) / 1000).toFixed(1)} s`);
    console.log(`# inline run: ${((Date.now() - t0) / 1000).toFixed(1)} s wall (${took.join(', ')})`);
    // runs show --json: every training stage reports its wall time, backend and final metrics.
    for (const st of runSnapshot(env.db, runId).stages) {
      assert.ok(typeof st.seconds === 'number' && st.seconds > 0, `${st.name} seconds`);
      assert.match(String(st.backend), /^(native|wasm|cpu|tensorflow|node-gpu|webgl)$/, `${st.name} backend`);
      if (st.name !== 'model') assert.equal(typeof st.finalMetrics.loss, 'number', `${st.name} final loss`);
    }
    return outputsOf(env, runId);
  })();
  return reference;
}

test('real stages: the same pipeline under inline and BullMQ gives the same artifact ids for every stage', { timeout: 600_000 }, async () => {
  const ref = await inlineReference();
  assert.deepEqual(Object.keys(ref).sort(), ['dpo', 'model', 'sft']);
  for (const [stage, outs] of Object.entries(ref)) assert.match(outs, /model=a-/, `stage ${stage} produced a model`);

  const env = await setup();
  const runId = await submit(env, spec, { executor: 'bullmq' });
  const w = await startWorkers(env, redis.url, { kinds: ['model_init', 'sft', 'dpo'], reconcileMs: 0 });
  const t0 = Date.now();
  try {
    const d = new Dispatcher(redis.url);
    await d.dispatchRun(env.db, runId);
    await d.close();
    assert.equal(await waitRun(env, runId, 300_000), 'succeeded', failure(env, runId));
  } finally {
    await w.shutdown();
  }
  console.log(`# bullmq run: ${((Date.now() - t0) / 1000).toFixed(1)} s wall`);
  assert.deepEqual(runStages(env.db, runId).map((s) => [s.name, s.state, s.attempts]), [
    ['model', 'succeeded', 1],
    ['sft', 'succeeded', 1],
    ['dpo', 'succeeded', 1],
  ]);
  assert.deepEqual(outputsOf(env, runId), ref);
});

test('real stages: kill -9 of a worker mid-SFT; a second worker resumes from the last checkpoint, same artifacts as an uninterrupted run', { timeout: 600_000 }, async () => {
  const ref = await inlineReference();
  const env = await setup();
  const runId = await submit(env, spec, { executor: 'bullmq' });
  const sftId = runStages(env.db, runId).find((s) => s.name === 'sft')!.id;
  const ckptSteps = () => env.db.select().from(checkpoints).where(eq(checkpoints.stageId, sftId)).all().map((c) => c.step);
  const lossSteps = (since = 0) =>
    env.db
      .select()
      .from(metrics)
      .where(and(eq(metrics.stageId, sftId), eq(metrics.name, 'loss'), gte(metrics.createdAt, since)))
      .all()
      .map((m) => m.step);

  const w1 = await spawnWorker(env.home, redis.url, ['--stages', 'model_init,sft']);
  const d = new Dispatcher(redis.url);
  await d.dispatchRun(env.db, runId);
  await d.close();
  // Kill once the SFT stage has recorded a checkpoint and trained two steps past it (those are
  // lost and redone), well before its end (polled often: the window is a few seconds).
  await waitFor(() => (ckptSteps().length > 0 && Math.max(...lossSteps()) >= CKPT_EVERY + 2 ? true : undefined), 300_000, 'an SFT checkpoint and two steps past it', 20);
  w1.proc.kill('SIGKILL');
  await w1.exited;
  const killedAt = Date.now();
  const before = runStages(env.db, runId).find((s) => s.name === 'sft')!;
  assert.equal(before.state, 'running', 'killed while the SFT stage was running');
  const trainedBefore = Math.max(...lossSteps());
  assert.ok(trainedBefore < SFT_STEPS, `killed before the end of SFT (at step ${trainedBefore} of ${SFT_STEPS})`);
  const lastCkpt = Math.max(...ckptSteps());
  assert.ok(lastCkpt >= CKPT_EVERY, `a checkpoint exists (step ${lastCkpt})`);

  const w2 = await spawnWorker(env.home, redis.url, ['--stages', 'model_init,sft,dpo']);
  try {
    assert.equal(await waitRun(env, runId, 300_000), 'succeeded', failure(env, runId) + w2.output());
  } finally {
    assert.equal(await stopWorker(w2), 0, 'worker 2 exits cleanly on SIGTERM');
  }
  console.log(`# kill -9 run: killed at SFT step ${trainedBefore} (last checkpoint ${lastCkpt}); recovered in ${((Date.now() - killedAt) / 1000).toFixed(1)} s wall`);

  const sft = runStages(env.db, runId).find((s) => s.name === 'sft')!;
  assert.equal(sft.attempts, 2, 'the SFT stage ran twice: once per worker');
  const logs = runLogs(env.db, runId).map((e) => e.message);
  assert.ok(logs.some((m) => /stage sft: .* stopped answering; .* takes over/.test(m)), 'taken over from the dead worker');
  const resumedLine = logs.find((m) => /SFT: resuming from the checkpoint of step \d+/.test(m));
  assert.ok(resumedLine, `resumed from a checkpoint: ${logs.join(' | ')}`);
  const resumedFrom = Number(/step (\d+)/.exec(resumedLine)![1]);
  assert.ok(resumedFrom >= lastCkpt, `resumed from step ${resumedFrom}, the last checkpoint before the kill was ${lastCkpt}`);
  // The second attempt's first trained step is the one after its checkpoint, not step 1.
  const secondStart = runLogs(env.db, runId).find((e) => e.stageId === sftId && /started \(attempt 2/.test(e.message))!.createdAt;
  const after = lossSteps(secondStart);
  assert.equal(Math.min(...after), resumedFrom + 1, `first step after the resume: ${Math.min(...after)}`);
  assert.ok(Math.min(...after) > 1);
  assert.equal(Math.max(...after), SFT_STEPS);
  // Bit-identical to the uninterrupted inline run, for every stage (sft's model and dpo's too).
  assert.deepEqual(outputsOf(env, runId), ref);
});
