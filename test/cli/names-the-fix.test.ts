// A CLI that names the fix: spec errors say what was meant, and model references that cannot
// work (a Hub id, PyTorch-only weights) say what to do instead.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { tmpDir } from '../helpers/tmp.js';
import { parseSpec } from '../../src/config/spec.js';
import { getStage, loadStages } from '../../src/stages/index.js';
import { AlignflowError } from '../../src/errors.js';
import { closest, editDistance } from '../../src/config/suggest.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const samples = path.join(root, 'datasets', 'samples');
const dir = tmpDir();
const home = path.join(dir, 'home');

before(async () => {
  await loadStages(['sft', 'dpo', 'reward', 'collect']);
});

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', import.meta.resolve('tsx'), path.join(root, 'src/cli/main.ts'), ...args], {
    cwd: dir,
    env: { ...process.env, ALIGNFLOW_HOME: home, ALIGNFLOW_REDIS_URL: '' },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function issuesOf(yaml: string): { line?: number; field?: string; reason: string }[] {
  const file = path.join(dir, `s-${Math.random().toString(36).slice(2)}.yaml`);
  fs.writeFileSync(file, yaml);
  try {
    parseSpec(yaml, { file, lookup: getStage });
  } catch (err) {
    assert.ok(err instanceof AlignflowError, String(err));
    return err.issues;
  }
  assert.fail('the spec was accepted');
}

const modelDir = path.join(dir, 'model');
fs.mkdirSync(modelDir);
fs.writeFileSync(path.join(modelDir, 'model.safetensors'), '');

test('unknown fields get a did-you-mean; TRL and transformers names point to ours', () => {
  const issues = issuesOf(`
name: t
model: ${modelDir}
datasets: { sft: ${samples}/sft-prompt-completion.jsonl, prefs: ${samples}/preference-explicit.jsonl }
stages:
  sft:
    inputs: { model: model, train: datasets.sft }
    config: { max_step: 3, learning_rate: 0.1, num_train_epochs: 2, per_device_train_batch_size: 4, gradient_accumulation_steps: 2 }
  dpo:
    inputs: { model: sft, train: datasets.prefs }
    config: { loss_type: sigmoid, bta: 0.2 }
`);
  const by = Object.fromEntries(issues.map((i) => [i.field, i.reason]));
  assert.match(by['stages.sft.config.max_step']!, /did you mean "max_steps"\?/);
  assert.match(by['stages.sft.config.learning_rate']!, /TRL's name; alignflow calls it "lr"/);
  assert.match(by['stages.sft.config.num_train_epochs']!, /calls it "epochs"/);
  assert.match(by['stages.sft.config.per_device_train_batch_size']!, /calls it "batch_size"/);
  assert.match(by['stages.sft.config.gradient_accumulation_steps']!, /calls it "grad_accum"/);
  assert.match(by['stages.dpo.config.loss_type']!, /calls it "loss"/);
  assert.match(by['stages.dpo.config.bta']!, /did you mean "beta"\?/);
  // The spec's own blocks too.
  const top = issuesOf(`name: t\nstage: {}\nstages: { a: { kind: sft, inptus: {} } }\n`);
  assert.ok(top.some((i) => i.field === 'stage' && /did you mean "stages"\?/.test(i.reason)));
  assert.ok(top.some((i) => i.field === 'stages.a.inptus' && /did you mean "inputs"\?/.test(i.reason)));
  assert.equal(editDistance('max_step', 'max_steps'), 1);
  assert.equal(closest('zzzz', ['beta', 'lr']), undefined, 'no far-fetched suggestion');
});

test('an unknown stage kind lists the valid kinds', () => {
  const [i] = issuesOf(`name: t\nstages: { a: { kind: dpoo } }\n`);
  assert.match(i!.reason, /unknown stage kind "dpoo"; did you mean "dpo"\? \(stage kinds: .*collect.*dpo.*eval.*reward.*sft/);
});

test('a dataset of the wrong kind for a stage input is refused when the spec is validated', () => {
  const issues = issuesOf(`
name: t
model: ${modelDir}
datasets: { prefs: ${samples}/preference-explicit.jsonl, prompts: ${samples}/prompts.jsonl }
stages:
  sft: { inputs: { model: model, train: datasets.prefs } }
  rm: { kind: reward, inputs: { model: sft, train: datasets.prompts } }
  ok: { kind: collect, inputs: { model: sft, prompts: datasets.prefs } }
`);
  assert.deepEqual(issues.map((i) => [i.field, i.line]), [['stages.sft.inputs.train', 6], ['stages.rm.inputs.train', 7]]);
  assert.match(issues[0]!.reason, /"train" input needs a sft dataset, but this one is preference \(explicit-prompt\)/);
  assert.match(issues[1]!.reason, /needs a preference dataset, but this one is prompt \(prompt-only\)/);
});

test('models: a Hub id is explained, a PyTorch-only directory says how to convert, a name resolves', async () => {
  const hub = issuesOf(`name: t\nmodel: openai-community/gpt2\nstages: { a: { kind: sft } }\n`);
  assert.match(hub[0]!.reason, /does not download models from the Hugging Face Hub.*huggingface-cli download openai-community\/gpt2 --local-dir \.\/gpt2/);
  const torch = path.join(dir, 'torch');
  fs.mkdirSync(torch);
  fs.writeFileSync(path.join(torch, 'pytorch_model.bin'), '');
  const pt = issuesOf(`name: t\nmodel: ${torch}\nstages: { a: { kind: sft } }\n`);
  assert.match(pt[0]!.reason, /has pytorch_model\.bin but no model\.safetensors: alignflow reads safetensors weights only.*save_pretrained\(d, safe_serialization=True\)/);
  const named = parseSpec(`name: t\nmodel: my-sft\nstages: { a: { kind: sft, inputs: { model: model } } }\n`, {
    file: path.join(dir, 'named.yaml'),
    lookup: getStage,
    resolveModel: (n) => (n === 'my-sft' ? 'a-0123456789abcdef' : undefined),
  });
  assert.deepEqual(named.model, { type: 'artifact', id: 'a-0123456789abcdef' });

  const gen = cli('generate', '--model', 'gpt2', '--prompt', 'hi');
  assert.equal(gen.code, 2, gen.err);
  assert.match(gen.err, /^error: model directory .*gpt2 does not exist, and "gpt2" is not the name of an imported model\. alignflow does not download/);
  const genPt = cli('generate', '--model', torch, '--prompt', 'hi');
  assert.match(genPt.err, /has pytorch_model\.bin but no model\.safetensors/);
  const imp = cli('models', 'import', torch);
  assert.equal(imp.code, 2);
  assert.match(imp.err, /has pytorch_model\.bin but no model\.safetensors: alignflow reads safetensors weights only/);
});

test('a missing spec file is one clean line', () => {
  const r = cli('run', 'nope.yaml');
  assert.equal(r.code, 2);
  assert.equal(r.err, 'error: pipeline spec nope.yaml does not exist\n');
});
