// Reading reports back: the server routes (JSON, HTML under its CSP in Chromium, compare,
// sign-off with role checks) and the `report` / `compare` CLI commands, over a real SQLite file.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { openDb } from '../../src/store/db.js';
import { createLocalStore } from '../../src/store/artifacts.js';
import { metrics, runs, stageOutputs, stages } from '../../src/store/schema.js';
import { buildServer } from '../../src/server/index.js';
import { addUser } from '../../src/labeling/users.js';
import { renderReportHtml } from '../../src/eval/report-html.js';
import type { EvalReport } from '../../src/eval/report-types.js';
import type { Comparison } from '../../src/eval/compare.js';
import { tmpDir } from '../helpers/tmp.js';
import { fixtureReport } from './fixture.js';
import { chromiumSkip, launchChromium } from '../helpers/chromium.js';

const home = tmpDir();
const db = openDb(path.join(home, 'alignflow.db'));
const store = createLocalStore(db, home);

async function seedRun(runId: string, report: EvalReport, withMetrics: boolean): Promise<void> {
  const now = Date.now();
  db.insert(runs).values({ id: runId, name: 'demo', spec: { stages: [] }, specHash: runId, status: 'succeeded', executor: 'inline', createdAt: now }).run();
  for (const [name, kind] of [['dpo', 'dpo'], ['eval', 'eval']] as const) {
    db.insert(stages).values({ id: `${runId}-${name}`, runId, name, kind, config: {}, dependsOn: [], state: 'succeeded' }).run();
  }
  if (withMetrics) {
    for (let step = 1; step <= 10; step++) {
      db.insert(metrics).values({ runId, stageId: `${runId}-dpo`, step, name: 'loss', value: Math.LN2 - step * 0.03, createdAt: now }).run();
      db.insert(metrics).values({ runId, stageId: `${runId}-dpo`, step, name: 'rewards/accuracies', value: 0.5 + step * 0.04, createdAt: now }).run();
    }
  }
  const r = { ...report, curves: [], provenance: { ...report.provenance, runId } };
  const m = await store.put({ kind: 'eval-report', name: 'eval report', files: [{ path: 'report.json', data: Buffer.from(JSON.stringify(r)) }, { path: 'report.html', data: Buffer.from(renderReportHtml(r)) }], metadata: { runId } });
  db.insert(stageOutputs).values({ stageId: `${runId}-eval`, artifactId: m.id, role: 'report' }).run();
}

const reportA = fixtureReport({ seed: 1 });
const reportB = fixtureReport({ seed: 2, candidateBoost: 0.5 });
await seedRun('r-old', reportA, true);
await seedRun('r-new', reportB, false);

const app = await buildServer({ db, home, store });
after(() => app.close());
const viewer = addUser(db, 'vera', 'viewer').token;
const labeler = addUser(db, 'lee', 'labeler').token;
const auth = (t: string) => ({ authorization: `Bearer ${t}` });

test('GET report: JSON for viewers, curves filled from the metrics table; labelers and anonymous refused', async () => {
  const res = await app.inject({ method: 'GET', url: '/api/runs/r-old/report', headers: auth(viewer) });
  assert.equal(res.statusCode, 200, res.body);
  const body = res.json() as { report: EvalReport; reportId: string };
  assert.equal(body.report.summary.length, reportA.summary.length);
  assert.deepEqual(body.report.curves.map((c) => c.metric).sort(), ['loss', 'rewards/accuracies']);
  assert.equal(body.report.curves[0]!.points.length, 10);
  assert.equal((await app.inject({ method: 'GET', url: '/api/runs/r-old/report', headers: auth(labeler) })).statusCode, 403);
  assert.equal((await app.inject({ method: 'GET', url: '/api/runs/r-old/report' })).statusCode, 401);
  assert.equal((await app.inject({ method: 'GET', url: '/api/runs/nope/report', headers: auth(viewer) })).statusCode, 404);
});

test('sign-off: viewers approve or reject (with a comment); stored and shown', async () => {
  let res = await app.inject({ method: 'POST', url: '/api/runs/r-old/report/signoff', headers: auth(viewer), payload: { decision: 'reject' } });
  assert.equal(res.statusCode, 400, 'a rejection needs a comment');
  res = await app.inject({ method: 'POST', url: '/api/runs/r-old/report/signoff', headers: auth(viewer), payload: { decision: 'maybe', comment: 'x' } });
  assert.equal(res.statusCode, 400);
  res = await app.inject({ method: 'POST', url: '/api/runs/r-old/report/signoff', headers: auth(labeler), payload: { decision: 'approve' } });
  assert.equal(res.statusCode, 403);
  res = await app.inject({ method: 'POST', url: '/api/runs/r-old/report/signoff', headers: auth(viewer), payload: { decision: 'approve', comment: 'win rate CI above 0.5 <b>ok</b>' } });
  assert.equal(res.statusCode, 201, res.body);
  const list = (await app.inject({ method: 'GET', url: '/api/runs/r-old/report/signoffs', headers: auth(viewer) })).json() as { signoffs: { user: string; decision: string; comment: string }[] };
  assert.deepEqual(list.signoffs.map((s) => [s.user, s.decision]), [['vera', 'approve']]);
  const html = (await app.inject({ method: 'GET', url: '/api/runs/r-old/report.html', headers: auth(viewer) })).body;
  assert.ok(html.includes('win rate CI above 0.5 &lt;b&gt;ok&lt;/b&gt;'));
});

test('compare: deltas against the first run and per-prompt regressions', async () => {
  const res = await app.inject({ method: 'GET', url: '/api/compare?runs=r-old,r-new', headers: auth(viewer) });
  assert.equal(res.statusCode, 200, res.body);
  const c = res.json() as Comparison;
  assert.deepEqual(c.runs, ['r-old', 'r-new']);
  const wr = c.rows.find((r) => r.key === 'win_rate/sft/sentiment')!;
  const a = reportA.summary.find((r) => r.key === wr.key)!.value!;
  const b = reportB.summary.find((r) => r.key === wr.key)!.value!;
  assert.deepEqual(wr.values, [a, b]);
  assert.ok(Math.abs(wr.deltas[1]! - (b - a)) < 1e-12);
  const reg = c.regressions.find((g) => g.judge === 'sentiment')!;
  // Count by hand: prompts won by the old candidate and lost by the new one.
  const outcome = (r: EvalReport, i: number) => r.samples[i]!.judgments.find((j) => j.judge === 'sentiment')!.verdict;
  const expected = reportA.samples.filter((_, i) => outcome(reportA, i) === 'win' && outcome(reportB, i) === 'loss').length;
  assert.ok(expected > 0, 'the fixture has regressions');
  assert.equal(reg.prompts.length, expected);
  assert.equal(reg.shared, reportA.samples.length);
  assert.equal((await app.inject({ method: 'GET', url: '/api/compare?runs=r-old', headers: auth(viewer) })).statusCode, 400);
  const page = await app.inject({ method: 'GET', url: '/api/compare.html?runs=r-old,r-new', headers: auth(viewer) });
  assert.equal(page.statusCode, 200);
  assert.match(page.headers['content-type'] as string, /text\/html/);
  assert.equal((page.body.match(/<tr class="regression">/g) ?? []).length, c.regressions.reduce((n, g) => n + g.prompts.length, 0));
  assert.ok(page.body.includes(`data-key="${wr.key}" data-run="1" data-value="${b}"`));
  assert.doesNotMatch(page.body, /https?:\/\/|<script/i, 'no URL, no script (the fixture text has both)');
});

test('the served HTML works under its own CSP in Chromium (inline script allowed by hash, nothing fetched)', { skip: chromiumSkip, timeout: 120_000 }, async () => {
  const address = await app.listen({ port: 0, host: '127.0.0.1' });
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    await page.setExtraHTTPHeaders(auth(viewer));
    const urls: string[] = [];
    const csp: string[] = [];
    page.on('request', (r) => urls.push(r.url()));
    page.on('console', (m) => { if (/Content Security Policy/i.test(m.text())) csp.push(m.text()); });
    const res = await page.goto(`${address}/api/runs/r-old/report.html`);
    assert.equal(res!.status(), 200);
    assert.match(res!.headers()['content-security-policy'] ?? '', /script-src 'sha256-/);
    await page.click('button[data-f="win"]');
    const shown = Number(await page.textContent('#shown'));
    const wins = reportA.samples.filter((s) => s.judgments.some((j) => j.judge === 'sentiment' && j.verdict === 'win')).length;
    assert.equal(shown, wins, 'the filter script ran under the CSP');
    assert.deepEqual(csp, []);
    assert.deepEqual(urls, [`${address}/api/runs/r-old/report.html`]);
  } finally {
    await browser.close();
  }
});

test('CLI: report (table, --json, --out) and compare', { timeout: 180_000 }, () => {
  const env = { ...process.env, ALIGNFLOW_HOME: home };
  const cli = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { env, encoding: 'utf8', timeout: 120_000 });
  let r = cli('report', 'r-old');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /Win rate vs sft \(sentiment\)/);
  assert.match(r.stdout, /vera/);
  const out = path.join(home, 'out', 'report.html');
  r = cli('report', 'r-old', '--out', out);
  assert.equal(r.status, 0, r.stderr);
  assert.ok(fs.readFileSync(out, 'utf8').includes('data-curve="dpo/loss"'), 'curves from the metrics table are drawn');
  r = cli('compare', 'r-old', 'r-new', '--json');
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual((JSON.parse(r.stdout) as Comparison).runs, ['r-old', 'r-new']);
  const cmp = path.join(home, 'out', 'compare.html');
  r = cli('compare', 'r-old', 'r-new', '--out', cmp);
  assert.equal(r.status, 0, r.stderr);
  assert.ok(fs.readFileSync(cmp, 'utf8').includes('<table id="compare">'));
  r = cli('compare', 'r-old');
  assert.equal(r.status, 2);
  r = cli('report', 'r-missing');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /no run "r-missing"/);
});
