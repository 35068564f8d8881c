// The SFT stage handler against a real SQLite-backed artifact store: output model artifact, metrics,
// checkpoints through the context, and an interrupted stage resumed from ctx.latestCheckpoint()
// ending with byte-identical weights.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { openDb } from '../../src/store/db.js';
import { createLocalStore } from '../../src/store/artifacts.js';
import { importDataset } from '../../src/data/datasets.js';
import { createGpt2 } from '../../src/ml/models/gpt2.js';
import { saveModelDir, loadModelDir } from '../../src/ml/models/io.js';
import { bytesTokenizer } from '../../src/ml/tokenizer/index.js';
import { sftStage, sftConfigSchema, type SftConfig } from '../../src/stages/sft.js';
import type { CheckpointRef, StageContext } from '../../src/stages/contract.js';
import type { ArtifactManifest } from '../../src/store/types.js';
import { AlignflowError } from '../../src/errors.js';
import { tmpDir } from '../helpers/tmp.js';
import { backend } from './train-fixtures.js';

await backend();

const home = tmpDir();
const db = openDb(path.join(home, 'state.db'));
const store = createLocalStore(db, home);
const dataFile = path.join(home, 'sft-small.jsonl');
fs.writeFileSync(dataFile, fs.readFileSync('datasets/sentiment/sft.jsonl', 'utf8').split('\n').slice(0, 48).join('\n') + '\n');
const train = (await importDataset(db, store, dataFile, { name: 'sft-small' })).artifact;

const tok = bytesTokenizer({ modelMaxLength: 64 });
const base = createGpt2({ vocab_size: 260, n_positions: 64, n_embd: 16, n_layer: 1, n_head: 2, eos_token_id: tok.eosTokenId, bos_token_id: tok.eosTokenId }, 4);
const baseDir = path.join(home, 'base-model');
saveModelDir(base, tok, baseDir);
base.dispose();
const baseModel = await store.put({ kind: 'model', name: 'base', files: fs.readdirSync(baseDir).map((f) => ({ path: f, sourceFile: path.join(baseDir, f) })) });

function context(config: SftConfig, checkpoints: CheckpointRef[], signal?: AbortSignal, onStep?: (s: number) => void) {
  const metrics: { step: number; values: Record<string, number> }[] = [];
  const ctx: StageContext<SftConfig> = {
    runId: 'r-test',
    stageId: 's-test',
    stageName: 'sft',
    kind: 'sft',
    config,
    inputs: { model: baseModel, train },
    store,
    workDir: fs.mkdtempSync(path.join(home, 'work-')),
    seed: 42,
    latestCheckpoint: async () => checkpoints.at(-1),
    saveCheckpoint: async (step, artifact) => {
      const ref = { step, artifact: await store.put(artifact) };
      checkpoints.push(ref);
      return ref;
    },
    progress: (p) => onStep?.(p.step),
    metrics: (step, values) => void metrics.push({ step, values }),
    log: { debug() {}, info() {}, warn() {}, error() {} },
    signal: signal ?? new AbortController().signal,
  };
  return { ctx, metrics };
}

const config = sftConfigSchema.parse({ max_steps: 6, batch_size: 4, grad_accum: 2, lr: 3e-3, schedule: 'cosine', warmup_steps: 2, checkpoint_every: 2, eval_fraction: 0.2, eval_every: 3, max_length: 64, weight_decay: 0.01 });

const modelBytes = async (m: ArtifactManifest) => store.readFile(m.id, 'model.safetensors');

test('the sft stage trains, reports TRL-named metrics, checkpoints, and outputs an HF model artifact', async () => {
  const ckpts: CheckpointRef[] = [];
  const { ctx, metrics } = context(config, ckpts);
  const out = await sftStage.run(ctx);
  assert.equal(out.status, 'done');
  if (out.status !== 'done') return;
  const m = out.outputs.model!;
  assert.equal(m.kind, 'model');
  assert.deepEqual(m.files.map((f) => f.path).sort(), ['config.json', 'generation_config.json', 'model.safetensors', 'special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json']);
  assert.deepEqual(ckpts.map((c) => c.step), [2, 4, 6]);
  assert.ok(ckpts[0]!.artifact.files.some((f) => f.path === 'optimizer.safetensors'));
  const names = new Set(metrics.flatMap((x) => Object.keys(x.values)));
  for (const n of ['loss', 'grad_norm', 'learning_rate', 'epoch', 'perplexity', 'eval_loss', 'eval_perplexity']) assert.ok(names.has(n), `metric ${n}`);
  // the output loads as a model directory
  const dir = await store.materialize(m.id, path.join(home, 'out-check'));
  const loaded = await loadModelDir(dir, { requireTokenizer: true });
  loaded.model.dispose();
  const s = out.summary as { steps: number; eval_start: { eval_loss: number }; eval: { eval_loss: number } };
  assert.equal(s.steps, 6);
  assert.ok(s.eval.eval_loss < s.eval_start.eval_loss, `eval loss ${s.eval_start.eval_loss} → ${s.eval.eval_loss}`);
});

test('an sft stage cancelled at step 3 and run again resumes from its checkpoint, byte-identical', async () => {
  const full = await sftStage.run(context(config, []).ctx);
  assert.equal(full.status, 'done');
  const want = await modelBytes((full as { outputs: Record<string, ArtifactManifest> }).outputs.model!);

  const ckpts: CheckpointRef[] = [];
  const ctl = new AbortController();
  const err = await sftStage.run(context(config, ckpts, ctl.signal, (s) => void (s === 3 && ctl.abort())).ctx).catch((e) => e);
  assert.ok(err instanceof AlignflowError && err.kind === 'cancelled', String(err));
  assert.deepEqual(ckpts.map((c) => c.step), [2, 3]);
  const seen: number[] = [];
  const again = await sftStage.run(context(config, ckpts, undefined, (s) => void seen.push(s)).ctx);
  assert.deepEqual(seen, [4, 5, 6], 'the second attempt must continue after step 3, not start over');
  assert.equal(again.status, 'done');
  const got = await modelBytes((again as { outputs: Record<string, ArtifactManifest> }).outputs.model!);
  assert.ok(got.equals(want), 'resumed weights differ from the uninterrupted run');
  // the loss before training survives the interruption (eval history travels in the checkpoint)
  type Summary = { eval_start: { eval_loss: number }; eval: { eval_loss: number } };
  const s1 = (full as unknown as { summary: Summary }).summary;
  const s2 = (again as unknown as { summary: Summary }).summary;
  assert.equal(s2.eval_start.eval_loss, s1.eval_start.eval_loss);
  assert.equal(s2.eval.eval_loss, s1.eval.eval_loss);
});

test('bad sft configs and inputs are refused with clear errors', async () => {
  assert.equal(sftConfigSchema.safeParse({ batch_size: 0 }).success, false);
  assert.equal(sftConfigSchema.safeParse({ lr: -1 }).success, false);
  assert.equal(sftConfigSchema.safeParse({ learning_rate: 1e-3 }).success, false); // unknown key
  const { ctx } = context(config, []);
  ctx.inputs = { train };
  await assert.rejects(sftStage.run(ctx), /needs a "model" input/);
  ctx.inputs = { model: train, train };
  await assert.rejects(sftStage.run(ctx), /not a model/);
});
