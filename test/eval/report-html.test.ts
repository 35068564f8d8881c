import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { renderReportHtml, SAMPLES_PER_PAGE } from '../../src/eval/report-html.js';
import { buildReport } from '../../src/eval/build.js';
import { fmt } from '../../src/eval/svg.js';
import { tmpDir } from '../helpers/tmp.js';
import { fixtureRaw, fixtureReport } from './fixture.js';
import { artifactsDir } from '../helpers/artifacts.js';
import { chromiumSkip, launchChromium } from '../helpers/chromium.js';


test('report figures: contamination, judge errors and order consistency are counted', () => {
  const r = fixtureReport();
  assert.equal(r.contamination?.overlapping, 2);
  assert.ok(r.warnings.some((w) => w.code === 'contamination' && /2 of 40/.test(w.message)));
  const pw = r.comparisons.find((c) => c.judge === 'pairwise-rule')!;
  assert.equal(pw.winRate.errors, 2); // prompt 7, both orders
  assert.match(pw.errorExamples[0]!.message, /boom/);
  assert.ok(r.warnings.some((w) => w.code === 'judge_errors' && /failed 2 comparison/.test(w.message)));
  assert.ok(pw.orderConsistency && pw.orderConsistency.n === 39);
  const pt = r.comparisons.find((c) => c.judge === 'sentiment')!;
  assert.equal(pt.orderConsistency, null);
  assert.equal(pt.winRate.n, 40);
  assert.ok(pt.winRate.lo <= pt.winRate.value && pt.winRate.value <= pt.winRate.hi);
  assert.ok(r.summary.some((s) => s.key === 'eval_rewards/accuracies'));
});

test('the HTML report has no external URL and escapes model text', () => {
  const html = renderReportHtml(fixtureReport());
  assert.doesNotMatch(html, /https?:\/\//i, 'no http(s):// anywhere');
  assert.doesNotMatch(html, /\/\/[a-z0-9.-]+\.[a-z]{2,}\//i, 'no protocol-relative URL');
  // Any src= or href= must be inline (data: or #fragment); we emit none at all.
  // Attributes live inside tags; escaped model text has no '<', so only real tags are scanned.
  const tags = html.match(/<[a-z][^>]*>/gi) ?? [];
  const refs = tags.flatMap((tag) => [...tag.matchAll(/\s(?:src|href|xlink:href|action|poster|data)\s*=\s*["']?([^"'\s>]*)/gi)].map((m) => m[1]!));
  const external = refs.filter((u) => !u.startsWith('#') && !u.startsWith('data:'));
  assert.deepEqual(external, []);
  assert.doesNotMatch(html, /@import|url\(/i);
  // Model text containing <script> shows up escaped; exactly one real <script> (ours).
  assert.equal(html.match(/<script/g)!.length, 1);
  assert.ok(html.includes('&lt;script&gt;document.title'));
});

test('the HTML report renders in Chromium and its numbers equal the JSON', { skip: chromiumSkip, timeout: 120_000 }, async () => {
  const dir = tmpDir();
  const art = artifactsDir('report-html');
  // Beyond the fixture's curves: a schedule and a two-point series, neither of which may be drawn.
  const raw = fixtureRaw();
  raw.curves.push(
    { stage: 'dpo', kind: 'dpo', metric: 'epoch', points: [[0, 0], [10, 0.5], [20, 1]] },
    { stage: 'dpo', kind: 'dpo', metric: 'learning_rate', points: [[0, 1e-4], [10, 1e-4], [20, 1e-4]] },
    { stage: 'dpo', kind: 'dpo', metric: 'eval_margin_once', points: [[0, 0.1], [20, 0.2]] },
  );
  const report = buildReport(raw);
  const file = path.join(dir, 'report.html');
  fs.writeFileSync(file, renderReportHtml(report));
  const browser = await launchChromium();
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const requests: string[] = [];
    page.on('request', (req) => { if (!req.url().startsWith('file:')) requests.push(req.url()); });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto('file://' + file);
    assert.deepEqual(requests, [], 'the page made no network request');
    assert.deepEqual(errors, [], 'no script error');
    assert.notEqual(await page.title(), 'pwned', 'model text did not run');
    // Warnings and the summary come before any chart.
    const order = await page.evaluate(() => ['warnings', 'summary', 'curves', 'samples'].map((id) => document.getElementById(id)!.getBoundingClientRect().top + window.scrollY));
    assert.ok(order[0]! < order[1]! && order[1]! < order[2]! && order[2]! < order[3]!, `sections in reading order: ${order}`);
    const rows = await page.$$eval('#summary tbody tr', (trs) => trs.map((tr) => ({
      key: tr.getAttribute('data-key'), value: tr.getAttribute('data-value'), lo: tr.getAttribute('data-lo'), hi: tr.getAttribute('data-hi'),
      shown: tr.querySelector('td.v')?.textContent, flag: tr.getAttribute('data-flag'),
    })));
    assert.equal(rows.length, report.summary.length);
    for (const s of report.summary) {
      const row = rows.find((x) => x.key === s.key);
      assert.ok(row, `row ${s.key} shown`);
      assert.equal(row.value, s.value === null ? '' : String(s.value), `${s.key} data-value`);
      assert.equal(row.lo, s.lo === null ? '' : String(s.lo));
      assert.equal(row.hi, s.hi === null ? '' : String(s.hi));
      assert.equal(row.shown, s.display ?? fmt(s.value), `${s.key} displayed`);
      assert.equal(row.flag, s.flag);
    }
    const wr = report.summary.find((s) => s.key === 'win_rate/sft/sentiment')!;
    assert.equal(Number(rows.find((x) => x.key === wr.key)!.value), report.comparisons[0]!.winRate.value);
    assert.ok((await page.$$('[data-warning="contamination"]')).length === 1);

    // Charts: a curve per DPO metric, the reward-vs-KL scatter and histograms; no chart for a
    // schedule or a series under 3 points, which are listed instead.
    assert.ok((await page.$$('[data-curve^="dpo/"] svg polyline.raw')).length >= 3);
    assert.ok((await page.$$('svg.chart')).length >= 6);
    for (const m of ['epoch', 'learning_rate', 'eval_margin_once']) assert.equal(await page.$(`[data-curve="dpo/${m}"]`), null, `${m} not drawn`);
    const hiddenNote = await page.textContent('details.stage[data-stage="dpo"] .hidden-curves');
    assert.match(hiddenNote!, /epoch \(a schedule/);
    assert.match(hiddenNote!, /eval_margin_once \(2 points: 0\.200\)/);
    // Stages fold: DPO (the candidate's training) is open, the others are one summary line.
    assert.deepEqual(await page.$$eval('details.stage', (ds) => ds.map((d) => [d.getAttribute('data-stage'), (d as HTMLDetailsElement).open])), [['sft', false], ['reward', false], ['dpo', true]]);
    assert.match((await page.textContent('details.stage[data-stage="sft"] summary'))!, /1 chart · 290 steps · loss 6 → 1\.275/);
    assert.equal(await page.isVisible('[data-curve="sft/loss"] svg'), false);
    await page.click('details.stage[data-stage="sft"] summary');
    assert.equal(await page.isVisible('[data-curve="sft/loss"] svg'), true);

    // Hover: the values at the step under the pointer (DPO loss, step 100 = the 11th point).
    const lossCurve = report.curves.find((c) => c.stage === 'dpo' && c.metric === 'loss')!;
    await page.locator('#smooth').fill('0');
    const svg = page.locator('[data-curve="dpo/loss"] svg');
    const frame = (await svg.getAttribute('data-frame'))!.split(',').map(Number);
    const [w, , x0, x1, , , l, r] = frame as [number, number, number, number, number, number, number, number];
    await svg.scrollIntoViewIfNeeded();
    const box = (await svg.boundingBox())!;
    await page.mouse.move(box.x + (l + ((100 - x0) / (x1 - x0)) * (w - l - r)) * (box.width / w), box.y + box.height / 2);
    const tip = (await page.textContent('#tip'))!;
    const want = lossCurve.points.find((p) => p[0] === 100)![1];
    assert.ok(tip.includes(`loss  step 100: ${Number(want.toPrecision(4))}`), `tooltip "${tip}" shows loss at step 100 = ${want}`);
    assert.equal(await page.isVisible('#tip'), true);

    // Smoothing: TensorBoard's debiased EMA, computed here independently, drawn as the solid line.
    await page.locator('#smooth').fill('0.5');
    const drawn = (await svg.locator('polyline.sm').first().getAttribute('points'))!.split(' ').map((p) => Number(p.split(',')[1]));
    const [, h, , , y0, y1, , , t, b] = frame;
    let last = 0;
    const expected = lossCurve.points.map((p, i) => {
      last = 0.5 * last + 0.5 * p[1];
      const v = last / (1 - 0.5 ** (i + 1));
      return h! - b! - ((v - y0!) / (y1! - y0!)) * (h! - t! - b!);
    });
    assert.equal(drawn.length, expected.length);
    drawn.forEach((y, i) => assert.ok(Math.abs(y - expected[i]!) <= 0.06, `smoothed point ${i}: ${y} vs ${expected[i]}`));
    assert.match((await page.textContent('#tip'))!, /./);

    // Samples: filter, search and pages of 10.
    await page.selectOption('#cmp', '0');
    await page.click('button[data-f="loss"]');
    const visibleOutcomes = () => page.$$eval('tr.sample', (trs) => trs.filter((t) => (t as HTMLElement).style.display !== 'none').map((t) => t.getAttribute('data-o0')));
    const losses = report.samples.filter((s) => s.judgments.some((j) => j.judge === 'sentiment' && j.verdict === 'loss')).length;
    assert.ok(losses > 0);
    let visible = await visibleOutcomes();
    assert.equal(visible.length, Math.min(losses, SAMPLES_PER_PAGE));
    assert.ok(visible.every((o) => o === 'loss'));
    assert.equal(await page.textContent('#shown'), String(losses));
    await page.click('button[data-f="all"]');
    assert.equal((await visibleOutcomes()).length, SAMPLES_PER_PAGE);
    assert.equal(await page.textContent('#pages'), String(Math.ceil(report.samples.length / SAMPLES_PER_PAGE)));
    await page.click('#next');
    assert.equal(await page.textContent('#page'), '2');
    assert.deepEqual(await page.$$eval('tr.sample', (trs) => trs.filter((t) => (t as HTMLElement).style.display !== 'none').map((t) => Number(t.getAttribute('data-prompt')))),
      report.samples.slice(SAMPLES_PER_PAGE, 2 * SAMPLES_PER_PAGE).map((s) => s.prompt));
    await page.fill('#q', 'Prompt 17:');
    visible = await visibleOutcomes();
    assert.equal(await page.textContent('#shown'), '1');
    assert.equal(await page.textContent('#page'), '1', 'a new search starts at page 1');
    assert.deepEqual(await page.$$eval('tr.sample', (trs) => trs.filter((t) => (t as HTMLElement).style.display !== 'none').map((t) => Number(t.getAttribute('data-prompt')))), [17]);
    await page.fill('#q', 'WONDERFUL');
    assert.equal(Number(await page.textContent('#shown')), report.samples.filter((s) => Object.values(s.responses).some((x) => x.text.includes('wonderful'))).length, 'search is case-insensitive over answers');
    await page.fill('#q', '');

    const height = await page.evaluate(() => document.documentElement.scrollHeight);
    console.log(`# report page: ${fs.statSync(file).size} bytes, ${height} px tall at 1400 px`);
    const shot = path.join(art, 'report-1400.png');
    await page.mouse.move(0, 0);
    await page.screenshot({ path: shot, fullPage: true });
    assert.ok(fs.statSync(shot).size > 10_000);
    fs.copyFileSync(file, path.join(art, 'report.html'));
    if (process.env.ALIGNFLOW_KEEP_SCREENSHOT) fs.copyFileSync(shot, process.env.ALIGNFLOW_KEEP_SCREENSHOT);
  } finally {
    await browser.close();
  }
});
