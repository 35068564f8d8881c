// The reward–KL frontier of `alignflow compare`: one point per report (KL k1 against the judge's
// mean score, with intervals), the baseline at KL 0, Pareto flags, and the SVG in the HTML page.
import test from 'node:test';
import assert from 'node:assert/strict';
import { compareReports, paretoFlags, rewardKlFrontier } from '../../src/eval/compare.js';
import { renderCompareHtml } from '../../src/eval/compare-html.js';
import { comparisonText } from '../../src/cli/commands/report.js';
import type { EvalReport, SummaryRow } from '../../src/eval/report-types.js';

const row = (key: string, value: number, lo: number | null, hi: number | null, baselineValue: number | null = null): SummaryRow => ({ key, label: key, explain: '', value, lo, hi, baselineValue, flag: 'neutral', higherIsBetter: null });
const report = (kl: number, score: number, base = 0.01): EvalReport =>
  ({ summary: [row('reward/sentiment-lexicon', score, score - 0.05, score + 0.05, base), row('kl', kl, kl - 0.2, kl + 0.2), row('reward/other', 9, null, null)], comparisons: [], samples: [] }) as unknown as EvalReport;

test('pareto flags: dominated points are the ones with more KL and no more reward', () => {
  assert.deepEqual(paretoFlags([{ x: 0, y: 0 }, { x: 1, y: 0.5 }, { x: 2, y: 0.4 }, { x: 2, y: 0.9 }, { x: 3, y: 0.9 }]), [true, true, false, true, false]);
});

test('frontier: points from each report, the baseline at KL 0, the first judge by default', () => {
  const items = [
    { runId: 'f/eval_dpo', report: report(1.5, 0.45) },
    { runId: 'f/eval_rloo', report: report(1.0, 0.6) },
    { runId: 'f/eval_ipo', report: report(2.0, 0.4) },
  ];
  const f = rewardKlFrontier(items)!;
  assert.equal(f.judge, 'sentiment-lexicon');
  assert.deepEqual(f.points.map((p) => [p.name, p.x, p.y, p.pareto]), [
    ['baseline', 0, 0.01, true],
    ['f/eval_dpo', 1.5, 0.45, false],
    ['f/eval_rloo', 1.0, 0.6, true],
    ['f/eval_ipo', 2.0, 0.4, false],
  ]);
  assert.deepEqual([f.points[2]!.xlo, f.points[2]!.xhi, f.points[2]!.ylo, f.points[2]!.yhi], [0.8, 1.2, 0.6 - 0.05, 0.65]);
  assert.equal(rewardKlFrontier(items, 'other')!.points.length, 3, 'no baseline value for that judge');
  assert.equal(rewardKlFrontier(items, 'nope'), undefined);

  const c = compareReports(items);
  const html = renderCompareHtml(c);
  const svg = html.slice(html.indexOf('<div id="frontier">'), html.indexOf('</div>', html.indexOf('<div id="frontier">')));
  assert.equal((svg.match(/<circle /g) ?? []).length, 4);
  assert.ok(!/<script|https?:\/\//.test(html), 'self-contained, no script');
  assert.equal((html.match(/<td>★<\/td>/g) ?? []).length, 2);
  assert.match(comparisonText(c), /\* f\/eval_rloo\s+KL 1(\.0+)? \[0\.8/);
  // reports without KL: no frontier section
  const noKl = compareReports([{ runId: 'a', report: { summary: [row('reward/x', 1, null, null)], comparisons: [], samples: [] } as unknown as EvalReport }, { runId: 'b', report: { summary: [], comparisons: [], samples: [] } as unknown as EvalReport }]);
  assert.equal(noKl.frontier, undefined);
  assert.ok(!renderCompareHtml(noKl).includes('id="frontier"'));
});
