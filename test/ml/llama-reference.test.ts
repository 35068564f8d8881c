// The Llama family (llama, mistral, qwen2, qwen3) against float64 references computed with
// transformers (test/fixtures/llama-reference, test/fixtures/llama-families; see their READMEs).
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/ml/backend.js';
import { loadModelDir } from '../../src/ml/models/io.js';
import { completionLogps } from '../../src/ml/logprobs.js';
import { chatPromptCompletion, type ChatMessage } from '../../src/ml/tokenizer/chat.js';
import { LLAMA_FIXTURES, LLAMA_FAMILY_FIXTURES } from '../helpers/fixtures.js';

before(async () => {
  await initBackend();
});

interface LogitsRef {
  text: string;
  ids: number[];
  logits: number[][];
}
interface PairRef {
  index: number;
  prompt_ids: number[];
  chosen_ids: number[];
  rejected_ids: number[];
  chosen_logps: number;
  rejected_logps: number;
  prompt_text?: string;
  chosen_text?: string;
  rejected_text?: string;
}

const readJsonl = <T>(f: string): T[] => fs.readFileSync(f, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as T);

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

const CASES: { dir: string; name: string; modelType: string; conv?: string }[] = [
  { dir: LLAMA_FIXTURES, name: 'model-llama-gqa-fp32', modelType: 'llama', conv: 'pairs_conv' },
  { dir: LLAMA_FIXTURES, name: 'model-qwen2-bf16', modelType: 'qwen2', conv: 'pairs_conv' },
  { dir: LLAMA_FAMILY_FIXTURES, name: 'mistral-spm-fp32', modelType: 'mistral', conv: 'pairs_conv' },
  { dir: LLAMA_FAMILY_FIXTURES, name: 'qwen3-fp32', modelType: 'qwen3', conv: 'pairs_conv' },
  { dir: LLAMA_FAMILY_FIXTURES, name: 'llama3-bias-fp16-sharded', modelType: 'llama', conv: 'pairs_conv_system' },
  { dir: LLAMA_FAMILY_FIXTURES, name: 'llama-linear-bf16', modelType: 'llama' },
];

for (const c of CASES) {
  test(`${c.name}: token ids and logits match transformers (float64) to 1e-4`, async () => {
    const ref = JSON.parse(fs.readFileSync(`${c.dir}/${c.name}.logits.json`, 'utf8')) as LogitsRef;
    const { model, tokenizer, config } = await loadModelDir(`${c.dir}/${c.name}`);
    assert.equal(config.model_type, c.modelType);
    assert.deepEqual(tokenizer!.encode(ref.text), ref.ids);
    const ids = tf.tensor2d([ref.ids], undefined, 'int32');
    const { logits, hidden } = model.forward(ids);
    assert.deepEqual(logits.shape, [1, ref.ids.length, model.vocabSize]);
    assert.deepEqual(hidden.shape, [1, ref.ids.length, model.hiddenSize]);
    const d = maxAbsDiff(logits.dataSync(), ref.logits.flat());
    console.log(`${c.name}: max |Δlogit| ${d.toExponential(2)} over ${ref.logits.flat().length} logits`);
    assert.ok(d < 1e-4, `max |Δlogit| ${d}`);
    tf.dispose([ids, logits, hidden]);
    model.dispose();
  });

  test(`${c.name}: completion log-probs of pairs.jsonl match to 1e-4`, async () => {
    const { model, tokenizer } = await loadModelDir(`${c.dir}/${c.name}`);
    const pairs = readJsonl<{ prompt: string; chosen: string; rejected: string }>(`${c.dir}/pairs.jsonl`);
    const want = readJsonl<PairRef>(`${c.dir}/${c.name}.pairs.expected.jsonl`);
    const items = pairs.flatMap((p) => {
      const promptIds = p.prompt ? tokenizer!.encode(p.prompt) : [];
      return [{ promptIds, completionIds: tokenizer!.encode(p.chosen) }, { promptIds, completionIds: tokenizer!.encode(p.rejected) }];
    });
    want.forEach((w, i) => {
      assert.deepEqual(items[2 * i]!.promptIds, w.prompt_ids);
      assert.deepEqual(items[2 * i]!.completionIds, w.chosen_ids);
      assert.deepEqual(items[2 * i + 1]!.completionIds, w.rejected_ids);
    });
    const got = await completionLogps(model, items, { batchSize: 4, padId: tokenizer!.padTokenId });
    want.forEach((w, i) => {
      assert.ok(Math.abs(got[2 * i]!.sum - w.chosen_logps) < 1e-4, `${i} chosen ${got[2 * i]!.sum} vs ${w.chosen_logps}`);
      assert.ok(Math.abs(got[2 * i + 1]!.sum - w.rejected_logps) < 1e-4, `${i} rejected ${got[2 * i + 1]!.sum} vs ${w.rejected_logps}`);
    });
    model.dispose();
  });

  if (c.conv) {
    test(`${c.name}: conversational records render with the model's chat template as TRL does, and score to 1e-4`, async () => {
      const { model, tokenizer } = await loadModelDir(`${c.dir}/${c.name}`);
      const recs = readJsonl<{ prompt: ChatMessage[]; chosen: ChatMessage[]; rejected: ChatMessage[] }>(`${c.dir}/${c.conv}.jsonl`);
      const want = readJsonl<PairRef>(`${c.dir}/${c.name}.${c.conv}.expected.jsonl`);
      const items = recs.flatMap((r, i) => {
        const ch = chatPromptCompletion(tokenizer!, r.prompt, r.chosen);
        const rj = chatPromptCompletion(tokenizer!, r.prompt, r.rejected);
        assert.equal(ch.prompt, want[i]!.prompt_text);
        assert.equal(ch.completion, want[i]!.chosen_text);
        assert.equal(rj.completion, want[i]!.rejected_text);
        const promptIds = tokenizer!.encode(ch.prompt);
        assert.deepEqual(promptIds, want[i]!.prompt_ids);
        return [{ promptIds, completionIds: tokenizer!.encode(ch.completion) }, { promptIds, completionIds: tokenizer!.encode(rj.completion) }];
      });
      const got = await completionLogps(model, items, { batchSize: 6, padId: tokenizer!.padTokenId });
      want.forEach((w, i) => {
        assert.deepEqual(items[2 * i]!.completionIds, w.chosen_ids);
        assert.ok(Math.abs(got[2 * i]!.sum - w.chosen_logps) < 1e-4, `${i} chosen`);
        assert.ok(Math.abs(got[2 * i + 1]!.sum - w.rejected_logps) < 1e-4, `${i} rejected`);
      });
      model.dispose();
    });
  }
}
