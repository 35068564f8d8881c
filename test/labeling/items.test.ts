// Search and filters over a batch's items, and one item's history, on a small batch labeled by
// three people (one disagreeing, one flagging, one skipping).
import test from 'node:test';
import assert from 'node:assert/strict';
import { freshDb, labeler, makePairs, seedBatch } from './helpers.js';
import { addPairs, createBatch } from '../../src/labeling/batches.js';
import { nextAssignment, skipAssignment, submitLabel } from '../../src/labeling/queue.js';
import { batchItems, itemHistory } from '../../src/labeling/items.js';

test('items: text search (prompt, answers, rationale), filters, by labeler, paging; history in time order', () => {
  const { db } = freshDb();
  const batch = seedBatch(db, 2, { quota: 3 });
  const [ann, bob, cid] = [labeler(db, 'ann'), labeler(db, 'bob'), labeler(db, 'cid')];
  const label = (u: typeof ann, choice: 'left' | 'right', extra: Record<string, unknown> = {}, now = Date.now()) => {
    const a = nextAssignment(db, batch.id, u, now)!;
    submitLabel(db, a.assignmentId, u, { choice, ...extra }, now + 5);
    return a;
  };
  // ann labels pairs 0 and 1; bob then gets pair 0 (least labeled, then queue order) and disagrees,
  // with a rationale and a flag; cid gets pair 1 and skips it. Then two more pairs arrive.
  const t = Date.now();
  const a0 = label(ann, 'left', {}, t);
  label(ann, 'left', {}, t + 10);
  const b0 = nextAssignment(db, batch.id, bob, t + 20)!;
  assert.equal(b0.prompt, a0.prompt);
  const annChoseA = a0.left.includes('answer A');
  const bobChoice = (b0.left.includes('answer A') === annChoseA) ? 'right' : 'left';
  submitLabel(db, b0.assignmentId, bob, { choice: bobChoice, rationale: 'Answer B cites a Source', flags: ['unsafe'] }, t + 30);
  const c0 = nextAssignment(db, batch.id, cid, t + 40)!;
  assert.notEqual(c0.prompt, a0.prompt);
  skipAssignment(db, c0.assignmentId, cid, 'not my language');
  addPairs(db, batch.id, makePairs(2, 'x'));

  const all = batchItems(db, batch.id);
  assert.equal(all.total, 4);
  const p0 = all.items.find((i) => i.prompt === a0.prompt)!;
  assert.deepEqual(p0.counts, { a: 1, b: 1 });
  assert.equal(p0.disagreement, 0.5);
  assert.deepEqual(p0.flags, ['unsafe']);
  assert.deepEqual(p0.labelers, ['ann', 'bob']);
  assert.equal(batchItems(db, batch.id, { filter: 'disputed' }).items.map((i) => i.pairId).join(), p0.pairId);
  assert.equal(batchItems(db, batch.id, { filter: 'flagged' }).total, 1);
  assert.equal(batchItems(db, batch.id, { filter: 'unlabeled' }).total, 2);
  assert.equal(batchItems(db, batch.id, { filter: 'skipped' }).items[0]!.prompt, c0.prompt);
  assert.equal(batchItems(db, batch.id, { labeler: ann.id }).total, 2);
  assert.equal(batchItems(db, batch.id, { labeler: bob.id, filter: 'disputed' }).total, 1);
  assert.equal(batchItems(db, batch.id, { q: 'CITES a source' }).items[0]!.pairId, p0.pairId, 'search reaches rationales, case-insensitive');
  assert.equal(batchItems(db, batch.id, { q: 'x answer b1' }).items[0]!.prompt, 'x prompt 1', 'search reaches responses');
  assert.equal(batchItems(db, batch.id, { q: 'no such text' }).total, 0);
  const page2 = batchItems(db, batch.id, { limit: 2, offset: 2 });
  assert.equal(page2.total, 4);
  assert.deepEqual(page2.items.map((i) => i.pairId), all.items.slice(2, 4).map((i) => i.pairId));

  const h = itemHistory(db, p0.pairId);
  assert.equal(h.pair.prompt, a0.prompt);
  assert.deepEqual(h.events.map((e) => [e.kind, 'user' in e ? e.user : e.annotator]), [
    ['leased', 'ann'], ['label', 'user:ann'], ['leased', 'bob'], ['label', 'user:bob'],
  ]);
  const hc = itemHistory(db, all.items.find((i) => i.prompt === c0.prompt)!.pairId);
  assert.deepEqual(hc.events.map((e) => e.kind), ['leased', 'label', 'leased', 'skipped']);
  const bobLabel = h.events.find((e) => e.kind === 'label' && e.annotator === 'user:bob');
  assert.ok(bobLabel && bobLabel.kind === 'label' && bobLabel.rationale === 'Answer B cites a Source' && bobLabel.flags[0] === 'unsafe');
  // Metadata: the answers' model artifact and sampling settings.
  addPairs(db, batch.id, [{ prompt: 'meta prompt', a: { text: 'plain', modelArtifactId: 'a-sft-checkpoint-7', sampling: { temperature: 0.7 } }, b: { text: 'plain too' } }]);
  assert.deepEqual(batchItems(db, batch.id, { q: 'A-SFT-CHECKPOINT-7' }).items.map((i) => i.prompt), ['meta prompt'], 'search reaches the model artifact id');
  assert.deepEqual(batchItems(db, batch.id, { q: '"temperature":0.7' }).items.map((i) => i.prompt), ['meta prompt'], 'search reaches sampling settings');
  assert.equal(batchItems(db, batch.id, { q: 'a-0000000000000002' }).total, 4, 'every generated pair has that model on side b');
  assert.equal(batchItems(db, batch.id, { filter: 'unlabeled' }).total, 3);
  assert.equal(batchItems(db, batch.id, { q: 'no such text' }).total, 0);
  // A ranking item: its third and fourth answers are searched too.
  const rb = createBatch(db, { name: 'ranking', kind: 'ranking', pairRule: 'all' });
  addPairs(db, rb.id, [{ prompt: 'rank me', a: { text: 'one' }, b: { text: 'two' }, rest: [{ text: 'three' }, { text: 'the fourth answer' }] }, { prompt: 'other', a: { text: 'x' }, b: { text: 'y' }, rest: [{ text: 'z' }] }]);
  assert.deepEqual(batchItems(db, rb.id, { q: 'FOURTH' }).items.map((i) => i.prompt), ['rank me'], 'search reaches every answer of a ranking item');
  assert.throws(() => itemHistory(db, 'p-nope'), /no pair/);
  assert.throws(() => batchItems(db, 'b-nope'), /no label batch/);
});
