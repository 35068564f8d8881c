// One-time view tickets (the UI's report and compare frames): used once, expire, die with the user.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ViewTickets, TICKET_TTL_MS } from '../../src/server/view-tickets.js';
import { bearer, testServer } from './helpers.js';
import { revokeUser } from '../../src/labeling/users.js';
import { seedReportRun } from './report-seed.js';
import { fixtureReport } from '../eval/fixture.js';

test('a ticket redeems once, and not after its time', () => {
  let now = 1_000;
  const book = new ViewTickets(() => now);
  const a = book.issue('u1', { kind: 'report', runId: 'r1' });
  assert.match(a.ticket, /^[A-Za-z0-9_-]{32}$/);
  assert.deepEqual(book.redeem(a.ticket), { userId: 'u1', target: { kind: 'report', runId: 'r1' } });
  assert.equal(book.redeem(a.ticket), undefined, 'second use');
  const b = book.issue('u1', { kind: 'compare', runs: 'r1,r2' });
  now += TICKET_TTL_MS + 1;
  assert.equal(book.redeem(b.ticket), undefined, 'expired');
  assert.equal(book.redeem('x'.repeat(32)), undefined, 'unknown');
});

test('ticket routes: readers only; an unknown run is a JSON 404 up front; a revoked user\'s ticket is dead', async () => {
  const s = await testServer();
  const post = (url: string, token: string, payload?: unknown) => s.app.inject({ method: 'POST', url, headers: bearer(token), ...(payload ? { payload } : {}) });
  assert.equal((await post('/api/runs/nope/report/view', s.tokens.labeler)).statusCode, 403);
  assert.equal((await s.app.inject({ method: 'POST', url: '/api/runs/nope/report/view' })).statusCode, 401);
  const missing = await post('/api/runs/nope/report/view', s.tokens.viewer);
  assert.equal(missing.statusCode, 404);
  assert.match(missing.json().message, /no run "nope"/);
  assert.equal((await post('/api/compare/view', s.tokens.viewer, { runs: 'a' })).statusCode, 400);
  assert.equal((await post('/api/compare/view', s.tokens.viewer, { runs: 'a,b', extra: 1 })).statusCode, 400);
  assert.equal((await s.app.inject({ method: 'GET', url: '/api/view/' + 'A'.repeat(32) })).statusCode, 404);
  assert.equal((await s.app.inject({ method: 'GET', url: '/api/view/' + '%3Cscript%3E'.repeat(4) })).statusCode, 400);

  await seedReportRun(s.db, s.home, 'r1', Date.now(), fixtureReport({ n: 12 }));
  const ok = await post('/api/runs/r1/report/view', s.tokens.viewer);
  assert.equal(ok.statusCode, 201, ok.body);
  const page = await s.app.inject({ method: 'GET', url: ok.json().url });
  assert.equal(page.statusCode, 200);
  assert.match(page.headers['content-security-policy'] as string, /^default-src 'none'; script-src 'sha256-/, "the report's own CSP, not the UI's");
  assert.match(page.headers['cache-control'] as string, /no-store/);
  assert.ok(page.body.includes('<table id="summary">'));
  assert.equal((await s.app.inject({ method: 'GET', url: ok.json().url })).statusCode, 404, 'used once');

  // A ticket whose holder is revoked before it is used serves nothing.
  const late = (await post('/api/runs/r1/report/view', s.tokens.viewer)).json().url as string;
  revokeUser(s.db, 'view');
  assert.equal((await s.app.inject({ method: 'GET', url: late })).statusCode, 404);
  // A labeler's token never gets one in the first place (checked above); an admin's does.
  assert.equal((await post('/api/runs/r1/report/view', s.tokens.admin)).statusCode, 201);
});
