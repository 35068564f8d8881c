// The rl stage through the orchestrator: model_init → rl (a rule judge reward) runs inline and
// under BullMQ (a real redis-server started by this file) with the same artifact ids, reports
// progress and TRL-named metrics, and a second submission of the same spec is served from the cache.
import test from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { eq } from 'drizzle-orm';
import { setup, submit, type Env } from './helpers.js';
import { startRedis } from './redis.js';
import { driveRun } from '../../src/orchestrator/executors/inline.js';
import { Dispatcher, startWorkers } from '../../src/orchestrator/executors/bullmq.js';
import { getRun, runStages } from '../../src/orchestrator/runs.js';
import { metrics, stageOutputs } from '../../src/store/schema.js';
import { loadStages } from '../../src/stages/index.js';

await loadStages(['model_init', 'rl']);
const redis = await startRedis();
const here = path.dirname(fileURLToPath(import.meta.url));
const samples = path.resolve(here, '../../datasets/samples');
const judge = path.resolve(here, '../fixtures/rl/letters.mjs');

const spec = `
name: rl
seed: 4
model:
  fresh:
    preset: gpt2-micro
    tokenizer: { type: bytes, dataset: prompts }
datasets:
  prompts: ${JSON.stringify(path.join(samples, 'sft-prompt-completion.jsonl'))}
stages:
  rl:
    inputs: { model: model, train: datasets.prompts }
    config:
      rewards: [{ type: judge, module: ${JSON.stringify(judge)} }]
      num_generations: 2
      batch_size: 2
      max_new_tokens: 4
      max_length: 40
      max_steps: 4
      lr: 0.003
      checkpoint_every: 2
`;

const outputsOf = (env: Env, runId: string) =>
  Object.fromEntries(
    runStages(env.db, runId).map((s) => [
      s.name,
      env.db.select().from(stageOutputs).where(eq(stageOutputs.stageId, s.id)).all().map((o) => `${o.role}=${o.artifactId}`).sort().join(','),
    ]),
  );
const failure = (env: Env, runId: string) => `${getRun(env.db, runId).error ?? ''} ${JSON.stringify(runStages(env.db, runId).map((s) => [s.name, s.state, s.error]))}`;

async function waitRun(env: Env, runId: string, ms: number): Promise<string> {
  const end = Date.now() + ms;
  for (;;) {
    const s = getRun(env.db, runId).status;
    if (s === 'succeeded' || s === 'failed' || s === 'cancelled') return s;
    if (Date.now() > end) throw new Error(`run ${runId} did not finish: ${failure(env, runId)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('rl stage: inline and BullMQ give the same artifacts; metrics and cache as any stage', { timeout: 300_000 }, async () => {
  const a = await setup();
  const ra = await submit(a, spec);
  assert.equal(await driveRun(a, ra), 'succeeded', failure(a, ra));
  const rlStage = runStages(a.db, ra).find((s) => s.name === 'rl')!;
  const summary = (rlStage.progress as { summary: Record<string, any> }).summary;
  assert.equal(summary.steps, 4);
  assert.equal(summary.advantage, 'rloo');
  const names = new Set(a.db.select().from(metrics).where(eq(metrics.stageId, rlStage.id)).all().map((m) => m.name));
  for (const n of ['objective/kl', 'objective/scores', 'objective/rlhf_reward', 'policy/clipfrac', 'loss/policy']) assert.ok(names.has(n), `metric ${n} (${[...names].join(', ')})`);

  // the same spec again: every stage is a cache hit
  const again = await submit(a, spec);
  assert.equal(await driveRun(a, again), 'succeeded', failure(a, again));
  assert.deepEqual(outputsOf(a, again), outputsOf(a, ra));

  const b = await setup();
  const rb = await submit(b, spec, { executor: 'bullmq' });
  const w = await startWorkers(b, redis.url, { kinds: ['model_init', 'rl'], reconcileMs: 0 });
  try {
    const d = new Dispatcher(redis.url);
    await d.dispatchRun(b.db, rb);
    await d.close();
    assert.equal(await waitRun(b, rb, 240_000), 'succeeded', failure(b, rb));
  } finally {
    await w.shutdown();
  }
  assert.deepEqual(outputsOf(b, rb), outputsOf(a, ra));
});
