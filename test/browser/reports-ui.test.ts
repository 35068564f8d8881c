// The web UI's runs, report, sign-off and compare pages in Debian's Chromium: a viewer opens a run's
// report (served into a sandboxed frame under the report's own CSP) and sees the summary figures of
// the report JSON, records a sign-off that then shows, and compares two runs; a labeler gets none
// of it. The reports are built from synthetic data with the eval module's pure functions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { testServer } from '../server/helpers.js';
import { runs, stages } from '../../src/store/schema.js';
import { compareReports } from '../../src/eval/compare.js';
import { seedReportRun } from '../server/report-seed.js';
import { fixtureReport } from '../eval/fixture.js';
import { chromiumSkip, launchChromium } from '../helpers/chromium.js';

const skip = chromiumSkip;

test('viewer reads a report, signs it off and compares runs; a labeler gets none of it', { skip, timeout: 120_000 }, async () => {
  const s = await testServer();
  const now = Date.now();
  const old = await seedReportRun(s.db, s.home, 'r-old', now - 60_000, fixtureReport({ seed: 1, n: 24 }));
  const neu = await seedReportRun(s.db, s.home, 'r-new', now - 30_000, fixtureReport({ seed: 2, n: 24, candidateBoost: 0.5 }));
  // A run still going and without a report: listed, live status, no report yet.
  s.db.insert(runs).values({ id: 'r-live', name: 'demo live', spec: { stages: [] }, specHash: 'r-live', status: 'running', executor: 'inline', createdAt: now }).run();
  s.db.insert(stages).values({ id: 'r-live-sft', runId: 'r-live', name: 'sft', kind: 'sft', config: {}, dependsOn: [], state: 'running' }).run();
  await s.app.listen({ port: 0, host: '127.0.0.1' });
  const base = `http://127.0.0.1:${(s.app.server.address() as AddressInfo).port}`;

  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    const errors: string[] = [];
    const csp: string[] = [];
    const remote: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('console', (m) => {
      if (/Content Security Policy|Refused to/i.test(m.text())) csp.push(m.text());
    });
    page.on('request', (r) => {
      if (!r.url().startsWith(base)) remote.push(r.url());
    });

    await page.goto(base + '/');
    await page.fill('#token', s.tokens.viewer);
    await page.keyboard.press('Enter');
    await page.waitForSelector('#nav:not([hidden])');
    assert.equal(await page.isVisible('#nav-label'), false, 'viewers do not label');

    // Runs page: every run with its status and stages; the live one follows the database.
    await page.click('#nav-runs');
    await page.waitForSelector('#runs-table tr[data-run="r-old"]');
    assert.deepEqual(await page.locator('#runs-table tbody tr').evaluateAll((trs) => trs.map((t) => (t as HTMLElement).dataset.run)), ['r-live', 'r-new', 'r-old']);
    assert.match((await page.textContent('#runs-table tr[data-run="r-old"]'))!, /succeeded.*dpo: succeeded, eval: succeeded/);
    s.db.$client.prepare("UPDATE runs SET status = 'failed', error = 'out of memory' WHERE id = 'r-live'").run();
    await page.waitForFunction(() => /failed: out of memory/.test(document.querySelector('#runs-table tr[data-run="r-live"]')?.textContent ?? ''), undefined, { timeout: 10_000 });

    // A run without a report says so.
    await page.click('#runs-table tr[data-run="r-live"] button');
    await page.waitForFunction(() => /No eval report for this run yet/.test(document.getElementById('report-error')?.textContent ?? ''));
    assert.equal(await page.isVisible('#report-frame'), false);

    // The report page: the frame shows the report's summary with the JSON's numbers.
    await page.click('#report-back');
    await page.click('#runs-table tr[data-run="r-old"] button');
    const frame = page.frameLocator('#report-frame');
    await frame.locator('#summary').waitFor();
    assert.equal(await page.getAttribute('#report-frame', 'sandbox'), 'allow-scripts');
    const rows = await frame.locator('#summary tbody tr').evaluateAll((trs) => trs.map((t) => ({ key: t.getAttribute('data-key'), value: t.getAttribute('data-value'), shown: t.querySelector('td.v')?.textContent })));
    assert.equal(rows.length, old.summary.length);
    for (const want of old.summary) {
      const got = rows.find((r) => r.key === want.key);
      assert.ok(got, `summary row ${want.key} shown`);
      assert.equal(got.value, want.value === null ? '' : String(want.value), want.key);
    }
    const wr = old.summary.find((r) => r.key === 'win_rate/sft/sentiment')!;
    assert.ok(wr.value !== null && rows.find((r) => r.key === wr.key)!.shown!.includes(wr.value.toFixed(3).slice(0, 4)), 'the win rate is shown as a number');
    // The report's own script runs under its CSP (the sample filter) ...
    await frame.locator('button[data-f="win"]').click();
    const wins = old.samples.filter((x) => x.judgments.some((j) => j.judge === 'sentiment' && j.verdict === 'win')).length;
    assert.equal(Number(await frame.locator('#shown').textContent()), wins);
    // ... in an opaque origin: it cannot reach the UI's token.
    const reportFrame = page.frames().find((f) => f !== page.mainFrame() && f.url().includes('/api/view/'))!;
    assert.equal(await reportFrame.evaluate(() => { try { return sessionStorage.getItem('alignflow.token'); } catch { return 'blocked'; } }), 'blocked');
    // The frame URL is a one-time ticket: fetching it again gives nothing.
    const ticketUrl = reportFrame.url();
    assert.equal((await page.request.get(ticketUrl)).status(), 404);

    // Sign-off: a rejection without a comment is refused in the page; an approval is stored and shown.
    assert.match((await page.textContent('#signoffs tbody'))!, /none yet/);
    await page.check('input[name="decision"][value="reject"]');
    await page.click('#signoff-submit');
    assert.match((await page.textContent('#signoff-msg'))!, /needs a comment/);
    await page.check('input[name="decision"][value="approve"]');
    await page.fill('#signoff-comment', 'Win rate CI above 0.5 <b>ship it</b>');
    await page.click('#signoff-submit');
    await page.waitForSelector('#signoffs td.approve');
    const signed = await page.locator('#signoffs tbody tr').evaluateAll((trs) => trs.map((t) => Array.from(t.querySelectorAll('td')).slice(0, 3).map((td) => td.textContent)));
    assert.deepEqual(signed, [['view', 'approve', 'Win rate CI above 0.5 <b>ship it</b>']]);
    assert.equal(await page.locator('#signoffs b').count(), 0, 'the comment is text');
    const stored = s.db.$client.prepare('SELECT decision, comment FROM signoffs').all();
    assert.deepEqual(stored, [{ decision: 'approve', comment: 'Win rate CI above 0.5 <b>ship it</b>' }]);
    // The reloaded report shows the sign-off as well.
    await frame.locator('text=ship it').first().waitFor();

    // Compare: pick both runs (compared oldest first), see the deltas and the regressions.
    await page.click('#nav-compare');
    await page.waitForSelector('#compare-pick input[value="r-new"]');
    assert.equal(await page.isDisabled('#compare-go'), true);
    await page.check('#compare-pick input[value="r-new"]');
    await page.check('#compare-pick input[value="r-old"]');
    await page.click('#compare-go');
    const cf = page.frameLocator('#compare-frame');
    await cf.locator('#compare').waitFor();
    const c = compareReports([{ runId: 'r-old', report: old }, { runId: 'r-new', report: neu }]);
    const row = c.rows.find((r) => r.key === 'win_rate/sft/sentiment')!;
    assert.equal(await cf.locator(`[data-key="${row.key}"][data-run="1"]`).getAttribute('data-value'), String(row.values[1]));
    const regressions = c.regressions.reduce((n, g) => n + g.prompts.length, 0);
    assert.ok(regressions > 0, 'the fixture has regressions');
    assert.equal(await cf.locator('tr.regression').count(), regressions);

    // A labeler: no navigation, and the API refuses the report, its view ticket and the sign-off.
    await page.click('#logout');
    await page.fill('#token', s.tokens.labeler);
    await page.keyboard.press('Enter');
    await page.waitForSelector('#labeler:not([hidden])');
    assert.equal(await page.isVisible('#nav'), false);
    for (const id of ['#runs-view', '#report-view', '#compare-view', '#report-frame', '#compare-frame']) assert.equal(await page.isVisible(id), false, id);
    const codes = await page.evaluate(async () => {
      const h = { authorization: 'Bearer ' + sessionStorage.getItem('alignflow.token'), 'content-type': 'application/json' };
      return Promise.all([
        fetch('/api/runs', { headers: h }),
        fetch('/api/runs/r-old/report.html', { headers: h }),
        fetch('/api/runs/r-old/report/view', { method: 'POST', headers: h, body: '{}' }),
        fetch('/api/compare/view', { method: 'POST', headers: h, body: JSON.stringify({ runs: 'r-old,r-new' }) }),
        fetch('/api/runs/r-old/report/signoff', { method: 'POST', headers: h, body: JSON.stringify({ decision: 'approve' }) }),
      ].map((p) => p.then((r) => r.status)));
    });
    assert.deepEqual(codes, [403, 403, 403, 403, 403]);

    assert.deepEqual(errors, []);
    assert.deepEqual(csp, []);
    assert.deepEqual(remote, []);
  } finally {
    await browser.close();
  }
});
