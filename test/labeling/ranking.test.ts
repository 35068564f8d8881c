// Rankings of k answers: pair induction (both rules, with ties), validation of a submitted ranking,
// consensus of several labelers, Kendall's τ-b and pairwise agreement — known answers worked by hand.
import test from 'node:test';
import assert from 'node:assert/strict';
import { consensusRanks, groupsToRanks, inducePairs, kendallTauB, rankingAgreement, rankingIssues, ranksToGroups } from '../../src/labeling/ranking.js';

test('pair induction, rule all: every two answers of different rank; ties give no pair', () => {
  // 4 answers: #1 best, #0 and #2 tie second, #3 last → ranks [2, 1, 2, 3].
  const ranks = [2, 1, 2, 3];
  assert.deepEqual(inducePairs(ranks, 'all'), [
    [0, 3],
    [1, 0],
    [1, 2],
    [1, 3],
    [2, 3],
  ]);
  // C(4,2) = 6 comparisons, one of them a tie (0 ~ 2): 5 pairs.
  assert.equal(inducePairs([1, 2, 3, 4], 'all').length, 6);
  assert.deepEqual(inducePairs([1, 1, 1], 'all'), []);
});

test('pair induction, rule best_vs_rest: the best answer(s) against every answer ranked below', () => {
  assert.deepEqual(inducePairs([2, 1, 2, 3], 'best_vs_rest'), [
    [1, 0],
    [1, 2],
    [1, 3],
  ]);
  // Two answers tie for best: each against every worse one, never against each other.
  assert.deepEqual(inducePairs([1, 3, 1, 2], 'best_vs_rest'), [
    [0, 1],
    [0, 3],
    [2, 1],
    [2, 3],
  ]);
  assert.deepEqual(inducePairs([1, 1], 'best_vs_rest'), []);
  assert.deepEqual(inducePairs([2, 1], 'best_vs_rest'), [[1, 0]]);
});

test('a submitted ranking must be a weak ordering of exactly the answers 1..k', () => {
  assert.deepEqual(rankingIssues([[2], [1, 3], [4]], 4), []);
  assert.deepEqual(rankingIssues([[1, 2, 3, 4]], 4), [], 'all tied is a valid (if useless) ranking');
  assert.deepEqual(rankingIssues([[2], [1, 3]], 4), [{ field: 'ranking', reason: 'every answer must be ranked; missing: 4' }]);
  assert.deepEqual(rankingIssues([[2], [1, 2], [3, 4]], 4), [{ field: 'ranking[1]', reason: 'answer 2 appears twice (also in group 1)' }]);
  assert.deepEqual(rankingIssues([[1], [2], [5]], 2), [{ field: 'ranking[2]', reason: '5 is not an answer of this item (answers are 1..2)' }]);
  assert.deepEqual(rankingIssues([[1], [], [2]], 2), [{ field: 'ranking[1]', reason: 'must be a non-empty list of answer numbers (answers that tie)' }]);
  assert.equal(rankingIssues('1>2', 2)[0]!.field, 'ranking');
  assert.equal(rankingIssues(undefined, 2)[0]!.field, 'ranking');
});

test('groups and ranks convert both ways', () => {
  assert.deepEqual(groupsToRanks([[2], [1, 3], [4]], 4), [2, 1, 2, 3]);
  assert.deepEqual(ranksToGroups([2, 1, 2, 3]), [[1], [0, 2], [3]]);
});

test('consensus of several rankings: mean rank (Borda), equal means tie', () => {
  assert.deepEqual(consensusRanks([[1, 2, 3]]), [1, 2, 3]);
  // Means: [1.5, 1.5, 3] → answers 0 and 1 tie.
  assert.deepEqual(consensusRanks([[1, 2, 3], [2, 1, 3]]), [1, 1, 2]);
  // Means: [1, 2.5, 2.5, 3.5]... worked: [(1+1+1)/3, (2+3+2)/3, (3+2+3)/3, (4+4+4)/3] = [1, 7/3, 8/3, 4].
  assert.deepEqual(consensusRanks([[1, 2, 3, 4], [1, 3, 2, 4], [1, 2, 3, 4]]), [1, 2, 3, 4]);
});

test("Kendall's τ-b: identical 1, reversed −1, a worked example with ties", () => {
  assert.equal(kendallTauB([1, 2, 3, 4], [1, 2, 3, 4]), 1);
  assert.equal(kendallTauB([1, 2, 3, 4], [4, 3, 2, 1]), -1);
  // x = [1,2,3], y = [1,1,2]: pairs (0,1): x differs, y tied; (0,2): concordant; (1,2): concordant.
  // C = 2, D = 0, n0 = 3, T_x = 0, T_y = 1 → τ_b = 2 / √(3 · 2) = 0.8165.
  assert.ok(Math.abs(kendallTauB([1, 2, 3], [1, 1, 2])! - 2 / Math.sqrt(6)) < 1e-12);
  assert.equal(kendallTauB([1, 1, 1], [1, 2, 3]), null);
  // One swap among 4: C = 5, D = 1 → 4/6.
  assert.ok(Math.abs(kendallTauB([1, 2, 3, 4], [2, 1, 3, 4])! - 4 / 6) < 1e-12);
});

test('ranking agreement: mean τ-b and pairwise agreement between labelers on shared items', () => {
  const r = rankingAgreement([
    { itemId: 'i1', annotator: 'ann', ranks: [1, 2, 3, 4] },
    { itemId: 'i1', annotator: 'bob', ranks: [2, 1, 3, 4] },
    { itemId: 'i2', annotator: 'ann', ranks: [1, 2, 3] },
    { itemId: 'i2', annotator: 'bob', ranks: [1, 2, 3] },
    { itemId: 'i3', annotator: 'ann', ranks: [1, 2] }, // labeled once: no comparison
  ]);
  // i1: τ 4/6, 5 of 6 answer pairs agree; i2: τ 1, 3 of 3 agree.
  assert.ok(Math.abs(r.meanTau! - (4 / 6 + 1) / 2) < 1e-12);
  assert.equal(r.comparisons, 2);
  assert.equal(r.pairwiseAgreement, 8 / 9);
  assert.deepEqual(r.byPair.map((p) => [p.a, p.b, p.items]), [['ann', 'bob', 2]]);
  assert.deepEqual(rankingAgreement([{ itemId: 'x', annotator: 'ann', ranks: [1, 2] }]), { meanTau: null, comparisons: 0, pairwiseAgreement: null, byPair: [] });
});
