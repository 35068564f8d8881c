// LoRA dropout, as PEFT applies it (peft/tuners/lora/layer.py: lora_B(lora_A(dropout(x))) · α/r):
// unbiased (the mean over masks is the dropout-free branch), off outside training(), dropout 0
// bit-identical, a finite-difference gradient check with a fixed mask, and an SFT stage with dropout
// cancelled and resumed ending byte-identical to an uninterrupted run.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/ml/backend.js';
import { createLlama } from '../../src/ml/models/llama.js';
import { createGpt2 } from '../../src/ml/models/gpt2.js';
import { attachLora, baseView, dropoutSeed, withAdaptersOff, type LoraAdapter } from '../../src/ml/lora.js';
import { saveModelDir } from '../../src/ml/models/io.js';
import { parseSafetensors } from '../../src/ml/safetensors.js';
import { bytesTokenizer } from '../../src/ml/tokenizer/index.js';
import { openDb } from '../../src/store/db.js';
import { createLocalStore } from '../../src/store/artifacts.js';
import { importDataset } from '../../src/data/datasets.js';
import { sftStage, sftConfigSchema, type SftConfig } from '../../src/stages/sft.js';
import type { CheckpointRef, StageContext } from '../../src/stages/contract.js';
import type { ArtifactManifest } from '../../src/store/types.js';
import type { CausalLM } from '../../src/ml/models/types.js';
import { AlignflowError } from '../../src/errors.js';
import { tmpDir } from '../helpers/tmp.js';

before(async () => {
  await initBackend();
});

const tinyLlama = (seed = 1) =>
  createLlama({ model_type: 'llama', vocab_size: 32, hidden_size: 16, intermediate_size: 32, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 32, tie_word_embeddings: true, initializer_range: 0.1 }, seed);

/** Gives every adapter matrix nonzero values (a fresh B is zero, and dropout would then change nothing). */
function randomise(a: LoraAdapter, seed: number): void {
  let i = 0;
  for (const v of a.params.values()) {
    const t = tf.randomNormal(v.shape, 0, 0.3, 'float32', seed + i++);
    v.assign(t);
    t.dispose();
  }
}

const logits = (m: CausalLM, ids: number[][]) => {
  const x = tf.tensor2d(ids, undefined, 'int32');
  const r = m.forward(x);
  const d = r.logits.dataSync().slice();
  tf.dispose([x, r.logits, r.hidden]);
  return d;
};

test('dropout p keeps the LoRA branch unbiased: the mean over 4000 masks is the dropout-free output (fixed seed)', () => {
  const m = tinyLlama(2);
  const p = 0.3;
  const a = attachLora(m, { r: 4, alpha: 8, dropout: p, target_modules: ['q_proj'] }, 3);
  randomise(a, 10);
  const weight = 'model.layers.0.self_attn.q_proj.weight';
  const x = tf.randomNormal([3, 16], 0, 1, 'float32', 21) as tf.Tensor2D;
  const want = tf.tidy(() => a.delta(weight, x)!).dataSync();
  const n = 4000;
  const sum = new Float64Array(want.length);
  const sumSq = new Float64Array(want.length);
  let differs = 0;
  for (let s = 0; s < n; s++) {
    const t = a.training({ seed: 5, step: s, microBatch: 0 }, () => tf.tidy(() => a.delta(weight, x)!));
    const d = t.dataSync() as Float32Array;
    t.dispose();
    for (let i = 0; i < d.length; i++) {
      sum[i] = sum[i]! + d[i]!;
      sumSq[i] = sumSq[i]! + d[i]! ** 2;
      if (d[i] !== want[i]) differs++;
    }
  }
  assert.ok(differs > n * want.length * 0.9, 'dropout changes the branch output');
  let worstZ = 0;
  for (let i = 0; i < want.length; i++) {
    const mean = sum[i]! / n;
    const sd = Math.sqrt(Math.max(sumSq[i]! / n - mean * mean, 1e-12));
    const z = Math.abs(mean - want[i]!) / (sd / Math.sqrt(n));
    worstZ = Math.max(worstZ, z);
  }
  // 48 outputs: a true mean sits within 4.5 standard errors of every one of them (p ≈ 3e-4 otherwise)
  assert.ok(worstZ < 4.5, `mean over masks is off by ${worstZ.toFixed(2)} standard errors`);
  tf.dispose(x);
  a.dispose();
  m.dispose();
});

test('the masks keep a fraction 1 − p of the inputs, scaled by 1/(1 − p), and depend on step, micro-batch and layer', () => {
  const m = tinyLlama(2);
  const p = 0.25;
  const a = attachLora(m, { r: 2, alpha: 2, dropout: p, target_modules: ['q_proj', 'v_proj'] }, 3);
  // r = 2 = alpha: with A = [I 0] and B = I the branch is x[:, :2]: the dropped input itself
  const eye = tf.tidy(() => tf.concat([tf.eye(2), tf.zeros([2, 14])], 1));
  for (const [n, v] of a.params) tf.tidy(() => v.assign(n.includes('lora_A') ? eye : tf.eye(v.shape[0]!, v.shape[1]!)));
  const x = tf.ones([4000, 16]) as tf.Tensor2D;
  const masks = (step: number, microBatch: number, w: string) => {
    const t = a.training({ seed: 9, step, microBatch }, () => tf.tidy(() => tf.slice(a.delta(w, x)!, [0, 0], [4000, 2])));
    const d = t.dataSync();
    t.dispose();
    return d;
  };
  const q = 'model.layers.0.self_attn.q_proj.weight';
  const m0 = masks(0, 0, q);
  const kept = m0.filter((v) => v !== 0);
  assert.ok(kept.every((v) => Math.abs(v - 1 / (1 - p)) < 1e-6), 'kept inputs are scaled by 1/(1−p)');
  assert.ok(Math.abs(kept.length / m0.length - (1 - p)) < 0.02, `kept ${kept.length / m0.length}`);
  assert.deepEqual(masks(0, 0, q), m0, 'the same (seed, step, micro-batch, layer) draws the same mask');
  for (const other of [masks(1, 0, q), masks(0, 1, q), masks(0, 0, 'model.layers.1.self_attn.v_proj.weight')]) assert.notDeepEqual(other, m0);
  assert.notEqual(dropoutSeed({ seed: 9, step: 0, microBatch: 0 }, 0, 0), dropoutSeed({ seed: 10, step: 0, microBatch: 0 }, 0, 0));
  tf.dispose([eye, x]);
  a.dispose();
  m.dispose();
});

test('dropout is off outside training(): evaluation, the adapters-off reference and generation see the dropout-free model; dropout 0 is bit-identical', () => {
  const ids = [[3, 9, 4, 17, 8, 2], [1, 2, 3, 4, 5, 6]];
  for (const make of [() => tinyLlama(4), () => createGpt2({ vocab_size: 32, n_positions: 16, n_embd: 16, n_layer: 2, n_head: 2 }, 1)]) {
    const m0 = make();
    const a0 = attachLora(m0, { r: 4, alpha: 8, dropout: 0, target_modules: 'all-linear' }, 7);
    randomise(a0, 30);
    const plain = logits(m0, ids);
    assert.deepEqual(a0.training({ seed: 1, step: 0, microBatch: 0 }, () => logits(m0, ids)), plain, 'dropout 0: bit-identical');

    const m = make();
    const a = attachLora(m, { r: 4, alpha: 8, dropout: 0.5, target_modules: 'all-linear' }, 7);
    randomise(a, 30);
    const base = withAdaptersOff(m, () => logits(m, ids));
    assert.deepEqual(logits(m, ids), plain, 'outside training(): no dropout');
    const at = { seed: 1, step: 0, microBatch: 0 };
    const dropped = a.training(at, () => logits(m, ids));
    assert.notDeepEqual(dropped, plain, 'inside training(): dropout');
    const n0 = tf.memory().numTensors;
    assert.deepEqual(a.training(at, () => logits(m, ids)), dropped, 'one position in the run, one mask');
    assert.equal(tf.memory().numTensors, n0, 'no tensor leaks');
    const ref = baseView(m);
    assert.deepEqual(a.training(at, () => logits(ref, ids)), base, 'the DPO reference (adapters off) has no dropout');
    assert.deepEqual(logits(m, ids), plain, 'dropout is off again after training()');
    for (const x of [a0, a]) x.dispose();
    m0.dispose();
    m.dispose();
  }
});

test('gradient check with a fixed mask: ∂/∂A, ∂/∂B and ∂/∂x of the dropped-out branch match central differences', () => {
  const m = tinyLlama(5);
  const a = attachLora(m, { r: 3, alpha: 6, dropout: 0.4, target_modules: ['up_proj'] }, 3);
  randomise(a, 40);
  const w = 'model.layers.1.mlp.up_proj.weight';
  const at = { seed: 2, step: 7, microBatch: 1 };
  const { a: A, b: B } = a.pairs.get(w)!;
  const x0 = tf.randomNormal([5, 16], 0, 1, 'float32', 8);
  // f = Σ tanh(branch)·c: nonlinear, so the check sees more than a bilinear form
  const c = tf.randomNormal([5, 32], 0, 1, 'float32', 9);
  const f = (x: tf.Tensor) => a.training(at, () => tf.tidy(() => tf.sum(tf.mul(tf.tanh(a.delta(w, x as tf.Tensor2D)!), c)))) as tf.Scalar;
  const g = tf.variableGrads(() => f(x0), [A!, B!]);
  const gx = tf.grad((x: tf.Tensor) => f(x))(x0);
  const fd = (v: tf.Variable | null, i: number) => {
    const eps = 1e-2;
    const target = v ?? tf.variable(x0.clone());
    const orig = target.dataSync().slice();
    const at = (d: number) => {
      const t = orig.slice();
      t[i]! += d;
      const tt = tf.tensor(t, target.shape);
      target.assign(tt);
      tt.dispose();
      const r = f(v ? x0 : target).dataSync()[0]!;
      return r;
    };
    const r = (at(eps) - at(-eps)) / (2 * eps);
    const o = tf.tensor(orig, target.shape);
    target.assign(o);
    o.dispose();
    if (!v) target.dispose();
    return r;
  };
  const check = (analytic: Float32Array | Int32Array | Uint8Array, v: tf.Variable | null, label: string) => {
    let zerosSeen = 0;
    for (let i = 0; i < analytic.length; i += Math.max(1, Math.floor(analytic.length / 24))) {
      const num = fd(v, i);
      if (analytic[i] === 0) zerosSeen++;
      assert.ok(Math.abs(num - analytic[i]!) < 2e-3 + 2e-3 * Math.abs(num), `${label}[${i}]: analytic ${analytic[i]} vs numeric ${num}`);
    }
    return zerosSeen;
  };
  check(g.grads[A!.name]!.dataSync(), A!, 'dA');
  check(g.grads[B!.name]!.dataSync(), B!, 'dB');
  // ∂/∂x is zero exactly where the mask dropped the input
  const gxd = gx.dataSync();
  const dropped = gxd.filter((v) => v === 0).length;
  assert.ok(dropped > 0.2 * gxd.length && dropped < 0.6 * gxd.length, `dropped ${dropped}/${gxd.length}`);
  check(gxd, null, 'dx');
  tf.dispose([x0, c, gx, ...Object.values(g.grads), g.value]);
  a.dispose();
  m.dispose();
});

// --- the SFT stage with LoRA dropout: resumed from a checkpoint, byte-identical to an uninterrupted run
const home = tmpDir();
const db = openDb(path.join(home, 'state.db'));
const store = createLocalStore(db, home);
let trainData: ArtifactManifest;
let baseModel: ArtifactManifest;

/** A dataset and a tiny GPT-2 base in the store (in the test, not at import: the tests above run meanwhile). */
async function stageInputs(): Promise<void> {
  const dataFile = path.join(home, 'sft-small.jsonl');
  fs.writeFileSync(dataFile, fs.readFileSync('datasets/sentiment/sft.jsonl', 'utf8').split('\n').slice(0, 32).join('\n') + '\n');
  trainData = (await importDataset(db, store, dataFile, { name: 'sft-small' })).artifact;
  const tok = bytesTokenizer({ modelMaxLength: 64 });
  const baseDir = path.join(home, 'base-model');
  const base = createGpt2({ vocab_size: 260, n_positions: 64, n_embd: 16, n_layer: 1, n_head: 2, eos_token_id: tok.eosTokenId, bos_token_id: tok.eosTokenId }, 4);
  saveModelDir(base, tok, baseDir);
  base.dispose();
  baseModel = await store.put({ kind: 'model', name: 'base', files: fs.readdirSync(baseDir).map((f) => ({ path: f, sourceFile: path.join(baseDir, f) })) });
}

function context(config: SftConfig, checkpoints: CheckpointRef[], signal?: AbortSignal, onStep?: (s: number) => void): StageContext<SftConfig> {
  return {
    runId: 'r-test',
    stageId: 's-test',
    stageName: 'sft',
    kind: 'sft',
    config,
    inputs: { model: baseModel, train: trainData },
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
    metrics: () => undefined,
    log: { debug() {}, info() {}, warn() {}, error() {} },
    signal: signal ?? new AbortController().signal,
  };
}

const sftConfig = (dropout: number) =>
  sftConfigSchema.parse({ max_steps: 6, batch_size: 4, grad_accum: 2, lr: 1e-2, checkpoint_every: 2, max_length: 64, lora: { r: 4, alpha: 8, dropout, target_modules: ['c_attn', 'c_fc'] } });
const adapterBytes = async (out: unknown) => store.readFile((out as { outputs: Record<string, ArtifactManifest> }).outputs.model!.id, 'adapter_model.safetensors');

test('an sft stage with LoRA dropout cancelled at step 3 and resumed ends byte-identical to an uninterrupted run', async () => {
  await stageInputs();
  const full = await sftStage.run(context(sftConfig(0.1), []));
  assert.equal(full.status, 'done');
  const want = await adapterBytes(full);
  const noDropout = await adapterBytes(await sftStage.run(context(sftConfig(0), [])));
  assert.ok(!want.equals(noDropout), 'dropout 0.1 trains different adapters than dropout 0');
  assert.ok((await adapterBytes(await sftStage.run(context(sftConfig(0.1), [])))).equals(want), 'two uninterrupted runs agree');

  const ckpts: CheckpointRef[] = [];
  const ctl = new AbortController();
  const err = await sftStage.run(context(sftConfig(0.1), ckpts, ctl.signal, (s) => void (s === 3 && ctl.abort()))).catch((e) => e);
  assert.ok(err instanceof AlignflowError && err.kind === 'cancelled', String(err));
  assert.deepEqual(ckpts.map((c) => c.step), [2, 3]);
  const seen: number[] = [];
  const again = await sftStage.run(context(sftConfig(0.1), ckpts, undefined, (s) => void seen.push(s)));
  assert.deepEqual(seen, [4, 5, 6]);
  assert.ok((await adapterBytes(again)).equals(want), 'resumed adapters differ from the uninterrupted run');
  const cfg = JSON.parse((await store.readFile((again as { outputs: Record<string, ArtifactManifest> }).outputs.model!.id, 'adapter_config.json')).toString('utf8'));
  assert.equal(cfg.lora_dropout, 0.1);
});

test("a LoRA run's every checkpoint carries the adapter of its own step, not the first checkpoint's", async () => {
  const ckpts: CheckpointRef[] = [];
  const out = await sftStage.run(context(sftConfig(0.1), ckpts));
  assert.deepEqual(ckpts.map((c) => c.step), [2, 4, 6]);
  const adapters = await Promise.all(ckpts.map((c) => store.readFile(c.artifact.id, 'adapter_model.safetensors')));
  assert.ok(!adapters[0]!.equals(adapters[1]!), 'steps 2 and 4 hold different adapters');
  assert.ok(adapters[2]!.equals(await adapterBytes(out)), "the last checkpoint's adapter is the output's");
  // only the adapters are checkpointed: the trained tensors and their AdamW moments are LoRA A/B
  // matrices (the adapter file's tensors, no more), and no file holds the base's weights
  const peftNames = [...parseSafetensors(adapters[2]!).tensors.keys()].sort();
  const base = await store.get(baseModel.id);
  const baseWeights = base.files.find((f) => f.path === 'model.safetensors')!;
  for (const c of ckpts) {
    const m = await store.get(c.artifact.id);
    const trained = [...parseSafetensors(await store.readFile(c.artifact.id, 'model.safetensors')).tensors.keys()];
    assert.equal(trained.length, peftNames.length, `step ${c.step}: ${trained.join(', ')}`);
    assert.ok(trained.every((n) => /lora_[AB]/.test(n)), `step ${c.step}: only LoRA tensors, got ${trained.join(', ')}`);
    const moments = [...parseSafetensors(await store.readFile(c.artifact.id, 'optimizer.safetensors')).tensors.keys()];
    assert.equal(moments.length, 2 * trained.length);
    assert.ok(moments.every((n) => /lora_[AB]/.test(n)), moments.join(', '));
    assert.ok(!m.files.some((f) => f.sha256 === baseWeights.sha256), `step ${c.step} stores the base weights`);
    const ckptWeights = m.files.find((f) => f.path === 'model.safetensors')!;
    assert.ok(ckptWeights.sizeBytes < baseWeights.sizeBytes / 2, `checkpoint weights ${ckptWeights.sizeBytes} B vs base ${baseWeights.sizeBytes} B`);
  }
});
