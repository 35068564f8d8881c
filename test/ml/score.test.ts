import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { loadModelDir } from '../../src/ml/models/io.js';
import { scoreRecords, type PairScore, type SequenceScore } from '../../src/ml/score.js';
import type { PreferenceRecord, SftRecord } from '../../src/data/formats.js';
import { backend } from './train-fixtures.js';
import { GPT2_FIXTURES } from '../helpers/fixtures.js';

await backend();
const FIX = GPT2_FIXTURES;
const readJsonl = <T>(f: string): T[] => fs.readFileSync(f, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as T);
const pairs = readJsonl<PreferenceRecord>(path.join(FIX, 'pairs.jsonl'));

for (const variant of ['fp32', 'bf16']) {
  test(`preference scoring matches the independent float64 reference (${variant}, with and without EOS)`, async () => {
    const { model, tokenizer } = await loadModelDir(path.join(FIX, `model-${variant}`));
    for (const [addEos, file] of [
      [false, `model-${variant}.pairs.expected.jsonl`],
      [true, `model-${variant}.pairs.expected-eos.jsonl`],
    ] as const) {
      const want = readJsonl<PairScore>(path.join(FIX, file));
      const got = (await scoreRecords(model, tokenizer!, 'preference', pairs, { batchSize: 3, addEos })) as PairScore[];
      assert.equal(got.length, want.length);
      got.forEach((g, i) => {
        const w = want[i]!;
        assert.equal(g.chosen_tokens, w.chosen_tokens, `pair ${i} chosen tokens`);
        assert.equal(g.rejected_tokens, w.rejected_tokens, `pair ${i} rejected tokens`);
        for (const k of ['chosen_logps', 'rejected_logps', 'chosen_logps_mean', 'rejected_logps_mean'] as const) {
          assert.ok(Math.abs(g[k] - w[k]) < 2e-3 + 1e-5 * Math.abs(w[k]), `pair ${i} ${k}: ${g[k]} vs ${w[k]} (eos=${addEos})`);
        }
      });
    }
    // SFT records: logps of the chosen completion equals chosen_logps; batch size does not matter
    const sft: SftRecord[] = pairs.map((p) => ({ prompt: p.prompt as string, completion: p.chosen as string }));
    const a = (await scoreRecords(model, tokenizer!, 'sft', sft, { batchSize: 1, addEos: false })) as SequenceScore[];
    const b = (await scoreRecords(model, tokenizer!, 'sft', sft, { batchSize: 4, addEos: false })) as SequenceScore[];
    const want = readJsonl<PairScore>(path.join(FIX, `model-${variant}.pairs.expected.jsonl`));
    a.forEach((s, i) => {
      assert.ok(Math.abs(s.logps - b[i]!.logps) < 1e-3, `batching changed record ${i}`);
      assert.ok(Math.abs(s.logps - want[i]!.chosen_logps) < 2e-3 + 1e-5 * Math.abs(want[i]!.chosen_logps));
      assert.equal(s.tokens, want[i]!.chosen_tokens);
    });
    await assert.rejects(scoreRecords(model, tokenizer!, 'prompt', [{ prompt: 'x' }]), /no completions/);
    model.dispose();
  });
}

test('record → text as TRL sees it: implicit prompts extracted, chat templates applied, EOS on standard formats', async () => {
  const { preferenceRecordText, sftRecordText } = await import('../../src/ml/train/records.js');
  const { loadTokenizerDir } = await import('../../src/ml/tokenizer/index.js');
  const tok = loadTokenizerDir(path.join(FIX, 'model-fp32'));
  const eos = tok.eosToken!;
  assert.deepEqual(preferenceRecordText(tok, { chosen: 'The sky is blue.', rejected: 'The sky is red.' }), {
    prompt: 'The sky is',
    chosen: ' blue.' + eos,
    rejected: ' red.' + eos,
  });
  assert.deepEqual(preferenceRecordText(tok, { prompt: 'Q:', chosen: ' a', rejected: ' b' }, { addEos: false }), { prompt: 'Q:', chosen: ' a', rejected: ' b' });
  const conv = preferenceRecordText(tok, {
    chosen: [
      { role: 'user', content: 'hi' },
      { role: 'assistant', content: 'hello!' },
    ],
    rejected: [
      { role: 'user', content: 'hi' },
      { role: 'assistant', content: 'go away' },
    ],
  });
  assert.ok(conv.prompt.includes('hi') && !conv.prompt.includes('hello'), conv.prompt);
  assert.ok(conv.chosen.includes('hello!') && conv.rejected.includes('go away'));
  assert.deepEqual(sftRecordText(tok, { text: 'abc' }), { prompt: '', completion: 'abc' + eos });
  assert.deepEqual(sftRecordText(tok, { prompt: 'x', completion: ' y' }, { addEos: false }), { prompt: 'x', completion: ' y' });
});

test('the SFT training loss equals minus the scored completion log-probs (same tokens, same masking)', async () => {
  const { prepareSftExamples, collate } = await import('../../src/ml/train/data.js');
  const { causalLmLoss } = await import('../../src/ml/train/lm-loss.js');
  const { tokenizePair } = await import('../../src/ml/tokenizer/index.js');
  const { model, tokenizer } = await loadModelDir(path.join(FIX, 'model-fp32'));
  const want = readJsonl<PairScore>(path.join(FIX, 'model-fp32.pairs.expected.jsonl'));
  const pairsTok = pairs.map((p) => tokenizePair(tokenizer!, p.prompt as string, p.chosen as string));
  const { examples, kept } = prepareSftExamples(pairsTok, 1024);
  const r = causalLmLoss(model, collate(examples, 0));
  const loss = (await r.loss.data())[0]!;
  r.loss.dispose();
  const expected = -kept.reduce((a, i) => a + want[i]!.chosen_logps, 0);
  assert.equal(r.weight, kept.reduce((a, i) => a + want[i]!.chosen_tokens, 0));
  assert.ok(Math.abs(loss - expected) < 1e-2 + 1e-5 * Math.abs(expected), `${loss} vs ${expected}`);
  model.dispose();
});
