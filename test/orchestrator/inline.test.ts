import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { eq } from 'drizzle-orm';
import { setup, submit, writeFile } from './helpers.js';
import { driveRun } from '../../src/orchestrator/executors/inline.js';
import { runStages, getRun, cancelRun, resumeRun } from '../../src/orchestrator/runs.js';
import { checkpoints, stageOutputs } from '../../src/store/schema.js';

const pipeline = (dir: string, extra = '') => `
name: chain
seed: 7
datasets:
  data: data.jsonl
stages:
  a:
    kind: count
    inputs: { data: datasets.data }
    config: { steps: 4, step_ms: 5, trace: ${JSON.stringify(path.join(dir, 'trace.jsonl'))} }
  b:
    kind: count
    inputs: { prev: a }
    config: { steps: 3, step_ms: 5 }
  j:
    kind: join
    inputs: { x: a, y: b.result }
${extra}`;

test('inline executor runs a DAG in order, then a second run is fully cached', async () => {
  const env = await setup();
  writeFile(env.dir, 'data.jsonl', '{"text":"hi"}\n');
  const id = await submit(env, pipeline(env.dir));
  const s1 = await driveRun(env, id);
  assert.equal(s1, 'succeeded', getRun(env.db, id).error ?? '');
  const st = runStages(env.db, id);
  assert.deepEqual(st.map((s) => s.state), ['succeeded', 'succeeded', 'succeeded']);
  const cps = env.db.select().from(checkpoints).where(eq(checkpoints.stageId, st[0]!.id)).all();
  // the last 3 (default) are kept; the best by eval loss (1/step) is the newest here
  assert.deepEqual(cps.map((c) => c.step).sort(), [2, 3, 4]);

  const id2 = await submit(env, pipeline(env.dir));
  assert.equal(await driveRun(env, id2), 'succeeded');
  const st2 = runStages(env.db, id2);
  assert.deepEqual(st2.map((s) => s.state), ['cached', 'cached', 'cached']);
  assert.equal(st2[0]!.cachedFromStageId, st[0]!.id);
  const outs = (sid: string) => env.db.select().from(stageOutputs).where(eq(stageOutputs.stageId, sid)).all().map((o) => o.artifactId);
  assert.deepEqual(outs(st2[2]!.id), outs(st[2]!.id));
  assert.equal(getRun(env.db, id2).status, 'succeeded');
});
