// Suggestions: with `suggestions` on, a labeler sees the higher-scored response pre-selected (in
// screen terms, whichever side it landed on); the label records what was suggested (recomputed by
// the server), and the batch's figures say how often labelers followed it.
import test from 'node:test';
import assert from 'node:assert/strict';
import { freshDb, labeler } from './helpers.js';
import { addPairs, createBatch } from '../../src/labeling/batches.js';
import { nextAssignment, submitLabel, suggestedRanks, type PairSuggestion, type RankingSuggestion } from '../../src/labeling/queue.js';
import { rawRankings } from '../../src/labeling/export.js';
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
      const s = a.suggestion as PairSuggestion | undefined;
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
  assert.equal(batchStats(db, on.id).suggestions.meanTau, null, 'τ-b to the suggestion is a ranking figure');
});

test('suggestedRanks: higher score ranked better, equal scores tied, none with an answer unscored', () => {
  assert.deepEqual(suggestedRanks([0.1, 0.9, -1, 0.5]), [3, 1, 4, 2]);
  assert.deepEqual(suggestedRanks([0.5, 0.9, 0.5, 0.1]), [2, 1, 2, 3]);
  assert.deepEqual(suggestedRanks([2, 2]), [1, 1]);
  assert.equal(suggestedRanks([1, null, 0]), null);
});

// Ranking items: the suggestion is the order of the answers' scores (ties where equal), in screen
// terms (groups of shown answer numbers, the form a labeler submits); each label records the
// suggested order in item order; the figures give exact follows and τ-b to the suggestion.
test("ranking suggestions: the scores' order in screen terms, recorded per label, exact follows and τ-b per labeler", () => {
  const { db } = freshDb();
  // Item order of scores: 0 strict [3,1,4,2], 1 with a tie [2,1,2,3], 2 one answer unscored (no
  // suggestion), 3 every score equal (all tied: τ-b undefined).
  const scores: (number | null)[][] = [[0.1, 0.9, -1, 0.5], [0.5, 0.9, 0.5, 0.1], [0.3, null, 0.2, 0.1], [1, 1, 1, 1]];
  const items = scores.map((sc, i) => {
    const [a, b, ...rest] = sc.map((score, j) => ({ text: `item ${i} answer ${j}`, score }));
    return { prompt: `r${i}`, a: a!, b: b!, rest };
  });
  const batch = createBatch(db, { name: 'ranked with suggestions', kind: 'ranking', quota: 2, suggestions: true });
  addPairs(db, batch.id, items);
  const ann = labeler(db, 'ann'), bob = labeler(db, 'bob');
  const expected = scores.map((sc) => suggestedRanks(sc));
  for (const u of [ann, bob]) {
    for (;;) {
      const a = nextAssignment(db, batch.id, u);
      if (!a) break;
      const i = Number(a.prompt.slice(1));
      const s = a.suggestion as RankingSuggestion | undefined;
      if (!expected[i]) {
        assert.equal(s, undefined, `${a.prompt}: an answer without a score, no suggestion`);
        submitLabel(db, a.assignmentId, u, { ranking: a.answers!.map((_, n) => [n + 1]) });
        continue;
      }
      // Shown answer n is "item i answer j": its suggested group holds the answers of its rank.
      const itemIndex = a.answers!.map((t) => Number(t.split(' ').pop()));
      assert.deepEqual(s!.scores, itemIndex.map((j) => scores[i]![j]));
      const rankOfShown = (n: number) => s!.ranking.findIndex((g) => g.includes(n)) + 1;
      assert.deepEqual(itemIndex.map((j, pos) => [j, rankOfShown(pos + 1)]).sort((x, y) => x[0]! - y[0]!).map((x) => x[1]), expected[i], a.prompt);
      assert.deepEqual(s!.ranking.flat().sort(), [1, 2, 3, 4]);
      // ann accepts the suggestion as is; bob reverses it.
      submitLabel(db, a.assignmentId, u, { ranking: u === ann ? s!.ranking : [...s!.ranking].reverse() });
    }
  }
  const stored = db.$client.prepare(`SELECT p.prompt, l.source, l.ranking, l.suggested_ranking, l.suggested FROM labels l JOIN pairs p ON p.id = l.pair_id ORDER BY p.prompt, l.source`).all() as { prompt: string; source: string; ranking: string; suggested_ranking: string | null; suggested: string | null }[];
  assert.equal(stored.length, 8);
  for (const r of stored) {
    const i = Number(r.prompt.slice(1));
    assert.deepEqual(r.suggested_ranking === null ? null : JSON.parse(r.suggested_ranking), expected[i], `${r.prompt} ${r.source}`);
    assert.equal(r.suggested, null, 'a ranking label keeps its suggestion as an order, not a pair pick');
    if (r.source === 'user:ann' && expected[i]) assert.deepEqual(JSON.parse(r.ranking), expected[i]);
  }
  const st = batchStats(db, batch.id).suggestions;
  const byAnn = st.byAnnotator.find((x) => x.annotator === 'user:ann')!;
  const byBob = st.byAnnotator.find((x) => x.annotator === 'user:bob')!;
  // 3 suggested items each; ann follows all; bob's reversal equals the suggestion only where
  // every answer ties (r3). τ-b leaves r3 out (undefined with every answer tied): ann 1, bob −1.
  assert.deepEqual([byAnn.shown, byAnn.followed, byAnn.rate, byAnn.meanTau, byAnn.tauLabels], [3, 3, 1, 1, 2]);
  assert.deepEqual([byBob.shown, byBob.followed, byBob.meanTau, byBob.tauLabels], [3, 1, -1, 2]);
  assert.ok(Math.abs(byBob.rate - 1 / 3) < 1e-12);
  assert.deepEqual([st.shown, st.followed, st.meanTau, st.tauLabels], [6, 4, 0, 4]);
  // The raw rankings export carries the suggested order beside the label.
  const raw = rawRankings(db, batch.id);
  assert.equal(raw.filter((r) => r.suggested_ranks).length, 6);
  assert.deepEqual(raw.find((r) => r.prompt === 'r0' && r.annotator === 'user:ann')!.suggested_ranks, [3, 1, 4, 2]);
});
