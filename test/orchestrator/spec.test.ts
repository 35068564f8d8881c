import test from 'node:test';
import assert from 'node:assert/strict';
import { setup, lookup, writeFile, issuesOf } from './helpers.js';
import { loadSpecFile, parseSpec } from '../../src/config/spec.js';

const env = await setup();
writeFile(env.dir, 'data/train.jsonl', '{"text":"x"}\n');

const good = `name: demo
seed: 5
datasets:
  train: data/train.jsonl
stages:
  - name: first
    kind: count
    inputs: { data: datasets.train }
    config: { steps: 3 }
  - name: second
    kind: count
    inputs: { prev: first }
    config: { steps: 2 }
`;


test('a valid spec: relative dataset paths, defaults applied, topological order', () => {
  const file = writeFile(env.dir, 'p/good.yaml', good.replace('data/train.jsonl', '../data/train.jsonl'));
  const s = loadSpecFile(file, { lookup });
  assert.equal(s.datasets.train!.path, `${env.dir}/data/train.jsonl`);
  assert.deepEqual(s.stages.map((x) => x.name), ['first', 'second']);
  assert.equal((s.stages[0]!.config as { step_ms: number }).step_ms, 20, 'handler defaults filled in');
  assert.deepEqual(s.stages[1]!.inputs, { prev: { type: 'stage', stage: 'first' } });
});

test('every bad field is reported with its line, in one go', () => {
  const bad = `name: demo
datasets:
  train: missing.jsonl
stages:
  - name: first
    kind: count
    inputs: { data: datasets.nope }
    config: { steps: -1, stepz: 3 }
  - name: second
    kind: nosuchkind
    inputs: { prev: ghost }
  - name: first
    kind: count
`;
  const issues = issuesOf(() => parseSpec(bad, { file: `${env.dir}/bad.yaml`, lookup }));
  const by = (f: string) => issues.find((i) => i.field === f);
  assert.equal(by('datasets.train')?.line, 3);
  assert.match(by('datasets.train')!.reason, /does not exist/);
  assert.equal(by('stages.0.config.steps')?.line, 8);
  assert.equal(by('stages.0.config.stepz')?.line, 8);
  assert.match(by('stages.0.config.stepz')!.reason, /unknown field/);
  assert.equal(by('stages.0.inputs.data')?.line, 7);
  assert.equal(by('stages.1.kind')?.line, 10);
  assert.equal(by('stages.1.inputs.prev')?.line, 11);
  assert.ok(issues.some((i) => /duplicate stage name "first"/.test(i.reason)));
  assert.ok(issues.every((i) => i.file === `${env.dir}/bad.yaml`));
});

test('shape errors, cycles, YAML syntax errors', () => {
  const shape = issuesOf(() => parseSpec('name: 3\nstages: []\nextra: 1\n', { lookup }));
  assert.deepEqual(shape.map((i) => [i.field, i.line]), [['name', 1], ['stages', 2], ['extra', 3]]);
  const cyc = `name: c
stages:
  a: { kind: count, inputs: { x: b } }
  b: { kind: count, inputs: { x: a } }
`;
  assert.match(issuesOf(() => parseSpec(cyc, { lookup }))[0]!.reason, /cycle: a → b/);
  const syn = issuesOf(() => parseSpec('name: x\nstages: [\n', { lookup }));
  assert.ok(syn[0]!.line !== undefined);
});

test('--set: dot paths, YAML-typed values, stages by name in lists and maps, and the config shorthand', () => {
  const file = writeFile(env.dir, 'good.yaml', good);
  const s = loadSpecFile(file, { lookup, sets: ['stages.first.config.steps=7', 'stages.second.steps=9', 'seed=11', 'stages.second.salt=[1, two]'] });
  assert.equal(s.seed, 11);
  assert.equal((s.stages[0]!.config as { steps: number }).steps, 7);
  assert.equal((s.stages[1]!.config as { steps: number }).steps, 9);
  assert.deepEqual((s.stages[1]!.config as { salt: unknown }).salt, [1, 'two']);
  const mapForm = `name: m
stages:
  dpo: { kind: count, config: { steps: 1 } }
`;
  const m = parseSpec(mapForm, { lookup, sets: ['stages.dpo.steps=4'] });
  assert.equal((m.stages[0]!.config as { steps: number }).steps, 4);
  assert.equal(m.stages[0]!.kind, 'count');
  // A --set that makes the spec invalid is refused like any other bad field.
  const issues = issuesOf(() => loadSpecFile(file, { lookup, sets: ['stages.first.steps=zero'] }));
  assert.equal(issues[0]!.field, 'stages.0.config.steps');
  assert.throws(() => loadSpecFile(file, { lookup, sets: ['stages.ghost.steps=1'] }), /no stage named "ghost"/);
  assert.throws(() => loadSpecFile(file, { lookup, sets: ['nonsense'] }), /KEY=VALUE/);
});

test('the model section: artifact id, directory, or a fresh model needing model_init', () => {
  const s = parseSpec(`name: m\nmodel: a-0123456789abcdef\nstages:\n  s: { kind: count, inputs: { model: model } }\n`, { lookup });
  assert.deepEqual(s.model, { type: 'artifact', id: 'a-0123456789abcdef' });
  assert.deepEqual(s.stages[0]!.inputs.model, { type: 'model' });
  const noModel = issuesOf(() => parseSpec(`name: m\nstages:\n  s: { kind: count, inputs: { model: model } }\n`, { lookup }));
  assert.match(noModel[0]!.reason, /no base model/);
  const dir = issuesOf(() => parseSpec(`name: m\nmodel: { path: ./nowhere }\nstages:\n  s: { kind: count }\n`, { lookup, file: `${env.dir}/x.yaml` }));
  assert.match(dir[0]!.reason, /model directory .* does not exist/);
});
