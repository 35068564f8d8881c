import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { loadModelDir } from '../../src/ml/models/io.js';
import { scoreRecords, type PairScore, type SequenceScore } from '../../src/ml/score.js';
import type { PreferenceRecord, SftRecord } from '../../src/data/formats.js';
import { backend } from './train-fixtures.js';

await backend();
const FIX = '/work/shared/fixtures/gpt2-reference';
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
