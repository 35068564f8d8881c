import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { renderReportHtml } from '../../src/eval/report-html.js';
import { fmt } from '../../src/eval/svg.js';
import { tmpDir } from '../helpers/tmp.js';
import { fixtureReport } from './fixture.js';
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
  const report = fixtureReport();
  const file = path.join(dir, 'report.html');
  fs.writeFileSync(file, renderReportHtml(report));
  const browser = await launchChromium();
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const requests: string[] = [];
    page.on('request', (req) => { if (!req.url().startsWith('file:')) requests.push(req.url()); });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto('file://' + file);
    assert.deepEqual(requests, [], 'the page made no network request');
    assert.deepEqual(errors, [], 'no script error');
    assert.notEqual(await page.title(), 'pwned', 'model text did not run');
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
    // Charts: a curve per DPO metric, the reward-vs-KL scatter and histograms are drawn.
    assert.ok((await page.$$('[data-curve^="dpo/"] svg polyline')).length >= 3);
    assert.ok((await page.$$('svg.chart')).length >= 6);
    assert.ok((await page.$$('[data-warning="contamination"]')).length === 1);
    // Filter: "candidate lost" shows only losing rows.
    await page.selectOption('#cmp', '0');
    await page.click('button[data-f="loss"]');
    const visible = await page.$$eval('tr.sample', (trs) => trs.filter((t) => (t as HTMLElement).style.display !== 'none').map((t) => t.getAttribute('data-o0')));
    const losses = report.samples.filter((s) => s.judgments.some((j) => j.judge === 'sentiment' && j.verdict === 'loss')).length;
    assert.equal(visible.length, losses);
    assert.ok(visible.every((o) => o === 'loss'));
    assert.equal(await page.textContent('#shown'), String(losses));
    await page.click('button[data-f="all"]');
    const shot = path.join(dir, 'report.png');
    await page.screenshot({ path: shot, fullPage: true });
    assert.ok(fs.statSync(shot).size > 10_000);
    if (process.env.ALIGNFLOW_KEEP_SCREENSHOT) fs.copyFileSync(shot, process.env.ALIGNFLOW_KEEP_SCREENSHOT);
  } finally {
    await browser.close();
  }
});
