import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { tmpDir } from '../helpers/tmp.js';
import { initBackend } from '../../src/ml/backend.js';
import { loadModelDir, saveModelDir } from '../../src/ml/models/io.js';
import { createGpt2 } from '../../src/ml/models/gpt2.js';
import { readSafetensors, writeSafetensors, type NamedTensor } from '../../src/ml/safetensors.js';
import { bytesTokenizer } from '../../src/ml/tokenizer/index.js';
import { AlignflowError } from '../../src/errors.js';
import { GPT2_FIXTURES } from '../helpers/fixtures.js';

const FX = GPT2_FIXTURES;
const TINY = { vocab_size: 260, n_positions: 32, n_embd: 32, n_layer: 2, n_head: 4 };

before(async () => {
  await initBackend();
});

function logitsOf(m: { forward: (ids: tf.Tensor2D) => { logits: tf.Tensor3D; hidden: tf.Tensor3D } }): Float32Array {
  const ids = tf.tensor2d([[1, 5, 9, 200, 3, 257]], undefined, 'int32');
  const r = m.forward(ids);
  const d = r.logits.dataSync() as Float32Array;
  tf.dispose([ids, r.logits, r.hidden]);
  return d;
}

/** Copies the fp32 fixture into a writable dir, letting `edit` change its files. */
function fixtureCopy(edit?: (dir: string) => void): string {
  const dir = path.join(tmpDir(), 'model');
  fs.cpSync(`${FX}/model-fp32`, dir, { recursive: true });
  for (const f of fs.readdirSync(dir)) fs.chmodSync(path.join(dir, f), 0o644);
  edit?.(dir);
  return dir;
}

function editWeights(dir: string, fn: (t: Map<string, NamedTensor>) => void): void {
  const file = path.join(dir, 'model.safetensors');
  const st = readSafetensors(file);
  const m = new Map<string, NamedTensor>(st.tensors);
  fn(m);
  writeSafetensors(file, m, { metadata: st.metadata });
}

async function rejects(dir: string, re: RegExp, kind = 'input'): Promise<AlignflowError> {
  let caught: unknown;
  try {
    await loadModelDir(dir);
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof AlignflowError, `expected an AlignflowError, got ${String(caught)}`);
  assert.equal(caught.kind, kind);
  assert.match(caught.message, re);
  return caught;
}

test('save → load gives identical logits; the directory has transformers layout', async () => {
  const tok = bytesTokenizer();
  const m = createGpt2({ ...TINY, bos_token_id: 256, eos_token_id: 256 }, 11);
  const dir = path.join(tmpDir(), 'out');
  saveModelDir(m, tok, dir);
  assert.deepEqual(fs.readdirSync(dir).sort(), ['config.json', 'generation_config.json', 'model.safetensors', 'special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json']);
  const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  const fixtureCfg = JSON.parse(fs.readFileSync(`${FX}/model-fp32/config.json`, 'utf8'));
  assert.deepEqual(Object.keys(cfg), Object.keys(fixtureCfg)); // same keys, same (sorted) order
  assert.equal(cfg.torch_dtype, 'float32');
  assert.deepEqual(cfg.architectures, ['GPT2LMHeadModel']);
  const st = readSafetensors(path.join(dir, 'model.safetensors'));
  const fixtureSt = readSafetensors(`${FX}/model-fp32/model.safetensors`);
  assert.deepEqual(st.metadata, { format: 'pt' });
  assert.equal(st.tensors.has('lm_head.weight'), false);
  assert.deepEqual([...st.tensors.keys()].sort(), [...fixtureSt.tensors.keys()].sort());
  const back = await loadModelDir(dir);
  assert.deepEqual(Array.from(logitsOf(back.model)), Array.from(logitsOf(m)));
  assert.equal(back.tokenizer!.vocabSize, 257);
  assert.equal(back.storedDtype, 'F32');
  // writing onto a non-empty directory is refused
  assert.throws(() => saveModelDir(m, tok, dir), /exists and is not empty/);
  m.dispose();
  back.model.dispose();
});

test('fixture → save → load reproduces the fixture logits exactly; bf16 save stores BF16', async () => {
  const a = await loadModelDir(`${FX}/model-fp32`);
  const dir = path.join(tmpDir(), 'again');
  saveModelDir(a.model, a.tokenizer, dir);
  const b = await loadModelDir(dir);
  assert.deepEqual(Array.from(logitsOf(b.model)), Array.from(logitsOf(a.model)));
  assert.deepEqual(b.tokenizer!.encode('Hello, world!'), a.tokenizer!.encode('Hello, world!'));
  const dir16 = path.join(tmpDir(), 'bf16');
  saveModelDir(a.model, a.tokenizer, dir16, { dtype: 'BF16' });
  const c = await loadModelDir(dir16);
  assert.equal(c.storedDtype, 'BF16');
  assert.equal(JSON.parse(fs.readFileSync(path.join(dir16, 'config.json'), 'utf8')).torch_dtype, 'bfloat16');
  for (const m of [a.model, b.model, c.model]) m.dispose();
});

test('names without "transformer." and a tied lm_head.weight are accepted; old attn.bias buffers ignored', async () => {
  const dir = fixtureCopy((d) =>
    editWeights(d, (t) => {
      for (const [k, v] of [...t]) {
        t.delete(k);
        t.set(k.replace(/^transformer\./, ''), v);
      }
      t.set('lm_head.weight', t.get('wte.weight')!);
      t.set('h.0.attn.bias', { shape: [1, 1, 2, 2], data: new Float32Array([1, 0, 1, 1]) });
    }),
  );
  const { model } = await loadModelDir(dir);
  const ref = await loadModelDir(`${FX}/model-fp32`);
  assert.deepEqual(Array.from(logitsOf(model)), Array.from(logitsOf(ref.model)));
  model.dispose();
  ref.model.dispose();
});

test('missing tensor → error naming file and tensor', async () => {
  const dir = fixtureCopy((d) => editWeights(d, (t) => t.delete('transformer.h.1.mlp.c_fc.bias')));
  const e = await rejects(dir, /model\.safetensors: 1 tensor problem\(s\): transformer\.h\.1\.mlp\.c_fc\.bias: missing tensor/);
  assert.equal(e.issues[0]!.field, 'transformer.h.1.mlp.c_fc.bias');
  assert.match(e.issues[0]!.file!, /model\.safetensors$/);
});

test('mismatched shape → error naming the tensor and both shapes', async () => {
  const dir = fixtureCopy((d) =>
    editWeights(d, (t) => t.set('transformer.h.0.attn.c_attn.weight', { shape: [192, 64], data: t.get('transformer.h.0.attn.c_attn.weight')!.data })),
  );
  await rejects(dir, /transformer\.h\.0\.attn\.c_attn\.weight: shape \[192, 64\] disagrees with config\.json \(expected \[64, 192\]\)/);
});

test('shape disagreeing with config.json (n_embd changed) → named error', async () => {
  const dir = fixtureCopy((d) => {
    const f = path.join(d, 'config.json');
    fs.writeFileSync(f, JSON.stringify({ ...JSON.parse(fs.readFileSync(f, 'utf8')), n_layer: 3 }));
  });
  await rejects(dir, /transformer\.h\.2\.ln_1\.weight: missing tensor/);
});

test('unexpected tensor and untied lm_head → named errors', async () => {
  const dir = fixtureCopy((d) => editWeights(d, (t) => t.set('transformer.h.0.extra.weight', { shape: [2], data: new Float32Array(2) })));
  await rejects(dir, /transformer\.h\.0\.extra\.weight: unexpected tensor/);
  const dir2 = fixtureCopy((d) => editWeights(d, (t) => t.set('lm_head.weight', { shape: [377, 64], data: new Float32Array(377 * 64) })));
  await rejects(dir2, /lm_head\.weight: differs from transformer\.wte\.weight/);
});

test('unknown architecture → error naming config.json and model_type', async () => {
  const dir = fixtureCopy((d) => {
    const f = path.join(d, 'config.json');
    fs.writeFileSync(f, JSON.stringify({ ...JSON.parse(fs.readFileSync(f, 'utf8')), model_type: 'mamba' }));
  });
  const e = await rejects(dir, /config\.json: unknown architecture: model_type "mamba" \(alignflow supports gpt2, llama, mistral, qwen2, qwen3\)/);
  assert.equal(e.issues[0]!.field, 'model_type');
  const dir2 = fixtureCopy((d) => {
    const f = path.join(d, 'config.json');
    fs.writeFileSync(f, JSON.stringify({ ...JSON.parse(fs.readFileSync(f, 'utf8')), n_head: 5 }));
  });
  await rejects(dir2, /config\.json: invalid GPT-2 config \(n_head: n_embd 64 is not divisible by n_head 5\)/);
});

test('tokenizer vocabulary larger than vocab_size → error naming tokenizer.json', async () => {
  const dir = fixtureCopy((d) => {
    const f = path.join(d, 'config.json');
    fs.writeFileSync(f, JSON.stringify({ ...JSON.parse(fs.readFileSync(f, 'utf8')), vocab_size: 300 }));
    editWeights(d, (t) => {
      const w = t.get('transformer.wte.weight')!;
      t.set('transformer.wte.weight', { shape: [300, 64], data: w.data.slice(0, 300 * 64) });
    });
  });
  await rejects(dir, /tokenizer\.json: the tokenizer produces ids up to 376 but config\.json vocab_size is 300/);
});

test('missing files → not_found naming the file', async () => {
  const dir = fixtureCopy((d) => fs.rmSync(path.join(d, 'model.safetensors')));
  await rejects(dir, /model\.safetensors: missing/, 'not_found');
  await rejects(path.join(tmpDir(), 'nothing'), /config\.json: missing/, 'not_found');
});
