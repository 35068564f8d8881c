// LoRA: fresh adapters change nothing; DPO with adapters starts at ln 2 against the base model with
// adapters off (no second copy of the weights); LoRA SFT of a tiny Llama lowers held-out loss while the
// base weights stay bit-identical; PEFT-named export, merge, and reload.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/ml/backend.js';
import { createLlama } from '../../src/ml/models/llama.js';
import { createGpt2 } from '../../src/ml/models/gpt2.js';
import { attachLora, loadAdapterDir, mergedTensors, peftTensorName, targetLayers, withAdaptersOff, writeAdapterFiles } from '../../src/ml/lora.js';
import { train, evaluateLoss } from '../../src/ml/train/loop.js';
import { causalLmLoss } from '../../src/ml/train/lm-loss.js';
import { ExampleBatches, sequentialBatches, type Example } from '../../src/ml/train/data.js';
import { preparePairs, PairBatches, sequentialPairBatches } from '../../src/ml/preference-data.js';
import { computeRefLogps, dpoLossFn } from '../../src/ml/dpo.js';
import { Rng } from '../../src/ml/train/rng.js';
import { toyPairs, PAD } from './dpo-toy-data.js';
import type { CausalLM } from '../../src/ml/models/types.js';

before(async () => {
  await initBackend();
});

const tinyLlama = (seed = 1, vocab = 32) =>
  createLlama({ model_type: 'llama', vocab_size: vocab, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 64, tie_word_embeddings: true, initializer_range: 0.1 }, seed);

const logits = (m: CausalLM, ids: number[][]) => {
  const r = m.forward(tf.tensor2d(ids, undefined, 'int32'));
  const d = r.logits.dataSync().slice();
  tf.dispose([r.logits, r.hidden]);
  return d;
};

test('fresh adapters (B = 0) give exactly the base model\'s outputs (llama and gpt2)', () => {
  const ids = [[3, 9, 4, 17, 8], [1, 2, 3, 4, 5]];
  for (const m of [tinyLlama(), createGpt2({ vocab_size: 32, n_positions: 16, n_embd: 16, n_layer: 2, n_head: 2 }, 1)] as CausalLM[]) {
    const base = logits(m, ids);
    const a = attachLora(m, { r: 4, alpha: 8, target_modules: 'all-linear' }, 7);
    assert.deepEqual(logits(m, ids), base);
    // a non-zero B changes them; switched off, the base comes back exactly
    for (const v of a.params.values()) if (v.name.includes('lora_B')) v.assign(tf.fill(v.shape, 0.05));
    const changed = logits(m, ids);
    assert.notDeepEqual(changed, base);
    assert.deepEqual(withAdaptersOff(m, () => logits(m, ids)), base);
    a.dispose();
    m.dispose();
  }
});

test('target_modules selects PEFT module names; an unknown name is a config error naming the choices', () => {
  const m = tinyLlama();
  assert.deepEqual([...new Set(targetLayers(m, ['q_proj', 'v_proj']).map((l) => l.weight.split('.').slice(-2, -1)[0]))], ['q_proj', 'v_proj']);
  assert.equal(targetLayers(m, 'all-linear').length, 2 * 7);
  assert.throws(() => targetLayers(m, ['c_attn']), /"c_attn" is not a linear layer of this llama model \(it has q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj\)/);
  const g = createGpt2({ vocab_size: 32, n_positions: 16, n_embd: 16, n_layer: 1, n_head: 2 }, 1);
  assert.equal(targetLayers(g, ['c_attn', 'c_proj']).length, 3); // attn.c_proj and mlp.c_proj, as PEFT matches
  m.dispose();
  g.dispose();
});

test('LoRA DPO: the first step\'s loss is ln 2 against the base model with adapters off, and no second weight copy exists', async () => {
  const policy = tinyLlama(2);
  const adapter = attachLora(policy, { r: 4, alpha: 8, target_modules: ['q_proj', 'v_proj', 'o_proj', 'up_proj'] }, 3);
  const { pairs } = preparePairs(toyPairs(64, 11), { maxLength: 32 });
  const before = tf.memory();
  const ref = await withAdaptersOff(policy, () => computeRefLogps(policy, pairs, { batchSize: 16, padId: PAD }));
  const after = tf.memory();
  assert.equal(after.numTensors, before.numTensors, 'computing the reference made no tensors (no reference model)');
  assert.equal(after.numBytes, before.numBytes);
  const baseBefore = new Map([...policy.params].map(([n, v]) => [n, v.dataSync().slice()]));
  const losses: number[] = [];
  const res = await train({
    params: adapter.params,
    lossFn: dpoLossFn(policy, { beta: 0.1, losses: ['sigmoid'] }, ref),
    data: new PairBatches(pairs, 8, 2, PAD, 5),
    maxSteps: 30,
    schedule: { lr: 1e-2, kind: 'constant', warmupSteps: 0 },
    onMetrics: (_s, m) => losses.push(m.loss!),
  });
  assert.ok(Math.abs(losses[0]! - Math.LN2) < 1e-6, `first loss ${losses[0]}`);
  assert.ok(losses.at(-1)! < losses[0]! - 0.05, `loss ${losses[0]} → ${losses.at(-1)}`);
  assert.equal(res.step, 30);
  for (const [n, v] of policy.params) assert.deepEqual(v.dataSync(), baseBefore.get(n), `${n} is frozen`);
  const evalRes = await evaluateLoss(sequentialPairBatches(pairs, 32, PAD), dpoLossFn(policy, { beta: 0.1, losses: ['sigmoid'] }, ref));
  assert.ok(evalRes.loss < Math.LN2);
  adapter.dispose();
  policy.dispose();
});

/** A learnable toy language: each sequence counts up by a per-sequence step modulo the vocabulary. */
function countingExamples(n: number, seed: number, vocab: number): Example[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => {
    const start = 1 + Math.floor(rng.next() * (vocab - 1));
    const step = 1 + Math.floor(rng.next() * 3);
    const ids = Array.from({ length: 12 }, (_, i) => 1 + ((start - 1 + i * step) % (vocab - 1)));
    return { ids, lossMask: ids.map((_, i) => (i >= 2 ? 1 : 0)) };
  });
}

test('LoRA SFT of a tiny Llama lowers held-out loss; only the adapters change', async () => {
  const vocab = 32;
  const m = tinyLlama(4, vocab);
  const adapter = attachLora(m, { r: 8, alpha: 16, target_modules: 'all-linear' }, 5);
  const trainEx = countingExamples(256, 1, vocab);
  const heldOut = countingExamples(64, 2, vocab);
  const evalLoss = async () => (await evaluateLoss(sequentialBatches(heldOut, 32, 0), (b) => causalLmLoss(m, b))).loss;
  const before = await evalLoss();
  const base = m.params.get('model.layers.0.self_attn.q_proj.weight')!.dataSync().slice();
  await train({ params: adapter.params, lossFn: (b) => causalLmLoss(m, b), data: new ExampleBatches(trainEx, 16, 0, 3), maxSteps: 60, schedule: { lr: 1e-2, kind: 'constant', warmupSteps: 0 } });
  const after = await evalLoss();
  console.log(`LoRA SFT tiny llama: held-out loss ${before.toFixed(4)} → ${after.toFixed(4)} (${adapter.parameterCount} adapter parameters)`);
  assert.ok(after < before - 0.3, `held-out loss ${before} → ${after}`);
  assert.deepEqual(m.params.get('model.layers.0.self_attn.q_proj.weight')!.dataSync(), base);
  adapter.dispose();
  m.dispose();
});

test('PEFT export: adapter files with PEFT names reload to the same outputs; merging gives the same logits', () => {
  for (const m of [tinyLlama(6), createGpt2({ vocab_size: 32, n_positions: 16, n_embd: 16, n_layer: 2, n_head: 2 }, 2)] as CausalLM[]) {
    const a = attachLora(m, { r: 2, alpha: 4, target_modules: 'all-linear' }, 9);
    for (const v of a.params.values()) v.assign(tf.randomNormal(v.shape, 0, 0.2, 'float32', 11));
    const ids = [[3, 9, 4, 17, 8]];
    const want = logits(m, ids);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lora-'));
    writeAdapterFiles(dir, m, a, 'base-model-id');
    const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'adapter_config.json'), 'utf8'));
    assert.equal(cfg.peft_type, 'LORA');
    assert.equal(cfg.base_model_name_or_path, 'base-model-id');
    assert.equal(cfg.fan_in_fan_out, m.config.model_type === 'gpt2');
    const first = m.linearLayers()[0]!;
    assert.ok(a.params.has(peftTensorName(first, 'A')));
    assert.match(peftTensorName(first, 'A'), /^base_model\.model\.(model\.layers|transformer\.h)\.0\..*\.lora_A\.weight$/);
    // merged weights: the same function without adapters
    const merged = mergedTensors(m, a);
    a.dispose();
    m.adapter = undefined;
    const saved = new Map([...m.params].map(([n, v]) => [n, v.dataSync().slice()]));
    for (const [n, t] of merged) m.params.get(n)!.assign(tf.tensor(t.data, t.shape));
    const got = logits(m, ids);
    for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i]! - want[i]!) < 1e-4, 'merged');
    for (const [n, d] of saved) m.params.get(n)!.assign(tf.tensor(d, m.params.get(n)!.shape));
    // reload the adapter directory onto the base
    const re = loadAdapterDir(dir, m);
    assert.equal(re.baseModel, 'base-model-id');
    const again = logits(m, ids);
    for (let i = 0; i < want.length; i++) assert.ok(Math.abs(again[i]! - want[i]!) < 1e-5, 'reloaded');
    re.adapter.dispose();
    m.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
