// What TRL 1.13 does at the prompt/completion boundary, and how ours differs. TRL tokenizes
// prompt and prompt+completion and cuts the latter at the prompt's token count
// (trl/trainer/dpo_trainer.py, tokenize_fn); we tokenize the two separately. Where a token merges
// across the boundary, TRL's completion loses the merged characters; ours keeps the text exactly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { trainBpeTokenizer } from '../../src/ml/tokenizer/bpe-trainer.js';
import { BOUNDARY_NOTE, tokenizePair } from '../../src/ml/tokenizer/pairs.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

test('a token merged across the boundary: TRL 1.13 drops its completion part, we keep the text', () => {
  const tok = trainBpeTokenizer(Array(50).fill('hello'), { vocabSize: 270, minFrequency: 1 });
  assert.equal(tok.encode('hello').length, 1, 'the corpus made "hello" one token');
  const ours = tokenizePair(tok, 'hel', 'lo');
  assert.equal(ours.prefixMismatch, true);
  assert.equal(tok.decode(ours.promptIds) + tok.decode(ours.completionIds), 'hello');
  // TRL 1.13: prompt_ids = tok(prompt); chosen_ids = tok(prompt + chosen)[len(prompt_ids):]
  const promptIds = tok.encode('hel');
  const trlCompletion = tok.encode('hello').slice(promptIds.length);
  assert.equal(tok.decode(trlCompletion), '', 'TRL trains on an empty completion here: "lo" is lost');
  // Without a merge both agree.
  const plain = tokenizePair(tok, 'hel', ' world');
  assert.equal(plain.prefixMismatch, false);
  assert.deepEqual(tok.encode('hel world').slice(plain.promptIds.length), plain.completionIds);
});

test('the warning and the docs say what TRL does, not that it tokenizes separately', () => {
  assert.match(BOUNDARY_NOTE, /TRL 1\.13 tokenizes prompt\+completion together and cuts at the prompt's token count/);
  const files = [
    ...fs.readdirSync(path.join(root, 'docs')).map((f) => path.join(root, 'docs', f)),
    path.join(root, 'README.md'),
    path.join(root, 'src/stages/dpo.ts'),
    path.join(root, 'src/ml/train/sft.ts'),
    path.join(root, 'src/ml/tokenizer/pairs.ts'),
    path.join(root, 'src/stages/preference-inputs.ts'),
  ];
  const claims = files.filter((f) => /tokenized separately(,)? as TRL|separately as TRL does|concatenated,? \(?as TRL does|TRL's DPO does the same/i.test(fs.readFileSync(f, 'utf8')));
  assert.deepEqual(claims.map((f) => path.relative(root, f)), []);
  assert.match(fs.readFileSync(path.join(root, 'docs/preference.md'), 'utf8'), /TRL 1\.13/);
});
