// Tokens (issue 12, item 6): each token can be revoked and can expire on its own; a revoked user
// can be let back in with a new token; revoking a user hands their leased pairs back at once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { testServer, bearer } from './helpers.js';
import { addPairs, createBatch } from '../../src/labeling/batches.js';
import { addUser, issueToken, listTokens } from '../../src/labeling/users.js';
import { parseExpiry } from '../../src/cli/commands/users.js';

const s = await testServer();
const me = (token: string) => s.app.inject({ method: 'GET', url: '/api/me', headers: bearer(token) });
const admin = (method: 'GET' | 'POST', url: string, payload?: object) => s.app.inject({ method, url, headers: bearer(s.tokens.admin), ...(payload ? { payload } : {}) });

test('one token is revoked, the user and their other token keep working', async () => {
  const first = addUser(s.db, 'two-tokens', 'viewer');
  const second = await admin('POST', '/api/users/two-tokens/tokens');
  assert.equal(second.statusCode, 201, second.body);
  const { token, tokenId } = second.json();
  assert.equal((await me(token)).statusCode, 200);
  const listed = await admin('GET', '/api/users/two-tokens/tokens');
  assert.deepEqual(listed.json().tokens.map((t: { id: string }) => t.id).sort(), [first.tokenId, tokenId].sort());
  assert.ok(!listed.body.includes(token), 'the token itself is never listed');
  const r = await admin('POST', `/api/tokens/${tokenId}/revoke`);
  assert.equal(r.statusCode, 200, r.body);
  assert.equal((await me(token)).statusCode, 401);
  assert.equal((await me(first.token)).statusCode, 200);
  assert.equal((await admin('POST', '/api/tokens/t-0000/revoke')).statusCode, 404);
});

test('a token stops working when it expires', async () => {
  addUser(s.db, 'shortlived', 'viewer');
  const soon = issueToken(s.db, 'shortlived', { expiresAt: Date.now() + 300 });
  assert.equal((await me(soon.token)).statusCode, 200);
  await new Promise((r) => setTimeout(r, 400));
  assert.equal((await me(soon.token)).statusCode, 401);
  const api = await admin('POST', '/api/users/shortlived/tokens', { expiresInDays: 30 });
  assert.equal(api.statusCode, 201, api.body);
  const days = (api.json().expiresAt - Date.now()) / 86_400_000;
  assert.ok(days > 29.9 && days <= 30, String(days));
  assert.equal((await me(api.json().token)).statusCode, 200);
  assert.equal((await admin('POST', '/api/users/shortlived/tokens', { expiresInDays: 0 })).statusCode, 400);
  assert.throws(() => issueToken(s.db, 'shortlived', { expiresAt: Date.now() - 1 }), /expire in the future/);
  assert.equal(listTokens(s.db, 'shortlived').filter((t) => t.expiresAt !== null).length, 2, 'the two expiring tokens (the first one never expires)');
  const now = 1_000_000;
  assert.deepEqual(parseExpiry('90d', now), { expiresAt: now + 90 * 86_400_000 });
  assert.deepEqual(parseExpiry('12h', now), { expiresAt: now + 12 * 3_600_000 });
  assert.throws(() => parseExpiry('soon'), /90d, 12h or 30m/);
});

test('a revoked user is re-enabled with a new token; the old ones stay revoked', async () => {
  const u = addUser(s.db, 'comeback', 'labeler');
  assert.equal((await admin('POST', '/api/users/comeback/revoke')).statusCode, 200);
  assert.equal((await me(u.token)).statusCode, 401);
  assert.equal((await admin('POST', '/api/users/comeback/tokens')).statusCode, 400, 'no token for a revoked user');
  const en = await admin('POST', '/api/users/comeback/enable');
  assert.equal(en.statusCode, 201, en.body);
  assert.equal((await me(en.json().token)).statusCode, 200);
  assert.equal((await me(u.token)).statusCode, 401);
  const users = (await admin('GET', '/api/users')).json().users as { name: string; disabled: boolean }[];
  assert.equal(users.find((x) => x.name === 'comeback')!.disabled, false);
});

test("revoking a user releases their open leases at once", async () => {
  const batch = createBatch(s.db, { name: 'one-pair', quota: 1, leaseSeconds: 3600 });
  addPairs(s.db, batch.id, [{ prompt: 'p', a: { text: 'a' }, b: { text: 'b' } }]);
  const leaver = addUser(s.db, 'leaver', 'labeler');
  const stayer = addUser(s.db, 'stayer', 'labeler');
  const next = (token: string) => s.app.inject({ method: 'POST', url: `/api/labeling/batches/${batch.id}/next`, headers: bearer(token) });
  assert.ok((await next(leaver.token)).json().assignment, 'the leaver holds the only pair');
  assert.equal((await next(stayer.token)).json().assignment, null, 'nothing left while the lease is live');
  const r = await admin('POST', '/api/users/leaver/revoke');
  assert.equal(r.json().releasedLeases, 1);
  const got = (await next(stayer.token)).json().assignment;
  assert.ok(got, 'the pair is back in the queue without waiting an hour for the lease');
  assert.equal(got.prompt, 'p');
});
