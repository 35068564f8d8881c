// The online_dpo stage runs through the orchestrator (inline executor) like any built-in stage:
// the spec validates its config, the model input comes from an earlier stage, and its output model
// records the judge and its lineage.
import test from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { setup, submit, writeFile } from './helpers.js';
import { loadStages } from '../../src/stages/index.js';
import { driveRun } from '../../src/orchestrator/executors/inline.js';
import { eq } from 'drizzle-orm';
import { getRun, runStages } from '../../src/orchestrator/runs.js';
import { stageOutputs } from '../../src/store/schema.js';

const judge = fileURLToPath(new URL('../fixtures/judges/letters.mjs', import.meta.url));

test('online_dpo runs through the inline orchestrator from a fresh model with a rule judge', { timeout: 300_000 }, async () => {
  await loadStages();
  const env = await setup();
  const prompts = writeFile(env.dir, 'prompts.jsonl', Array.from({ length: 12 }, (_, i) => JSON.stringify({ prompt: `q ${i}:` })).join('\n') + '\n');
  const runId = await submit(
    env,
    `
name: online
seed: 5
model:
  fresh:
    preset: gpt2-micro
    tokenizer: { type: bytes, dataset: prompts }
datasets:
  prompts: ${JSON.stringify(prompts)}
stages:
  odpo:
    kind: online_dpo
    inputs: { model: model, train: datasets.prompts }
    config: { judge: { module: ${JSON.stringify(judge)} }, max_steps: 3, batch_size: 4, max_length: 32, max_new_tokens: 6, lr: 0.001, log_every: 1, checkpoint_every: 2 }
`,
  );
  await driveRun(env, runId);
  assert.equal(getRun(env.db, runId).status, 'succeeded', JSON.stringify(runStages(env.db, runId).map((s) => [s.name, s.state, s.error])));
  const stage = runStages(env.db, runId).find((s) => s.name === 'odpo')!;
  const summary = (stage.progress as { summary: Record<string, any> }).summary;
  assert.equal(summary.steps, 3);
  assert.match(summary.judge, /letters-a-h/);
  assert.ok(Math.abs(summary.metrics['objective/kl']) >= 0 && 'objective/scores' in summary.metrics);
  const out = env.db.select().from(stageOutputs).where(eq(stageOutputs.stageId, stage.id)).all().find((o) => o.role === 'model')!;
  const model = await env.store.get(out.artifactId);
  assert.equal(model.metadata.stage, 'online_dpo');
  assert.equal(model.metadata.online, true);
});
