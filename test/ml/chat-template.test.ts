// Chat templates and the files of a model directory: chat_template.jinja is read (and wins over
// tokenizer_config.json, as in transformers), every file alignflow does not rewrite comes back out
// on save, an empty system message is valid data, stop ids come from generation_config.json.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { initBackend } from '../../src/ml/backend.js';
import { loadModelDir, saveModelDir } from '../../src/ml/models/io.js';
import { chatPromptCompletion, renderChat, withChatTemplate, CHATML_TEMPLATE } from '../../src/ml/tokenizer/chat.js';
import { detectFormat, normalizeRecord } from '../../src/data/formats.js';
import { stopTokenIds } from '../../src/ml/generate.js';
import { LLAMA_FAMILY_FIXTURES, LLAMA_FIXTURES } from '../helpers/fixtures.js';

before(async () => {
  await initBackend();
});

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'chat-'));

test('chat_template.jinja is the template (transformers ≥ 4.50 layout), and it wins over tokenizer_config.json', async () => {
  const src = `${LLAMA_FAMILY_FIXTURES}/llama3-bias-fp16-sharded`;
  const { model, tokenizer } = await loadModelDir(src);
  const jinja = fs.readFileSync(`${src}/chat_template.jinja`, 'utf8');
  assert.equal(tokenizer!.chatTemplate, jinja);
  // SmolLM2's template: a default system message when there is none, an empty one kept as given
  const msgs = [{ role: 'user', content: 'hi' }];
  assert.match(renderChat(tokenizer!, msgs), /^<\|im_start\|>system\nYou are a helpful AI assistant named SmolLM/);
  assert.equal(renderChat(tokenizer!, [{ role: 'system', content: '' }, ...msgs]), '<|im_start|>system\n<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n');
  const d = tmp();
  fs.cpSync(src, d, { recursive: true });
  const cfgFile = path.join(d, 'tokenizer_config.json');
  fs.writeFileSync(cfgFile, JSON.stringify({ ...JSON.parse(fs.readFileSync(cfgFile, 'utf8')), chat_template: 'IGNORED' }));
  const again = await loadModelDir(d);
  assert.equal(again.tokenizer!.chatTemplate, jinja);
  model.dispose();
  again.model.dispose();
  fs.rmSync(d, { recursive: true, force: true });
});

test('saving a model keeps every file it does not rewrite: chat_template.jinja, vocab.json, merges.txt, generation_config.json, README.md', async () => {
  const src = tmp();
  fs.cpSync(`${LLAMA_FAMILY_FIXTURES}/qwen3-fp32`, src, { recursive: true });
  const extra = { 'vocab.json': '{"a": 0}', 'merges.txt': '#version: 0.2\na b\n', 'README.md': '# my model\n', 'generation_config.json': '{"eos_token_id": [378, 376], "temperature": 0.7}\n' };
  for (const [f, text] of Object.entries(extra)) fs.writeFileSync(path.join(src, f), text);
  fs.writeFileSync(path.join(src, 'pytorch_model.bin'), 'stale weights');
  const { model, tokenizer } = await loadModelDir(src);
  assert.deepEqual(stopTokenIds(model, tokenizer), [378, 376]);
  const out = path.join(tmp(), 'out');
  saveModelDir(model, tokenizer, out, { dtype: 'BF16' });
  for (const [f, text] of Object.entries(extra)) assert.equal(fs.readFileSync(path.join(out, f), 'utf8'), text, f);
  assert.equal(fs.readFileSync(path.join(out, 'chat_template.jinja'), 'utf8'), fs.readFileSync(path.join(src, 'chat_template.jinja'), 'utf8'));
  assert.equal(fs.existsSync(path.join(out, 'pytorch_model.bin')), false, 'weights in other formats would be stale');
  const back = await loadModelDir(out);
  assert.equal(back.storedDtype, 'BF16');
  assert.equal(back.tokenizer!.chatTemplate, tokenizer!.chatTemplate);
  assert.equal(JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8')).torch_dtype, 'bfloat16');
  model.dispose();
  back.model.dispose();
});

test('a conversational record renders as TRL does, system message included; an empty system message imports', async () => {
  const { model, tokenizer } = await loadModelDir(`${LLAMA_FIXTURES}/model-llama-gqa-fp32`);
  const rec = { prompt: [{ role: 'system', content: '' }, { role: 'user', content: 'Q?' }], chosen: [{ role: 'assistant', content: 'A.' }], rejected: [{ role: 'assistant', content: 'B.' }] };
  const r = chatPromptCompletion(tokenizer!, rec.prompt, rec.chosen);
  assert.equal(r.prompt, '<|im_start|>system\n<|im_end|>\n<|im_start|>user\nQ?<|im_end|>\n<|im_start|>assistant\n');
  assert.equal(r.completion, 'A.<|im_end|>\n');
  const format = detectFormat(rec)!;
  const n = normalizeRecord(rec, format);
  assert.ok(n.ok, JSON.stringify(n));
  // an empty user turn is still refused
  const bad = normalizeRecord({ ...rec, prompt: [{ role: 'user', content: '' }] }, format);
  assert.equal(bad.ok, false);
  // a template set on a tokenizer travels in tokenizer_config.json
  const t2 = withChatTemplate(tokenizer!, CHATML_TEMPLATE);
  assert.equal(t2.chatTemplate, CHATML_TEMPLATE);
  model.dispose();
});
