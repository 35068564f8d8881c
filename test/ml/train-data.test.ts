import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DataCursor, collate, packExamples, prepareSftExamples, ExampleBatches } from '../../src/ml/train/data.js';

test('the data cursor shuffles per epoch deterministically and resumes exactly', () => {
  const a = new DataCursor(10, 3);
  const first = a.take(10);
  assert.deepEqual([...first].sort((x, y) => x - y), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  const second = a.take(10);
  assert.notDeepEqual(first, second, 'each epoch gets its own permutation');
  assert.deepEqual(new DataCursor(10, 3).take(20), [...first, ...second]);
  // resume mid-epoch from a JSON round trip
  const b = new DataCursor(10, 3);
  b.take(13);
  const saved = JSON.parse(JSON.stringify(b.state()));
  const rest = b.take(9);
  const c = new DataCursor(10, 3, saved);
  assert.deepEqual(c.take(9), rest);
  assert.equal(c.epochFloat(), 2.2);
  assert.throws(() => new DataCursor(11, 3, saved), /saved over 10 examples/);
});

test('collation right-pads to the longest sequence of the batch, with attention and loss masks', () => {
  const b = collate(
    [
      { ids: [5, 6, 7], lossMask: [0, 1, 1] },
      { ids: [8, 9], lossMask: [1, 1] },
    ],
    0,
  );
  assert.equal(b.seqLen, 3);
  assert.deepEqual([...b.ids], [5, 6, 7, 8, 9, 0]);
  assert.deepEqual([...b.attentionMask], [1, 1, 1, 1, 1, 0]);
  assert.deepEqual([...b.lossMask], [0, 1, 1, 0, 1, 0]); // position 0 is never a target
  assert.equal(b.targetTokens, 3);
});

test('SFT truncation rule: completion cut on the right; prompt ≥ max_length dropped; all counted', () => {
  const { examples, stats, kept } = prepareSftExamples(
    [
      { promptIds: [1, 2], completionIds: [3, 4] }, // fits
      { promptIds: [1, 2, 3], completionIds: [4, 5, 6, 7] }, // completion cut to 2
      { promptIds: [1, 2, 3, 4, 5], completionIds: [6] }, // prompt fills max_length: dropped
      { promptIds: [1], completionIds: [] }, // empty completion: dropped
      { promptIds: [], completionIds: [7, 8, 9] }, // empty prompt: first token is context only
    ],
    5,
  );
  assert.deepEqual(stats, { kept: 2, truncated: 1, dropped: 2 });
  assert.deepEqual(kept, [0, 1, 4]);
  assert.deepEqual(examples[1], { ids: [1, 2, 3, 4, 5], lossMask: [0, 0, 0, 1, 1] });
  assert.deepEqual(examples[2], { ids: [7, 8, 9], lossMask: [0, 1, 1] });
});

test('packing concatenates whole examples into rows ≤ max_length; only completion tokens are targets', () => {
  const ex = [
    { ids: [1, 2, 3], lossMask: [0, 1, 1] },
    { ids: [4, 5], lossMask: [0, 1] },
    { ids: [6, 7, 8, 9], lossMask: [0, 0, 1, 1] },
  ];
  const rows = packExamples(ex, 6);
  assert.deepEqual(rows, [
    { ids: [1, 2, 3, 4, 5], lossMask: [0, 1, 1, 0, 1] },
    { ids: [6, 7, 8, 9], lossMask: [0, 0, 1, 1] },
  ]);
  assert.throws(() => packExamples(ex, 3), /exceeds maxLength/);
});

test('ExampleBatches: same-size batches across epoch boundaries; state round-trips', () => {
  const ex = Array.from({ length: 5 }, (_, i) => ({ ids: [i + 1, i + 2], lossMask: [0, 1] }));
  const src = new ExampleBatches(ex, 2, 0, 9);
  src.next();
  src.next();
  const s = src.state();
  const b = src.next(); // crosses into epoch 2
  assert.equal(b.batchSize, 2);
  const again = new ExampleBatches(ex, 2, 0, 9);
  again.restore(s);
  assert.deepEqual([...again.next().ids], [...b.ids]);
  assert.equal(src.epoch(), 1.2);
});
