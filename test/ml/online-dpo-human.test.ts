// online_dpo with human labels through the real labeling service, run by the inline orchestrator:
// each step's pairs are published as a label batch, the stage waits, a labeler (this test, through
// the labeling port over the run's database) labels them, and the step is taken on those labels.
// Labelling as the `shorter` judge module would must train exactly the weights that judge module
// trains, whether the stage waits in-process or answers 'waiting' and is resumed from its checkpoint.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { eq } from 'drizzle-orm';
import { createLabelingPort, type LabelingService, type MachineLabel } from '../../src/labeling/port.js';
import { labelBatches, stageOutputs } from '../../src/store/schema.js';
import { loadStages } from '../../src/stages/index.js';
import { driveRun } from '../../src/orchestrator/executors/inline.js';
import { getRun, runStages } from '../../src/orchestrator/runs.js';
import { setup, submit, writeFile, type Env } from '../orchestrator/helpers.js';

const shorter = fileURLToPath(new URL('../fixtures/judges/shorter.mjs', import.meta.url));

/** Labels every open batch whose pairs are unlabeled, as the `shorter` judge would; returns the pairs labeled. */
async function labelOpen(e: Env, port: LabelingService): Promise<number> {
  let n = 0;
  for (const b of e.db.select().from(labelBatches).all()) {
    if (b.status !== 'open' || (await port.labelCount(b.id)) > 0) continue;
    const labels: MachineLabel[] = (await port.pairsOf(b.id)).map((p) => ({
      pairId: p.pairId,
      decision: p.a.text.length < p.b.text.length ? 'a' : p.b.text.length < p.a.text.length ? 'b' : 'tie',
      source: 'user:tester',
    }));
    n += await port.recordLabels(b.id, labels);
  }
  return n;
}

test('online_dpo judge: human — labels submitted while the stage waits; the weights of the equivalent judge module, in-process or resumed', { timeout: 600_000 }, async () => {
  await loadStages(['model_init', 'online_dpo']);
  const e = await setup();
  const prompts = writeFile(e.dir, 'prompts.jsonl', Array.from({ length: 9 }, (_, i) => JSON.stringify({ prompt: `q ${'abcdefghi'[i]}:` })).join('\n') + '\n');
  // one config seed for the three stages, so they sample the same answers
  const cfg = `max_steps: 3, batch_size: 3, max_length: 32, max_new_tokens: 8, temperature: 1, lr: 0.003, schedule: constant, log_every: 1, seed: 9`;
  const runId = await submit(
    e,
    `
name: human-online
seed: 2
model:
  fresh:
    preset: gpt2-micro
    tokenizer: { type: bytes, dataset: prompts }
datasets:
  prompts: ${JSON.stringify(prompts)}
stages:
  module:
    kind: online_dpo
    inputs: { model: model, train: datasets.prompts }
    config: { judge: { module: ${JSON.stringify(shorter)} }, ${cfg} }
  live:
    kind: online_dpo
    inputs: { model: model, train: datasets.prompts }
    config: { judge: { type: human }, wait_ms: 120000, ${cfg} }
  resumed:
    kind: online_dpo
    inputs: { model: model, train: datasets.prompts }
    config: { judge: { type: human }, wait_ms: 0, poll_ms: 100, ${cfg} }
`,
  );
  const port = createLabelingPort(e.db);
  let labeled = 0;
  const waits = new Set<string>();
  let busy = false; // one labeling pass at a time (the port is async: two passes could both see a batch unlabeled)
  const labeler = setInterval(() => {
    for (const s of runStages(e.db, runId)) if (s.state === 'waiting') waits.add(s.name);
    if (busy) return;
    busy = true;
    void labelOpen(e, port)
      .then((n) => (labeled += n))
      .finally(() => (busy = false));
  }, 25);
  try {
    await driveRun(e, runId, { pollMs: 50 });
  } finally {
    clearInterval(labeler);
  }
  const st = runStages(e.db, runId);
  assert.equal(getRun(e.db, runId).status, 'succeeded', JSON.stringify(st.map((s) => [s.name, s.state, s.error])));
  assert.equal(labeled, 18, 'two human stages × three steps × three pairs, each labeled once');
  assert.ok(waits.has('resumed'), 'the wait_ms 0 stage answered waiting');
  const byStage = (name: string) => st.find((s) => s.name === name)!;
  console.log(`online dpo, human judge: ${st.map((s) => `${s.name} ${((s.finishedAt! - s.startedAt!) / 1000).toFixed(1)} s`).join(', ')}`);
  const batches = e.db.select().from(labelBatches).where(eq(labelBatches.stageId, byStage('live').id)).all();
  assert.deepEqual(batches.map((b) => [b.name, b.status]).sort(), [1, 2, 3].map((k) => [`live batch ${k} (${runId})`, 'closed']));
  const weights = async (name: string) => {
    const out = e.db.select().from(stageOutputs).where(eq(stageOutputs.stageId, byStage(name).id)).all().find((o) => o.role === 'model')!;
    return e.store.readFile(out.artifactId, 'model.safetensors');
  };
  const w = await weights('module');
  assert.ok(Buffer.compare(w, await weights('live')) === 0, 'human labels as the judge decides → the judge\'s weights');
  assert.ok(Buffer.compare(w, await weights('resumed')) === 0, 'waiting and resuming from the checkpoint changes nothing');
});
