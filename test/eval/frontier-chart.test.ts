// The frontier chart stays readable when crowded: labels never overlap (each other, the markers,
// the frame), the same input gives the same SVG, and a far-right point turns the x axis square-root.
import test from 'node:test';
import assert from 'node:assert/strict';
import { intersects, placeLabels, segmentHitsBox, textWidth, type Box, type LabelInput } from '../../src/eval/label-placement.js';
import { chooseXScale, scatterChart, sqrtTicks, signedSqrt } from '../../src/eval/svg.js';
import { compareReports } from '../../src/eval/compare.js';
import { renderCompareHtml, sharedRun } from '../../src/eval/compare-html.js';
import { crowdedItems } from './crowded-frontier.js';

// 14 points in a 576×364 plot area, most within 60 px of each other, three on the same pixel.
const FRAME: Box = { x: 52, y: 22, w: 576, h: 364 };
const CROWD: LabelInput[] = [
  { text: 'baseline', px: 100, py: 330 },
  ...[
    [135, 160], [135, 160], [135.4, 160.2], [136, 190], [155, 175], [168, 190], [150, 250], [186, 205], [176, 114], [208, 145], [136, 236], [278, 266], [506, 297],
  ].map(([px, py], i) => ({ text: `frontier/eval_model_${String.fromCharCode(97 + i)}_b0${i}`, px: px!, py: py! })),
];

function checkClear(labels: readonly LabelInput[], frame: Box, r = 5) {
  const placed = placeLabels(labels, { frame, r });
  assert.equal(placed.length, labels.length);
  const beside = placed.filter((p) => !p.onMarker);
  for (let i = 0; i < beside.length; i++) {
    const a = beside[i]!.box;
    assert.ok(a.x >= frame.x && a.y >= frame.y && a.x + a.w <= frame.x + frame.w && a.y + a.h <= frame.y + frame.h, `${beside[i]!.text} inside the frame`);
    for (let j = i + 1; j < beside.length; j++) assert.ok(!intersects(a, beside[j]!.box), `${beside[i]!.text} clear of ${beside[j]!.text}`);
    for (const m of labels) assert.ok(!intersects(a, { x: m.px - r, y: m.py - r, w: 2 * r, h: 2 * r }), `${beside[i]!.text} clear of the marker at ${m.px},${m.py}`);
  }
  for (const p of placed) {
    if (!p.leader) continue;
    for (const q of beside) if (q !== p) assert.ok(!segmentHitsBox(...p.leader, q.box), `leader of ${p.text} misses ${q.text}`);
  }
  return placed;
}

test('placement: 14 crowded labels (three on one pixel) all placed, none overlapping; deterministic', () => {
  const a = checkClear(CROWD, FRAME);
  assert.ok(a.every((p) => p.number === undefined), 'room for every name in a 640×420 chart');
  assert.ok(a.some((p) => p.leader), 'the displaced ones get a leader line');
  assert.deepEqual(placeLabels(CROWD, { frame: FRAME }), a, 'same input, same placement');
  const svg = () => scatterChart('t', CROWD.map((l, i) => ({ name: l.text, x: l.px / 100, y: -l.py / 100 + (i % 2) * 1e-9 })), { xLabel: 'x', yLabel: 'y', w: 640, h: 420 });
  assert.equal(svg(), svg(), 'same input, same SVG');
});

test('placement: names that fit nowhere become numbers (beside the point, or on it), listed under the chart', () => {
  const small: Box = { x: 52, y: 22, w: 200, h: 90 };
  const pts = CROWD.slice(1, 12).map((l) => ({ ...l, px: 52 + (l.px - 52) / 3, py: 22 + (l.py - 22) / 3 }));
  const placed = checkClear(pts, small);
  const nums = placed.filter((p) => p.number !== undefined);
  assert.ok(nums.length > 0, 'a 200×90 plot cannot hold eleven 30-character names');
  assert.deepEqual(nums.map((p) => p.text), nums.map((p) => String(p.number)));
  assert.deepEqual(nums.map((p) => p.number).sort((x, y) => x! - y!), nums.map((_, k) => k + 1));
  // In the chart: every numbered name appears as "n = name" under it.
  const svg = scatterChart('t', CROWD.slice(1).map((l, i) => ({ name: l.text, x: i % 4, y: i % 3 })), { xLabel: 'x', yLabel: 'y', w: 180, h: 120 });
  const keys = [...svg.matchAll(/class="tk key">(\d+) = ([^<]+)</g)].map((m) => [Number(m[1]), m[2]]);
  assert.ok(keys.length > 0);
  assert.deepEqual(keys.map((k) => k[0]), keys.map((_, k) => k + 1));
  assert.ok(Number(/viewBox="0 0 180 (\d+)"/.exec(svg)![1]) >= 120 + 14 * keys.length, 'the chart grows to hold the list');
});

test('text width: an upper bound of what Chromium measured for run names', () => {
  // getBBox() widths in Debian's Chromium, 10px system-ui (see textWidth).
  for (const [t, w] of [['frontier/eval_online_dpo_rm_b01', 163.3], ['0123456789', 63.6], ['WWWWWWWWWW', 99], ['ABCDEFGHIJKLMNOPQRSTUVWXYZ', 174.9]] as const) assert.ok(textWidth(t) >= w, t);
});

test('x scale: square root when the largest KL is over 10× the median positive one, with round ticks', () => {
  assert.equal(chooseXScale([0, 0.19, 0.21, 0.48, 0.74, 1.2, 5.2, 27]), 'sqrt');
  assert.equal(chooseXScale([0, 0.19, 0.21, 0.48, 0.74, 1.2, 5.9]), 'linear');
  assert.equal(chooseXScale([0, 3]), 'linear', 'one positive KL: nothing to compare with');
  assert.equal(chooseXScale([0.1, 0.1, 1.5]), 'sqrt');
  assert.equal(chooseXScale([0.1, 1.5]), 'linear', 'median of two is their mean');
  assert.equal(signedSqrt(-4), -2);
  const px = (x: number) => 52 + (signedSqrt(x) / 5.7) * 576;
  const ticks = sqrtTicks(-0.02, 32, px);
  assert.deepEqual(ticks.filter((t) => t >= 1), [1, 2, 5, 10, 20]);
  assert.ok(ticks.every((t) => t === 0 || /^[125]$/.test(String(t / 10 ** Math.floor(Math.log10(t))).slice(0, 1))));
  assert.equal(ticks[0], 0);

  const far = crowdedItems();
  const html = renderCompareHtml(compareReports(far));
  assert.match(html, /<svg class="chart scatter" data-scale="sqrt" viewBox="0 0 640 420"/);
  assert.match(html, /nats \(√ scale\)</);
  for (const t of ['0', '1', '2', '5', '10', '20']) assert.ok(html.includes(`class="tk">${t}</text>`), `tick ${t}`);
  // Without the far points (27 and 5.2 nats, 12× the median): linear, and the label says nothing.
  const near = renderCompareHtml(compareReports(far.filter((i) => !/rloo_b00[25]$/.test(i.runId))));
  assert.match(near, /data-scale="linear"/);
  assert.ok(!near.includes('√ scale'));
});

test('compare page: the frontier chart is 640×420 with run-less labels, deterministic; the report chart keeps 420×260', () => {
  assert.equal(sharedRun(['baseline', 'frontier/eval_a', 'frontier/eval_b']), 'frontier/');
  assert.equal(sharedRun(['baseline', 'a/eval', 'b/eval']), '');
  assert.equal(sharedRun(['baseline', 'run-a']), '');
  const c = compareReports(crowdedItems());
  const html = renderCompareHtml(c);
  assert.equal(html, renderCompareHtml(compareReports(crowdedItems())));
  const labels = [...html.matchAll(/class="tk lb">([^<]+)</g)].map((m) => m[1]);
  assert.deepEqual(labels.sort(), c.frontier!.points.map((p) => p.name.replace('frontier/', '')).sort());
  assert.match(html, /Labels leave out the run name <code>frontier\/<\/code>/);
  // The table keeps the full names.
  assert.ok(html.includes('<td>frontier/eval_dpo_b01</td>'));
  assert.match(scatterChart('t', [{ name: 'a', x: 0, y: 0 }, { name: 'b', x: 1, y: 1 }], { xLabel: 'x', yLabel: 'y' }), /viewBox="0 0 420 260"/);
});
