// online_dpo with human labels under the BullMQ executor (a real redis-server started here): the
// stage publishes a step's pairs, answers 'waiting' with a checkpoint, and is re-invoked by a delayed
// job; labels given through the labeling port let it resume and finish. Its weights equal those of
// the same stage run inline with the equivalent judge module.
import test from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { eq } from 'drizzle-orm';
import { setup, submit, writeFile, type Env } from './helpers.js';
import { startRedis } from './redis.js';
import { loadStages } from '../../src/stages/index.js';
import { driveRun } from '../../src/orchestrator/executors/inline.js';
import { Dispatcher, startWorkers } from '../../src/orchestrator/executors/bullmq.js';
import { getRun, runStages } from '../../src/orchestrator/runs.js';
import { createLabelingPort, type MachineLabel } from '../../src/labeling/port.js';
import { labelBatches, stageOutputs } from '../../src/store/schema.js';

const shorter = fileURLToPath(new URL('../fixtures/judges/shorter.mjs', import.meta.url));
const redis = await startRedis();
test.after(() => redis.kill());

const spec = (prompts: string, judge: string) => `
name: odpo-bullmq
seed: 2
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
    config: { judge: ${judge}, wait_ms: 0, poll_ms: 200, max_steps: 2, batch_size: 3, max_length: 32, max_new_tokens: 8, temperature: 1, lr: 0.003, schedule: constant, log_every: 1, seed: 9 }
`;

const modelWeights = async (env: Env, runId: string) => {
  const st = runStages(env.db, runId).find((s) => s.name === 'odpo')!;
  const out = env.db.select().from(stageOutputs).where(eq(stageOutputs.stageId, st.id)).all().find((o) => o.role === 'model')!;
  return env.store.readFile(out.artifactId, 'model.safetensors');
};

test('bullmq: online_dpo with judge human waits by delayed jobs, resumes on labels, and trains the judge module\'s weights', { timeout: 600_000 }, async () => {
  await loadStages(['model_init', 'online_dpo']);
  const ref = await setup();
  const env = await setup();
  const lines = Array.from({ length: 6 }, (_, i) => JSON.stringify({ prompt: `q ${'abcdef'[i]}:` })).join('\n') + '\n';
  const refRun = await submit(ref, spec(writeFile(ref.dir, 'prompts.jsonl', lines), `{ module: ${JSON.stringify(shorter)} }`));
  assert.equal(await driveRun(ref, refRun), 'succeeded');

  const runId = await submit(env, spec(writeFile(env.dir, 'prompts.jsonl', lines), '{ type: human }'), { executor: 'bullmq' });
  const w = await startWorkers(env, redis.url, { kinds: ['model_init', 'online_dpo'], reconcileMs: 0 });
  const port = createLabelingPort(env.db);
  let waits = 0;
  let labeled = 0;
  try {
    const d = new Dispatcher(redis.url);
    await d.dispatchRun(env.db, runId);
    await d.close();
    const end = Date.now() + 500_000;
    for (;;) {
      const s = getRun(env.db, runId).status;
      if (s === 'succeeded' || s === 'failed' || s === 'cancelled') break;
      if (Date.now() > end) throw new Error(`run still ${s}`);
      if (s === 'waiting') waits++;
      for (const b of env.db.select().from(labelBatches).all()) {
        if (b.status !== 'open' || (await port.labelCount(b.id)) > 0) continue;
        const labels: MachineLabel[] = (await port.pairsOf(b.id)).map((p) => ({ pairId: p.pairId, decision: p.a.text.length < p.b.text.length ? 'a' : p.b.text.length < p.a.text.length ? 'b' : 'tie', source: 'user:tester' }));
        labeled += await port.recordLabels(b.id, labels);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    await w.shutdown();
  }
  assert.equal(getRun(env.db, runId).status, 'succeeded', JSON.stringify(runStages(env.db, runId).map((s) => [s.name, s.state, s.error])));
  assert.ok(waits > 0, 'the run was seen waiting');
  assert.equal(labeled, 6);
  assert.ok(Buffer.compare(await modelWeights(ref, refRun), await modelWeights(env, runId)) === 0, 'same weights as the judge module inline');
});
