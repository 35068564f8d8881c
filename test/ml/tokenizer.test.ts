import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { tmpDir } from '../helpers/tmp.js';
import {
  bytesTokenizer,
  chatPromptCompletion,
  DEFAULT_CHAT_TEMPLATE,
  loadTokenizerDir,
  renderChat,
  saveTokenizerDir,
  tokenizePair,
  trainBpeTokenizer,
  TextTokenizer,
} from '../../src/ml/tokenizer/index.js';
import { GPT2_FIXTURES } from '../helpers/fixtures.js';

const FX = GPT2_FIXTURES;

const CORPUS = [
  'The weather today is sunny and warm.',
  'The weather tomorrow will be rainy, they say.',
  'Q: What is 2 + 3?\nA: 5',
  'Write a greeting: Hello there, friend!',
  'def add(a, b):\n    return a + b\n',
  'Résumé of the day — calm, productive, naïve hopes fulfilled ✓',
  'Emoji test 🙂 👍 great',
];

test('the fixture tokenizer.json loads and encodes as transformers did', () => {
  const tok = loadTokenizerDir(`${FX}/model-fp32`);
  const ref = JSON.parse(fs.readFileSync(`${FX}/model-fp32.logits.json`, 'utf8')) as { text: string; ids: number[] };
  assert.deepEqual(tok.encode(ref.text), ref.ids);
  assert.equal(tok.decode(ref.ids), ref.text);
  assert.equal(tok.vocabSize, 377);
  assert.equal(tok.eosTokenId, 376);
  assert.equal(tok.bosTokenId, 376);
  assert.equal(tok.padTokenId, 376); // no pad token: falls back to EOS
  assert.deepEqual(tok.encode('a<|endoftext|>'), [64, 376]);
});

test('a trained byte-level BPE round-trips text, reaches the vocab size and saves a standard tokenizer.json', () => {
  const texts = Array.from({ length: 20 }, () => CORPUS).flat();
  const tok = trainBpeTokenizer(texts, { vocabSize: 300 });
  assert.equal(tok.vocabSize, 300);
  assert.equal(tok.eosTokenId, 299);
  const json = tok.json as { model: { merges: string[]; vocab: Record<string, number> }; pre_tokenizer: unknown };
  assert.equal(json.model.merges.length, 300 - 256 - 1);
  const fixture = JSON.parse(fs.readFileSync(`${FX}/model-fp32/tokenizer.json`, 'utf8')) as Record<string, unknown>;
  assert.deepEqual(Object.keys(tok.json), Object.keys(fixture));
  assert.deepEqual(json.pre_tokenizer, fixture.pre_tokenizer);
  const samples = [...CORPUS, 'unseen wörds 🚀 and\ttabs  and  spaces\n\n', '', ' leading space', '<|endoftext|> inside'];
  for (const s of samples) assert.equal(tok.decode(tok.encode(s)), s, JSON.stringify(s));
  // merges compress the training text
  const n = CORPUS.reduce((a, s) => a + tok.encode(s).length, 0);
  const bytes = CORPUS.reduce((a, s) => a + Buffer.byteLength(s), 0);
  assert.ok(n < bytes * 0.75, `${n} tokens for ${bytes} bytes`);
  // save → load gives the same encoding
  const dir = tmpDir();
  saveTokenizerDir(tok, dir);
  const back = loadTokenizerDir(dir);
  for (const s of samples) assert.deepEqual(back.encode(s), tok.encode(s));
  assert.equal(back.eosToken, '<|endoftext|>');
  assert.ok(fs.existsSync(path.join(dir, 'special_tokens_map.json')));
});

test('training is deterministic and refuses a too small vocabulary', () => {
  const a = trainBpeTokenizer(CORPUS, { vocabSize: 280, minFrequency: 1 });
  const b = trainBpeTokenizer(CORPUS, { vocabSize: 280, minFrequency: 1 });
  assert.deepEqual(a.json, b.json);
  assert.throws(() => trainBpeTokenizer(CORPUS, { vocabSize: 200 }), /vocab_size must be an integer ≥ 257/);
});

test('bytes-only tokenizer: one id per byte plus specials', () => {
  const tok = bytesTokenizer();
  assert.equal(tok.vocabSize, 257);
  const s = 'héllo 🚀';
  assert.equal(tok.encode(s).length, Buffer.byteLength(s));
  assert.equal(tok.decode(tok.encode(s)), s);
  assert.equal(tok.encode('<|endoftext|>')[0], 256);
});

test('chat templates: tokenizer_config chat_template rendered with jinja; documented default', () => {
  const base = bytesTokenizer();
  const msgs = [
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: 'Hi?' },
    { role: 'assistant', content: 'Hello.' },
  ];
  assert.equal(renderChat(base, msgs), 'Be brief.\n\nUser: Hi?\nAssistant: Hello.<|endoftext|>\n');
  assert.equal(renderChat(base, msgs.slice(0, 2), { addGenerationPrompt: true }), 'Be brief.\n\nUser: Hi?\nAssistant:');
  const chatml =
    "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
  const tok = new TextTokenizer(base.json, { ...base.config, chat_template: chatml });
  assert.equal(renderChat(tok, [{ role: 'user', content: 'x' }], { addGenerationPrompt: true }), '<|im_start|>user\nx<|im_end|>\n<|im_start|>assistant\n');
  const pc = chatPromptCompletion(tok, [{ role: 'user', content: 'x' }], [{ role: 'assistant', content: 'y' }]);
  assert.deepEqual(pc, { prompt: '<|im_start|>user\nx<|im_end|>\n<|im_start|>assistant\n', completion: 'y<|im_end|>\n' });
  assert.ok(DEFAULT_CHAT_TEMPLATE.includes('add_generation_prompt'));
  assert.throws(() => renderChat(tok, msgs, { template: '{% for %}' }), /chat template failed/);
});

test('prompt and completion are tokenized separately; a prompt that is not a token prefix is reported', () => {
  const tok = loadTokenizerDir(`${FX}/model-fp32`);
  const ok = tokenizePair(tok, 'The weather today is', ' sunny and warm.');
  assert.equal(ok.prefixMismatch, false);
  assert.deepEqual(ok.promptIds, [294, 314, 267, 257, 81, 293, 67, 326, 323]);
  // "say t" + "he end": "Ġt" + "he" merge into "Ġthe" when tokenized jointly
  const bad = tokenizePair(tok, 'say t', 'he end');
  assert.equal(bad.prefixMismatch, true);
  assert.equal(typeof bad.mismatchAt, 'number');
  // the separately tokenized ids are kept, not re-split
  assert.deepEqual([...bad.promptIds, ...bad.completionIds], [...tok.encode('say t'), ...tok.encode('he end')]);
  assert.notDeepEqual([...bad.promptIds, ...bad.completionIds], tok.encode('say the end'));
  const eos = tokenizePair(tok, 'a', ' b', { addEos: true });
  assert.equal(eos.completionIds.at(-1), 376);
});
