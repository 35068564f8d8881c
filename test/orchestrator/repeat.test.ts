// `repeat:` blocks in a pipeline spec: expanded at validation into ordinary stages (NAME-rK), each
// round's `previous` the round before's output, `${round}` substituted in configs; errors name the
// file, line and field; a 2-round collect → label → dpo pipeline runs through the inline
// orchestrator, round 2's model descends from round 1's, and raising `times` reuses the rounds run.
import test from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { eq } from 'drizzle-orm';
import { setup, lookup, writeFile, issuesOf, submit } from './helpers.js';
import { parseSpec, specKinds } from '../../src/config/spec.js';
import { loadStages } from '../../src/stages/index.js';
import { driveRun } from '../../src/orchestrator/executors/inline.js';
import { getRun, runStages } from '../../src/orchestrator/runs.js';
import { lineageEdges, stageOutputs } from '../../src/store/schema.js';

await loadStages(['model_init', 'collect', 'label', 'dpo', 'online_dpo']);
const env = await setup();
const data = writeFile(env.dir, 'data/train.jsonl', '{"text":"x"}\n');

const spec = (times: number) => `name: rounds
seed: 1
datasets:
  train: ${JSON.stringify(data)}
stages:
  base:
    kind: count
    inputs: { data: datasets.train }
    config: { steps: 1, step_ms: 0 }
  rounds:
    repeat:
      times: ${times}
      from: base
      stages:
        collect:
          kind: count
          inputs: { prev: previous, data: datasets.train }
          config: { steps: "\${round}", step_ms: 0 }
        dpo:
          kind: join
          inputs: { model: previous, train: collect }
          config: { tag: "round \${round}" }
  final:
    kind: join
    inputs: { model: rounds, first: rounds-r1 }
`;

test('repeat: expansion known answer (names, edges, configs, order)', () => {
  const s = parseSpec(spec(3).replace('first: rounds-r1', 'first: dpo-r1'), { lookup });
  assert.deepEqual(s.stages.map((x) => x.name), ['base', 'collect-r1', 'dpo-r1', 'collect-r2', 'dpo-r2', 'collect-r3', 'dpo-r3', 'final']);
  const by = Object.fromEntries(s.stages.map((x) => [x.name, x]));
  assert.deepEqual(by['collect-r1']!.inputs, { prev: { type: 'stage', stage: 'base' }, data: { type: 'dataset', name: 'train' } });
  assert.deepEqual(by['dpo-r1']!.inputs, { model: { type: 'stage', stage: 'base' }, train: { type: 'stage', stage: 'collect-r1' } });
  assert.deepEqual(by['collect-r2']!.inputs.prev, { type: 'stage', stage: 'dpo-r1' });
  assert.deepEqual(by['dpo-r3']!.inputs, { model: { type: 'stage', stage: 'dpo-r2' }, train: { type: 'stage', stage: 'collect-r3' } });
  assert.deepEqual(by.final!.inputs, { model: { type: 'stage', stage: 'dpo-r3' }, first: { type: 'stage', stage: 'dpo-r1' } });
  assert.deepEqual([1, 2, 3].map((k) => (by[`collect-r${k}`]!.config as { steps: number }).steps), [1, 2, 3], '"${round}" alone becomes the number');
  assert.equal((by['dpo-r2']!.config as { tag: string }).tag, 'round 2');
  // the CLI loads the handlers a spec names, inside repeat blocks too
  assert.deepEqual(specKinds(writeFile(env.dir, 'kinds.yaml', spec(2))).sort(), ['count', 'join']);
  // the block's output is another stage when `output:` says so; --set reaches the block's fields
  const o = parseSpec(spec(2).replace('first: rounds-r1', 'first: base').replace('from: base', 'from: base\n      output: collect'), { lookup, sets: ['stages.rounds.repeat.times=1'] });
  assert.deepEqual(o.stages.map((x) => x.name), ['base', 'collect-r1', 'dpo-r1', 'final']);
  assert.deepEqual(o.stages.find((x) => x.name === 'final')!.inputs.model, { type: 'stage', stage: 'collect-r1' });
});

test('repeat: errors name the file, line and field (once, not once per round)', () => {
  const file = `${env.dir}/bad.yaml`;
  const bad = spec(3)
    .replace('first: rounds-r1', 'first: base')
    .replace('config: { tag: "round ${round}" }', 'config: { tagg: "x" }')
    .replace('from: base', 'from: base\n      output: ghost\n      tims: 2');
  const issues = issuesOf(() => parseSpec(bad, { lookup, file }));
  const f = (field: string) => issues.filter((i) => i.field === field);
  assert.equal(f('stages.rounds.repeat.tims').length, 1, JSON.stringify(issues));
  assert.equal(f('stages.rounds.repeat.tims')[0]!.line, 15);
  assert.equal(f('stages.rounds.repeat.tims')[0]!.file, file);
  assert.match(f('stages.rounds.repeat.tims')[0]!.reason, /did you mean "times"/);
  // shape problems stop at pass 1; fix the key and the rest are found
  const issues2 = issuesOf(() => parseSpec(bad.replace('\n      tims: 2', ''), { lookup, file }));
  const g = (field: string) => issues2.filter((i) => i.field === field);
  assert.equal(g('stages.rounds.repeat.output').length, 1, JSON.stringify(issues2));
  assert.match(g('stages.rounds.repeat.output')[0]!.reason, /no stage "ghost" in this repeat block \(its stages: collect, dpo\)/);
  assert.equal(g('stages.rounds.repeat.stages.dpo.config.tagg').length, 1, 'one issue for the template, not one per round');
  assert.equal(g('stages.rounds.repeat.stages.dpo.config.tagg')[0]!.line, 23);
  // a round stage name colliding with a plain stage
  const clash = issuesOf(() => parseSpec(spec(2).replace('  final:', '  dpo-r2:').replace('first: rounds-r1', 'first: base'), { lookup, file }));
  assert.ok(clash.some((i) => /duplicate stage name "dpo-r2"/.test(i.reason)), JSON.stringify(clash));
});

const judge = fileURLToPath(new URL('../fixtures/judges/charsum.mjs', import.meta.url));

const iterative = (times: number, prompts: string) => `name: iterative
seed: 4
model:
  fresh:
    preset: gpt2-micro
    tokenizer: { type: bytes, dataset: prompts }
datasets:
  prompts: ${JSON.stringify(prompts)}
stages:
  rounds:
    repeat:
      times: ${times}
      from: model
      stages:
        collect:
          inputs: { model: previous, prompts: datasets.prompts }
          config: { k: 2, max_new_tokens: 6, max_prompts: 6, batch_size: 6 }
        label:
          inputs: { pairs: collect }
          config: { labeler: rule, judge: ${JSON.stringify(judge)} }
        dpo:
          inputs: { model: previous, train: label }
          config: { max_steps: 2, batch_size: 2, max_length: 32, eval_fraction: 0, lr: 0.001 }
`;

test('repeat: 2 rounds of collect → label → dpo run inline; round 2 descends from round 1; times 3 reuses rounds 1–2', { timeout: 600_000 }, async () => {
  const prompts = writeFile(env.dir, 'prompts.jsonl', Array.from({ length: 6 }, (_, i) => JSON.stringify({ prompt: `q ${i}:` })).join('\n') + '\n');
  const run1 = await submit(env, iterative(2, prompts));
  await driveRun(env, run1);
  const st1 = runStages(env.db, run1);
  assert.equal(getRun(env.db, run1).status, 'succeeded', JSON.stringify(st1.map((s) => [s.name, s.state, s.error])));
  assert.deepEqual(st1.map((s) => s.name), ['model', 'collect-r1', 'label-r1', 'dpo-r1', 'collect-r2', 'label-r2', 'dpo-r2']);
  const modelOf = (stageId: string) => env.db.select().from(stageOutputs).where(eq(stageOutputs.stageId, stageId)).all().find((o) => o.role === 'model')!.artifactId;
  const m1 = modelOf(st1.find((s) => s.name === 'dpo-r1')!.id);
  const m2 = modelOf(st1.find((s) => s.name === 'dpo-r2')!.id);
  const parents = env.db.select().from(lineageEdges).where(eq(lineageEdges.artifactId, m2)).all();
  assert.ok(parents.some((p) => p.inputArtifactId === m1 && p.role === 'base_model'), `round 2's model lineage: ${JSON.stringify(parents)}`);

  const run2 = await submit(env, iterative(3, prompts));
  await driveRun(env, run2);
  const st2 = runStages(env.db, run2);
  assert.equal(getRun(env.db, run2).status, 'succeeded', JSON.stringify(st2.map((s) => [s.name, s.state, s.error])));
  const state = Object.fromEntries(st2.map((s) => [s.name, s.state]));
  for (const n of ['model', 'collect-r1', 'label-r1', 'dpo-r1', 'collect-r2', 'label-r2', 'dpo-r2']) assert.equal(state[n], 'cached', n);
  for (const n of ['collect-r3', 'label-r3', 'dpo-r3']) assert.equal(state[n], 'succeeded', n);
});
