// Suggestions: with `suggestions` on, a labeler sees the higher-scored response pre-selected (in
// screen terms, whichever side it landed on); the label records what was suggested (recomputed by
// the server), and the batch's figures say how often labelers followed it.
import test from 'node:test';
import assert from 'node:assert/strict';
import { freshDb, labeler } from './helpers.js';
import { addPairs, createBatch } from '../../src/labeling/batches.js';
import { nextAssignment, submitLabel } from '../../src/labeling/queue.js';
import { batchStats } from '../../src/labeling/stats.js';

test('suggestions: pre-annotation in screen terms, recorded per label, follow rate per labeler', () => {
  const { db } = freshDb();
  const pairs = Array.from({ length: 6 }, (_, i) => ({
    prompt: `p${i}`,
    // a scores higher on pairs 0–3, b on 4, equal on 5 (a tie is suggested); no scores: none.
    a: { text: `a${i}`, score: i < 4 ? 0.9 : i === 4 ? 0.1 : 0.5 },
    b: { text: `b${i}`, score: i < 4 ? 0.2 : i === 4 ? 0.8 : 0.5 },
  }));
  const on = createBatch(db, { name: 'with suggestions', quota: 1, suggestions: true });
  addPairs(db, on.id, [...pairs, { prompt: 'unscored', a: { text: 'ua' }, b: { text: 'ub' } }]);
  const off = createBatch(db, { name: 'without', quota: 1 });
  addPairs(db, off.id, pairs.slice(0, 1));
  const ann = labeler(db, 'ann'), bob = labeler(db, 'bob');

  const seen: Record<string, string | undefined> = {};
  let followed = 0;
  for (const u of [ann, bob]) {
    for (let k = 0; k < 4; k++) {
      const a = nextAssignment(db, on.id, u);
      if (!a) break;
      const s = a.suggestion;
      seen[a.prompt] = s?.choice;
      if (s) {
        const aOnLeft = a.left.startsWith('a');
        assert.equal(s.scoreLeft, pairs.find((p) => p.prompt === a.prompt)![aOnLeft ? 'a' : 'b'].score);
      }
      // ann always follows; bob always picks the other side.
      const choice = !s ? 'left' : u === ann ? s.choice : s.choice === 'left' ? 'right' : 'left';
      if (s && u === ann) followed++;
      submitLabel(db, a.assignmentId, u, { choice });
    }
  }
  const aLeft = (p: string) => db.$client.prepare(`SELECT l.shown_left AS s FROM labels l JOIN pairs p ON p.id = l.pair_id WHERE p.prompt = ? AND p.batch_id = ?`).get(p, on.id) as { s: string };
  for (const [prompt, choice] of Object.entries(seen)) {
    const i = Number(prompt.slice(1));
    if (prompt === 'unscored') assert.equal(choice, undefined);
    else if (i === 5) assert.equal(choice, 'tie');
    else {
      const better = i < 4 ? 'a' : 'b';
      assert.equal(choice, aLeft(prompt).s === better ? 'left' : 'right', `${prompt}: the higher-scored side, where it was shown`);
    }
  }
  const stored = db.$client.prepare(`SELECT p.prompt, l.suggested, l.decision, l.source FROM labels l JOIN pairs p ON p.id = l.pair_id WHERE p.batch_id = ?`).all(on.id) as { prompt: string; suggested: string | null; decision: string; source: string }[];
  assert.equal(stored.length, 7);
  for (const r of stored) {
    const i = Number(r.prompt.slice(1));
    assert.equal(r.suggested, r.prompt === 'unscored' ? null : i === 5 ? 'tie' : i < 4 ? 'a' : 'b');
  }
  const st = batchStats(db, on.id).suggestions;
  assert.equal(st.shown, 6);
  assert.equal(st.followed, followed);
  const byAnn = st.byAnnotator.find((x) => x.annotator === 'user:ann')!;
  const byBob = st.byAnnotator.find((x) => x.annotator === 'user:bob')!;
  assert.equal(byAnn.rate, 1);
  assert.equal(byBob.followed, 0);
  assert.equal(st.rate, followed / 6);
  // Without the batch setting nothing is suggested or recorded, scores or not.
  const x = nextAssignment(db, off.id, ann)!;
  assert.equal(x.suggestion, undefined);
  submitLabel(db, x.assignmentId, ann, { choice: 'left' });
  assert.equal(batchStats(db, off.id).suggestions.shown, 0);
});
