// `alignflow models` with the Llama family, end to end in child processes: init --family llama,
// import of a sharded fp16 checkpoint, export --dtype, show with memory estimates.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import * as tf from '@tensorflow/tfjs';
import { tmpDir } from '../helpers/tmp.js';
import { LLAMA_FAMILY_FIXTURES } from '../helpers/fixtures.js';
import { initBackend } from '../../src/ml/backend.js';
import { loadModelDir } from '../../src/ml/models/io.js';

const home = tmpDir();

function cli(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { env: { ...process.env, ALIGNFLOW_HOME: home }, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

before(async () => {
  await initBackend();
});

test('models init --family llama writes a LlamaForCausalLM directory; unknown keys name the family\'s keys', async () => {
  const out = path.join(tmpDir(), 'tiny');
  const r = cli('models', 'init', '--family', 'llama', '--config', '{"vocab_size":300,"hidden_size":32,"intermediate_size":64,"num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,"max_position_embeddings":64}', '--chat-template', 'chatml', '--out', out);
  assert.equal(r.code, 0, r.err);
  const cfg = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8'));
  assert.deepEqual(cfg.architectures, ['LlamaForCausalLM']);
  assert.equal(cfg.num_key_value_heads, 2);
  assert.match(JSON.parse(fs.readFileSync(path.join(out, 'tokenizer_config.json'), 'utf8')).chat_template, /<\|im_start\|>/);
  const { model } = await loadModelDir(out);
  assert.equal(model.contextLength, 64);
  model.dispose();
  const bad = cli('models', 'init', '--family', 'llama', '--config', '{"vocab_size":300,"n_embd":32}', '--out', path.join(tmpDir(), 'bad'));
  assert.equal(bad.code, 2);
  assert.match(bad.err, /n_embd: not a llama config key \(known: .*hidden_size/);
});

test('a sharded fp16 checkpoint imports, exports as one bf16 file with its chat_template.jinja, and keeps its outputs', async () => {
  const src = `${LLAMA_FAMILY_FIXTURES}/llama3-bias-fp16-sharded`;
  const imp = cli('models', 'import', src, '--name', 'l3');
  assert.equal(imp.code, 0, imp.err);
  const id = imp.out.trim();
  const show = JSON.parse(cli('models', 'show', id, '--json').out) as { files: { path: string }[]; metadata: { dtype: string; model_type: string }; estimate: { parameters: number } };
  assert.equal(show.metadata.model_type, 'llama');
  assert.equal(show.metadata.dtype, 'F16');
  assert.ok(show.files.some((f) => f.path === 'model.safetensors.index.json'));
  assert.ok(show.files.some((f) => f.path === 'chat_template.jinja'));
  const out = path.join(tmpDir(), 'bf16');
  const exp = cli('models', 'export', id, '--out', out, '--dtype', 'bf16');
  assert.equal(exp.code, 0, exp.err);
  assert.deepEqual(fs.readdirSync(out).sort(), ['chat_template.jinja', 'config.json', 'generation_config.json', 'model.safetensors', 'special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json']);
  assert.equal(fs.readFileSync(path.join(out, 'chat_template.jinja'), 'utf8'), fs.readFileSync(path.join(src, 'chat_template.jinja'), 'utf8'));
  const a = await loadModelDir(src);
  const b = await loadModelDir(out);
  assert.equal(b.storedDtype, 'BF16');
  const ids = tf.tensor2d([[5, 40, 41, 200, 13]], undefined, 'int32');
  const la = a.model.forward(ids).logits.dataSync();
  const lb = b.model.forward(ids).logits.dataSync();
  let d = 0;
  for (let i = 0; i < la.length; i++) d = Math.max(d, Math.abs(la[i]! - lb[i]!));
  assert.ok(d > 0 && d < 1, `bf16 rounding moves the logits a little (${d})`);
  a.model.dispose();
  b.model.dispose();
  assert.equal(cli('models', 'export', id, '--out', path.join(tmpDir(), 'x'), '--dtype', 'int8').code, 2);
});

test('models show PRESET prints parameters and full vs LoRA training memory without making weights', () => {
  const r = cli('models', 'show', 'smollm2-135m', '--json');
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out) as { parameters: number; full: { trainable: number; total: number; activations: number }; lora: { trainable: number; total: number; activations: number } };
  assert.equal(j.parameters, 134_515_008); // HuggingFaceTB/SmolLM2-135M's count
  assert.equal(j.full.trainable, j.parameters);
  // LoRA saves gradients and AdamW state; the tape still keeps the frozen layers' intermediates, plus the adapters' products
  assert.ok(j.lora.trainable < j.parameters / 20 && j.lora.total - j.lora.activations < j.full.total - j.full.activations);
  assert.ok(j.lora.activations > j.full.activations);
  const text = cli('models', 'show', 'qwen2.5-0.5b');
  assert.match(text.out, /parameters: 494,032,768/);
  assert.match(text.out, /LoRA r=16 \(all-linear\): trainable 8,798,208/);
});
