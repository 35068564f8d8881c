import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  krippendorffAlphaNominal,
  cohenKappa,
  pairwiseKappa,
  goldAccuracy,
  positionBias,
  disputedPairs,
  timePerLabel,
  type LabelObs,
} from '../../src/labeling/agreement.js';
import { resolvePair } from '../../src/labeling/resolve.js';

test('Krippendorff α nominal: the worked example of Krippendorff (2011), 4 observers × 12 units → 0.743', () => {
  // Rows are observers A..D, columns units 1..12, null = missing ("Computing Krippendorff's Alpha-Reliability", C).
  const data = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, null, null, null],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, null, 3],
    [null, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, null],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, null],
  ];
  const units = data[0]!.map((_, u) => data.map((row) => row[u]).filter((v): v is number => v !== null).map(String));
  const alpha = krippendorffAlphaNominal(units);
  assert.ok(alpha !== null);
  assert.equal(alpha.toFixed(3), '0.743');
});

test('α is 1 under perfect agreement, null when undefined, negative under systematic disagreement', () => {
  assert.equal(krippendorffAlphaNominal([['a', 'a'], ['b', 'b'], ['tie', 'tie']]), 1);
  assert.equal(krippendorffAlphaNominal([['a', 'a'], ['a', 'a']]), null); // no expected disagreement
  assert.equal(krippendorffAlphaNominal([['a']]), null);
  const a = krippendorffAlphaNominal([['a', 'b'], ['b', 'a']]);
  assert.ok(a !== null && a < 0);
  // Two coders, units (a,a) (a,b): n=4, o_ab=o_ba=1, n_a=3, n_b=1 → α = 1 − 3·2/(3+3) = 0
  assert.equal(krippendorffAlphaNominal([['a', 'a'], ['a', 'b']]), 0);
});

test("Cohen's κ: the textbook 2×2 example (20 yes/yes, 5 yes/no, 10 no/yes, 15 no/no) → 0.4", () => {
  const pairs: [string, string][] = [];
  const push = (n: number, x: string, y: string) => { for (let i = 0; i < n; i++) pairs.push([x, y]); };
  push(20, 'yes', 'yes');
  push(5, 'yes', 'no');
  push(10, 'no', 'yes');
  push(15, 'no', 'no');
  assert.ok(Math.abs(cohenKappa(pairs)! - 0.4) < 1e-12);
  assert.equal(cohenKappa([]), null);
  assert.equal(cohenKappa([['a', 'a'], ['a', 'a']]), null);
  assert.equal(cohenKappa([['a', 'a'], ['b', 'b']]), 1);
});

const L = (pairId: string, annotator: string, decision: LabelObs['decision'], extra: Partial<LabelObs> = {}): LabelObs => ({ pairId, annotator, decision, ...extra });

test('pairwise κ only over annotators with enough common items; mean of defined values', () => {
  const labels = [
    L('p1', 'x', 'a'), L('p2', 'x', 'b'), L('p3', 'x', 'a'),
    L('p1', 'y', 'a'), L('p2', 'y', 'b'), L('p3', 'y', 'a'),
    L('p1', 'z', 'a'),
  ];
  const k = pairwiseKappa(labels, 2);
  assert.equal(k.pairs.length, 1);
  assert.deepEqual([k.pairs[0]!.a, k.pairs[0]!.b, k.pairs[0]!.items, k.pairs[0]!.kappa], ['x', 'y', 3, 1]);
  assert.equal(k.mean, 1);
});

test('gold accuracy, position bias, time per label, disputed pairs', () => {
  const gold = new Map([['g1', 'a'], ['g2', 'b']]);
  const labels = [
    L('g1', 'x', 'a', { shownLeft: 'a', durationMs: 1000 }),
    L('g2', 'x', 'a', { shownLeft: 'a', durationMs: 3000 }),
    L('g1', 'y', 'a', { shownLeft: 'b', durationMs: 2000 }),
    L('p1', 'y', 'tie', { shownLeft: 'a' }),
    L('p1', 'x', 'b', { shownLeft: 'b', durationMs: 5000 }),
  ];
  assert.deepEqual(goldAccuracy(labels, gold), [
    { annotator: 'x', correct: 1, total: 2, accuracy: 0.5 },
    { annotator: 'y', correct: 1, total: 1, accuracy: 1 },
  ]);
  const pb = positionBias(labels);
  assert.equal(pb.decided, 4);
  assert.equal(pb.leftWins, 3); // x/g1 left a chose a; x/g2 left a chose a; x/p1 left b chose b; y/g1 left b chose a
  assert.equal(pb.leftWinRate, 0.75);
  assert.equal(pb.z, (3 - 2) / 1);
  const t = timePerLabel(labels);
  assert.deepEqual(t.find((r) => r.annotator === 'x'), { annotator: 'x', labels: 3, medianMs: 3000, meanMs: 3000 });
  assert.deepEqual(t.find((r) => r.annotator === 'y'), { annotator: 'y', labels: 2, medianMs: 2000, meanMs: 2000 });
  const d = disputedPairs(labels);
  assert.deepEqual(d.map((x) => [x.pairId, x.disagreement]), [['p1', 0.5]]); // g1 is unanimous
});

test('resolution: majority, strength-weighted, ties and splits excluded', () => {
  assert.equal(resolvePair([{ decision: 'a' }, { decision: 'a' }, { decision: 'b' }]).winner, 'a');
  assert.equal(resolvePair([{ decision: 'a' }, { decision: 'b' }]).reason, 'split');
  assert.equal(resolvePair([{ decision: 'tie' }, { decision: 'tie' }, { decision: 'a' }]).reason, 'tie');
  assert.equal(resolvePair([{ decision: 'both_bad' }]).reason, 'both_bad');
  assert.equal(resolvePair([]).reason, 'no_labels');
  // one "much better" b outweighs two "slightly better" a under strength weighting, not under majority
  const v = [{ decision: 'a' as const, strength: 1 }, { decision: 'a' as const, strength: 1 }, { decision: 'b' as const, strength: 3 }];
  assert.equal(resolvePair(v, 'majority').winner, 'a');
  assert.equal(resolvePair(v, 'strength').winner, 'b');
});
