// Reference log-probs are computed once per key and stored as a 'ref-logprobs' artifact; a second
// run with the same key reads the artifact and never runs (or even loads) the reference model.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { initBackend } from '../../src/ml/backend.js';
import { createGpt2 } from '../../src/ml/models/gpt2.js';
import { openDb } from '../../src/store/db.js';
import { createLocalStore } from '../../src/store/artifacts.js';
import { preparePairs } from '../../src/ml/preference-data.js';
import { computeRefLogps } from '../../src/ml/dpo.js';
import { loadOrComputeRefLogps, refLogpsKey, refLogpsKeyHash } from '../../src/ml/ref-logprobs.js';
import type { CausalLM } from '../../src/ml/models/types.js';
import { toyPairs, PAD } from './dpo-toy-data.js';
import { tmpDir } from '../helpers/tmp.js';
import { GPT2_FIXTURES } from '../helpers/fixtures.js';

before(async () => {
  await initBackend();
});

test('ref log-probs: computed once, reused by key, recomputed when the key changes', async () => {
  const home = tmpDir();
  const db = openDb(path.join(home, 'state.db'));
  const store = createLocalStore(db, home);
  const cfg = { vocab_size: 32, n_positions: 32, n_embd: 16, n_layer: 1, n_head: 2 };
  const rule = { maxLength: 32 };
  const { pairs } = preparePairs(toyPairs(20, 3), rule);
  // lineage needs real input artifacts
  const ds = await store.put({ kind: 'dataset', name: 'toy', files: [{ path: 'data.jsonl', data: Buffer.from('{}\n') }] });
  const refArt = await store.put({ kind: 'model', name: 'ref', files: [{ path: 'config.json', data: Buffer.from('{}') }] });
  const key = refLogpsKey({ dataset: ds.id, reference: refArt.id, tokenizer: 'tok', rule });

  // count forward calls of the reference model
  let forwards = 0;
  let loads = 0;
  const counting = (): CausalLM => {
    loads++;
    const m = createGpt2(cfg, 9);
    const fwd = m.forward.bind(m);
    m.forward = (ids, o) => (forwards++, fwd(ids, o));
    return m;
  };
  const first = await loadOrComputeRefLogps({ store, key, prepared: pairs, loadReference: async () => counting(), batchSize: 8, padId: PAD });
  assert.equal(first.reused, false);
  assert.equal(loads, 1);
  assert.equal(forwards, 3); // 20 pairs in batches of 8, chosen+rejected in one forward each
  assert.equal(first.artifact.kind, 'ref-logprobs');
  assert.equal(first.artifact.metadata.key_hash, refLogpsKeyHash(key));
  assert.deepEqual((await store.findByMetadata('ref-logprobs', 'key_hash', refLogpsKeyHash(key))).map((m) => m.id), [first.artifact.id]);

  // the stored values are the reference's log-probs
  const direct = await computeRefLogps(createGpt2(cfg, 9), pairs, { batchSize: 20, padId: PAD });
  direct.chosen.forEach((v, i) => assert.ok(Math.abs(v - first.ref.chosen[i]!) < 1e-4, `chosen ${i}`));

  // same key: the reference is never loaded nor run
  const second = await loadOrComputeRefLogps({
    store,
    key,
    prepared: pairs,
    loadReference: async () => {
      throw new Error('the reference model must not be used on a cache hit');
    },
    batchSize: 8,
    padId: PAD,
  });
  assert.equal(second.reused, true);
  assert.equal(second.artifact.id, first.artifact.id);
  assert.deepEqual(Array.from(second.ref.chosen), Array.from(first.ref.chosen));
  assert.deepEqual(Array.from(second.ref.rejected), Array.from(first.ref.rejected));
  assert.equal(forwards, 3);

  // another max length is another key: computed again
  const rule2 = { maxLength: 16 };
  const p2 = preparePairs(toyPairs(20, 3), rule2).pairs;
  const third = await loadOrComputeRefLogps({
    store,
    key: refLogpsKey({ dataset: key.dataset, reference: key.reference, tokenizer: 'tok', rule: rule2 }),
    prepared: p2,
    loadReference: async () => counting(),
    batchSize: 8,
    padId: PAD,
  });
  assert.equal(third.reused, false);
  assert.notEqual(third.artifact.id, first.artifact.id);
  assert.equal(loads, 2);
  db.$client.close();
});

test('the batched [chosen; rejected] forward gives the independently computed log-probs of the GPT-2 fixtures', async (t) => {
  const { loadModelDir } = await import('../../src/ml/models/io.js');
  const fs = await import('node:fs');
  const root = GPT2_FIXTURES;
  const { model } = await loadModelDir(path.join(root, 'model-fp32'));
  const rows = fs
    .readFileSync(path.join(root, 'model-fp32.pairs.expected.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  const prepared = rows.map((r, index) => ({ index, promptIds: r.prompt_ids, chosenIds: r.chosen_ids, rejectedIds: r.rejected_ids }));
  // batches of 4 pairs: 8 rows of different lengths padded to the longest
  const got = await computeRefLogps(model, prepared, { batchSize: 4, padId: 0 });
  rows.forEach((r, i) => {
    assert.ok(Math.abs(got.chosen[i]! - r.chosen_logps) < 2e-3, `pair ${i} chosen ${got.chosen[i]} vs ${r.chosen_logps}`);
    assert.ok(Math.abs(got.rejected[i]! - r.rejected_logps) < 2e-3, `pair ${i} rejected ${got.rejected[i]} vs ${r.rejected_logps}`);
  });
  model.dispose();
});
