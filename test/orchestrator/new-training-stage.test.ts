// Adding a training stage takes one file (fixtures/length-stage.ts) and one registry line: the
// skeleton (src/stages/training.ts) gives it the eval split, resume, checkpoints, keep_checkpoints,
// the output artifact and the summary, and the orchestrator runs it like a built-in stage.
import test from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { eq } from 'drizzle-orm';
import { setup, submit, writeFile } from './helpers.js';
import { registerStageModule } from '../../src/stages/index.js';
import { driveRun } from '../../src/orchestrator/executors/inline.js';
import { getRun, runStages } from '../../src/orchestrator/runs.js';
import { checkpoints } from '../../src/store/schema.js';

test('a trivial training stage defined in one file runs through the orchestrator with the skeleton\'s split, checkpoints and summary', { timeout: 120_000 }, async () => {
  await registerStageModule(fileURLToPath(new URL('./fixtures/length-stage.ts', import.meta.url))); // the one registry line
  const env = await setup();
  const lengths = [3, 5, 7, 9, 11, 13, 15, 17];
  const data = writeFile(env.dir, 'sft.jsonl', lengths.map((n, i) => JSON.stringify({ prompt: `p${i}`, completion: 'x'.repeat(n) })).join('\n') + '\n');
  const runId = await submit(
    env,
    `
name: length
seed: 3
datasets:
  sft: ${JSON.stringify(data)}
stages:
  fit:
    kind: mean_length
    inputs: { train: datasets.sft }
    config: { max_steps: 40, batch_size: 2, schedule: constant, checkpoint_every: 10, keep_checkpoints: 2, log_every: 5 }
`,
  );
  await driveRun(env, runId);
  assert.equal(getRun(env.db, runId).status, 'succeeded', JSON.stringify(runStages(env.db, runId).map((s) => [s.name, s.state, s.error])));
  const stage = runStages(env.db, runId).find((s) => s.name === 'fit')!;
  const summary = (stage.progress as { summary: Record<string, unknown> }).summary;
  // the skeleton's one summary shape, with the stage's own field after it
  assert.equal(summary.steps, 40);
  assert.deepEqual(summary.units, { train: 6, eval: 2 }, 'eval_fraction 0.25 of 8 records, held out by the one split rule');
  assert.ok(typeof (summary.eval as Record<string, number>).eval_loss === 'number');
  assert.ok((summary.eval as Record<string, number>).eval_loss! < (summary.eval_start as Record<string, number>).eval_loss!);
  const mean = summary.mean_length as number;
  assert.ok(mean > 5 && mean < 15, `learned mean length ${mean}`);
  // keep_checkpoints: 2 of the 4 checkpoints (steps 10..40) remain, plus the best by eval loss
  const kept = env.db.select().from(checkpoints).where(eq(checkpoints.stageId, stage.id)).all().map((c) => c.step).sort((a, b) => a - b);
  assert.ok(kept.length <= 3 && kept.includes(40) && kept.includes(30), `kept checkpoints ${kept}`);
});
