import { test } from 'node:test';
import assert from 'node:assert/strict';
import { freshDb, labeler, makePairs, seedBatch } from './helpers.js';
import { nextAssignment, submitLabel, skipAssignment, undoLastLabel } from '../../src/labeling/queue.js';
import { addPairs, batchProgress, closeBatch, createBatch } from '../../src/labeling/batches.js';
import { ConflictError, ForbiddenError } from '../../src/labeling/errors.js';
import { batchStats } from '../../src/labeling/stats.js';
import { preferenceRecords, rawLabels } from '../../src/labeling/export.js';
import { verifyToken, revokeUser, hashToken } from '../../src/labeling/users.js';

test('tokens: verified by hash, never stored in clear, revocable', () => {
  const { db } = freshDb();
  const u = labeler(db, 'alice');
  assert.deepEqual(verifyToken(db, u.token), { id: u.id, name: 'alice', role: 'labeler' });
  const row = db.$client.prepare('SELECT token_hash FROM api_tokens').get() as { token_hash: string };
  assert.equal(row.token_hash, hashToken(u.token));
  assert.ok(!JSON.stringify(db.$client.prepare('SELECT * FROM api_tokens').all()).includes(u.token));
  assert.equal(verifyToken(db, u.token + 'x'), undefined);
  revokeUser(db, 'alice');
  assert.equal(verifyToken(db, u.token), undefined);
});

test('a lease goes to one labeler; expired leases return to the pool', () => {
  const { db } = freshDb();
  const b = seedBatch(db, 1, { quota: 1, leaseSeconds: 10 });
  const x = labeler(db, 'x');
  const y = labeler(db, 'y');
  const t0 = 1_000_000;
  const ax = nextAssignment(db, b.id, x, t0);
  assert.ok(ax);
  // same labeler asking again gets the same lease back, not a second one
  assert.equal(nextAssignment(db, b.id, x, t0 + 1)!.assignmentId, ax.assignmentId);
  // quota 1 and a live lease: nothing for y
  assert.equal(nextAssignment(db, b.id, y, t0 + 5_000), null);
  // after expiry, y gets it; x never sees it again
  const ay = nextAssignment(db, b.id, y, t0 + 10_001);
  assert.ok(ay);
  assert.equal(ay.prompt, ax.prompt);
  assert.equal(nextAssignment(db, b.id, x, t0 + 10_002), null);
  // x's late submission is refused: y holds the last slot
  assert.throws(() => submitLabel(db, ax.assignmentId, x, { choice: 'left' }, t0 + 10_003), ConflictError);
  submitLabel(db, ay.assignmentId, y, { choice: 'left' }, t0 + 10_004);
  assert.equal(batchProgress(db, b.id).completePairs, 1);
});

test('quota: a pair gets exactly quota labels, each labeler at most once', () => {
  const { db } = freshDb();
  const b = seedBatch(db, 3, { quota: 2 });
  const users = ['u1', 'u2', 'u3', 'u4'].map((n) => labeler(db, n));
  const seen = new Map<string, Set<string>>();
  for (let round = 0; round < 5; round++) {
    for (const u of users) {
      const a = nextAssignment(db, b.id, u);
      if (!a) continue;
      const s = seen.get(u.id) ?? new Set();
      assert.ok(!s.has(a.prompt), `${u.name} saw "${a.prompt}" twice`);
      s.add(a.prompt);
      seen.set(u.id, s);
      submitLabel(db, a.assignmentId, u, { choice: round % 2 ? 'left' : 'right', durationMs: 1000 });
    }
  }
  const counts = db.$client.prepare('SELECT label_count AS n, (SELECT count(*) FROM labels l WHERE l.pair_id = p.id) AS real FROM pairs p').all() as { n: number; real: number }[];
  assert.deepEqual(counts.map((c) => c.n), [2, 2, 2]);
  assert.deepEqual(counts.map((c) => c.real), [2, 2, 2]);
  assert.deepEqual(batchProgress(db, b.id), { ...batchProgress(db, b.id), done: 6, total: 6, completePairs: 3 });
});

test('decisions are stored in response terms; the screen side only in shown_left', () => {
  const { db } = freshDb();
  const b = seedBatch(db, 40, { quota: 1 });
  const u = labeler(db, 'u');
  let lefts = 0;
  for (let i = 0; i < 40; i++) {
    const a = nextAssignment(db, b.id, u)!;
    const leftIsA = a.left.includes('answer A');
    if (leftIsA) lefts++;
    const r = submitLabel(db, a.assignmentId, u, { choice: 'left' });
    assert.equal(r.decision, leftIsA ? 'a' : 'b');
  }
  assert.ok(lefts > 5 && lefts < 35, `left/right order must be randomized (A shown left ${lefts}/40)`);
  const st = batchStats(db, b.id);
  assert.equal(st.positionBias.leftWinRate, 1);
  const raw = rawLabels(db, b.id);
  assert.ok(raw.every((r) => r.decision === r.shown_left));
});

test('skip with reason; undo the last label restores the lease with the old answer', () => {
  const { db } = freshDb();
  const b = seedBatch(db, 3, { quota: 1 });
  const u = labeler(db, 'u');
  const other = labeler(db, 'other');
  const a1 = nextAssignment(db, b.id, u)!;
  assert.throws(() => skipAssignment(db, a1.assignmentId, u, ''), /reason/);
  assert.throws(() => skipAssignment(db, a1.assignmentId, other, 'x'), ForbiddenError);
  skipAssignment(db, a1.assignmentId, u, 'not my language');
  const a2 = nextAssignment(db, b.id, u)!;
  assert.notEqual(a2.prompt, a1.prompt);
  submitLabel(db, a2.assignmentId, u, { choice: 'right', strength: 3, rationale: 'better', flags: ['unsafe'] });
  assert.throws(() => submitLabel(db, a2.assignmentId, u, { choice: 'left' }), /already labeled/);
  const back = undoLastLabel(db, b.id, u);
  assert.equal(back.assignmentId, a2.assignmentId);
  assert.deepEqual(back.previous, { choice: 'right', strength: 3, rationale: 'better', flags: ['unsafe'] });
  assert.equal(batchProgress(db, b.id).labels, 0);
  assert.equal(nextAssignment(db, b.id, u)!.assignmentId, a2.assignmentId);
  submitLabel(db, a2.assignmentId, u, { choice: 'tie' });
  assert.equal(batchProgress(db, b.id).labels, 1);
  // the skipped pair went back to the pool for someone else
  assert.equal(nextAssignment(db, b.id, other)!.prompt, a1.prompt);
});

test('closing refuses late submissions with a message and keeps earlier ones', () => {
  const { db } = freshDb();
  const b = seedBatch(db, 2, { quota: 1 });
  const u = labeler(db, 'u');
  const v = labeler(db, 'v');
  const a = nextAssignment(db, b.id, u)!;
  const c = nextAssignment(db, b.id, v)!;
  submitLabel(db, a.assignmentId, u, { choice: 'left' });
  closeBatch(db, b.id);
  assert.throws(() => submitLabel(db, c.assignmentId, v, { choice: 'left' }), /closed before this label arrived; it was not stored/);
  assert.throws(() => undoLastLabel(db, b.id, u), /closed/);
  assert.equal(nextAssignment(db, b.id, v), null);
  assert.equal(rawLabels(db, b.id).length, 1);
});

test('input validation of labels', () => {
  const { db } = freshDb();
  const b = seedBatch(db, 1);
  const u = labeler(db, 'u');
  const a = nextAssignment(db, b.id, u)!;
  for (const bad of [{ choice: 'up' }, { choice: 'left', strength: 4 }, { choice: 'tie', strength: 2 }, { choice: 'left', flags: ['nice'] }, { choice: 'left', durationMs: -1 }]) {
    assert.throws(() => submitLabel(db, a.assignmentId, u, bad as never), /invalid label/);
  }
  assert.equal(batchProgress(db, b.id).labels, 0);
});

test('gold pairs are mixed in at the configured rate and scored', () => {
  const { db } = freshDb();
  const batch = createBatch(db, { name: 'g', quota: 1, goldRate: 0.2 });
  const gold = Array.from({ length: 10 }, (_, i) => ({ prompt: `gold ${i}`, chosen: `good ${i}`, rejected: `bad ${i}` }));
  const r = addPairs(db, batch.id, makePairs(16), { gold, seed: 7 });
  assert.equal(r.gold, 4); // 4 / (16 + 4) = 0.2
  const p = batchProgress(db, batch.id);
  assert.equal(p.pairs, 16);
  assert.equal(p.goldPairs, 4);
  // gold spread through the queue, not all at the end
  const order = db.$client.prepare('SELECT is_gold FROM pairs WHERE batch_id = ? ORDER BY created_at, id').all(batch.id) as { is_gold: number }[];
  assert.notDeepEqual(order.map((o) => o.is_gold), [...Array(16).fill(0), ...Array(4).fill(1)]);
  const u = labeler(db, 'u');
  for (;;) {
    const a = nextAssignment(db, batch.id, u);
    if (!a) break;
    // always pick the "good" text when it is gold, else left
    const choice = a.left.startsWith('good') ? 'left' : a.right.startsWith('good') ? 'right' : 'left';
    submitLabel(db, a.assignmentId, u, { choice });
  }
  const st = batchStats(db, batch.id);
  assert.deepEqual(st.gold, [{ annotator: 'user:u', correct: 4, total: 4, accuracy: 1 }]);
  const prefs = preferenceRecords(db, batch.id);
  assert.equal(prefs.records.length, 16); // gold pairs are not exported as preferences
});
