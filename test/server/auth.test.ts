import { test } from 'node:test';
import assert from 'node:assert/strict';
import { testServer, bearer } from './helpers.js';
import { createBatch, addPairs } from '../../src/labeling/batches.js';
import { addUser } from '../../src/labeling/users.js';

test('401/403 matrix: every API route checks the token and the role', async () => {
  const s = await testServer();
  const b = createBatch(s.db, { name: 'm', quota: 2 });
  addPairs(s.db, b.id, [{ prompt: 'p', a: { text: 'x', modelArtifactId: 'a-secretmodel0001' }, b: { text: 'y', modelArtifactId: 'a-secretmodel0002' } }]);
  const cases: { method: 'GET' | 'POST'; url: string; body?: unknown; allowed: ('admin' | 'labeler' | 'viewer')[] }[] = [
    { method: 'GET', url: '/api/me', allowed: ['admin', 'labeler', 'viewer'] },
    { method: 'GET', url: '/api/users', allowed: ['admin'] },
    { method: 'POST', url: '/api/users', body: { name: 'n1', role: 'viewer' }, allowed: ['admin'] },
    { method: 'GET', url: '/api/runs', allowed: ['admin', 'viewer'] },
    { method: 'GET', url: '/api/datasets', allowed: ['admin', 'viewer'] },
    { method: 'GET', url: '/api/artifacts', allowed: ['admin', 'viewer'] },
    { method: 'GET', url: '/api/labeling/queue', allowed: ['admin', 'labeler'] },
    { method: 'GET', url: '/api/labeling/batches', allowed: ['admin', 'viewer'] },
    { method: 'POST', url: '/api/labeling/batches', body: { name: 'x' }, allowed: ['admin'] },
    { method: 'GET', url: `/api/labeling/batches/${b.id}/stats`, allowed: ['admin', 'viewer'] },
    { method: 'GET', url: `/api/labeling/batches/${b.id}/pairs`, allowed: ['admin', 'viewer'] },
    { method: 'GET', url: `/api/labeling/batches/${b.id}/labels`, allowed: ['admin'] },
    { method: 'GET', url: `/api/labeling/batches/${b.id}/export`, allowed: ['admin'] },
    { method: 'POST', url: `/api/labeling/batches/${b.id}/next`, allowed: ['admin', 'labeler'] },
    { method: 'GET', url: `/api/labeling/batches/${b.id}/me`, allowed: ['admin', 'labeler'] },
    { method: 'POST', url: `/api/runs/r-nonexistent/cancel`, body: {}, allowed: ['admin'] },
  ];
  let names = 0;
  for (const c of cases) {
    const body = c.url === '/api/users' && c.method === 'POST' ? { name: `n${names++}`, role: 'viewer' } : c.body;
    for (const auth of [undefined, 'Bearer nonsense-token-123', 'Basic abc']) {
      const r = await s.app.inject({ method: c.method, url: c.url, payload: body as object, headers: auth ? { authorization: auth } : {} });
      assert.equal(r.statusCode, 401, `${c.method} ${c.url} with ${auth ?? 'no token'} → ${r.statusCode}`);
    }
    for (const role of ['admin', 'labeler', 'viewer'] as const) {
      const r = await s.app.inject({ method: c.method, url: c.url, payload: (c.url === '/api/users' && c.method === 'POST' ? { name: `n${names++}`, role: 'viewer' } : body) as object, headers: bearer(s.tokens[role]) });
      if (c.allowed.includes(role)) assert.ok(r.statusCode !== 401 && r.statusCode !== 403, `${role} ${c.method} ${c.url} → ${r.statusCode} ${r.body}`);
      else assert.equal(r.statusCode, 403, `${role} ${c.method} ${c.url} → ${r.statusCode}`);
    }
  }
  // a revoked user's token stops working at once
  const u = addUser(s.db, 'temp', 'viewer');
  assert.equal((await s.app.inject({ method: 'GET', url: '/api/me', headers: bearer(u.token) })).statusCode, 200);
  assert.equal((await s.app.inject({ method: 'POST', url: '/api/users/temp/revoke', headers: bearer(s.tokens.admin) })).statusCode, 200);
  assert.equal((await s.app.inject({ method: 'GET', url: '/api/me', headers: bearer(u.token) })).statusCode, 401);
});

test('a labeler never receives model ids, the a/b mapping, or another labeler\'s labels', async () => {
  const s = await testServer();
  const b = createBatch(s.db, { name: 'hidden', quota: 2 });
  addPairs(s.db, b.id, [{ prompt: 'p', a: { text: 'x', modelArtifactId: 'a-secretmodel0001' }, b: { text: 'y', modelArtifactId: 'a-secretmodel0002' } }], { gold: [] });
  const other = addUser(s.db, 'other', 'labeler');
  const n1 = await s.app.inject({ method: 'POST', url: `/api/labeling/batches/${b.id}/next`, headers: bearer(other.token) });
  const a1 = n1.json().assignment;
  await s.app.inject({ method: 'POST', url: `/api/labeling/assignments/${a1.assignmentId}/label`, headers: bearer(other.token), payload: { choice: 'left', rationale: 'secret rationale' } });
  const n2 = await s.app.inject({ method: 'POST', url: `/api/labeling/batches/${b.id}/next`, headers: bearer(s.tokens.labeler) });
  const a2 = n2.json().assignment;
  assert.ok(a2);
  for (const body of [n2.body, (await s.app.inject({ method: 'GET', url: '/api/labeling/queue', headers: bearer(s.tokens.labeler) })).body, (await s.app.inject({ method: 'GET', url: `/api/labeling/batches/${b.id}/me`, headers: bearer(s.tokens.labeler) })).body]) {
    assert.ok(!body.includes('secretmodel'), body);
    assert.ok(!body.includes('secret rationale'), body);
    assert.ok(!/"(isGold|goldAnswer|leftResponse|left_response|responseAId|modelArtifactId)"/.test(body), body);
  }
  // submitting on someone else's assignment is refused and stores nothing
  const r = await s.app.inject({ method: 'POST', url: `/api/labeling/assignments/${a2.assignmentId}/label`, headers: bearer(other.token), payload: { choice: 'left' } });
  assert.equal(r.statusCode, 403);
  const undo = await s.app.inject({ method: 'POST', url: `/api/labeling/batches/${b.id}/undo`, headers: bearer(s.tokens.labeler) });
  assert.equal(undo.statusCode, 409); // the labeler has no label of their own; the other's is untouchable
  assert.equal((s.db.$client.prepare('SELECT count(*) AS n FROM labels').get() as { n: number }).n, 1);
});

test('every request is validated: bad bodies, params and queries get 400 and change nothing', async () => {
  const s = await testServer();
  const b = createBatch(s.db, { name: 'v', quota: 1 });
  addPairs(s.db, b.id, [{ prompt: 'p', a: { text: 'x' }, b: { text: 'y' } }]);
  const a = (await s.app.inject({ method: 'POST', url: `/api/labeling/batches/${b.id}/next`, headers: bearer(s.tokens.labeler) })).json().assignment;
  const L = `/api/labeling/assignments/${a.assignmentId}/label`;
  const bad: { method: 'GET' | 'POST'; url: string; payload?: unknown; token?: 'admin' | 'labeler' }[] = [
    { method: 'POST', url: L, payload: {} },
    { method: 'POST', url: L, payload: { choice: 'left', strength: 7 } },
    { method: 'POST', url: L, payload: { choice: 'left', flags: ['fun'] } },
    { method: 'POST', url: L, payload: { choice: 'left', extra: true } },
    { method: 'POST', url: L, payload: { choice: 'left', rationale: 'x'.repeat(5001) } },
    { method: 'POST', url: L, payload: { choice: 'tie', strength: 2 } },
    { method: 'POST', url: L, payload: { choice: 'left', durationMs: -5 } },
    { method: 'POST', url: `/api/labeling/assignments/${a.assignmentId}/skip`, payload: { reason: '' } },
    { method: 'POST', url: `/api/labeling/assignments/bad%20id/label`, payload: { choice: 'left' } },
    { method: 'POST', url: '/api/labeling/batches', payload: { name: 'x', quota: 0 }, token: 'admin' },
    { method: 'POST', url: '/api/labeling/batches', payload: { name: 'x', goldRate: 1 }, token: 'admin' },
    { method: 'POST', url: '/api/users', payload: { name: 'bad name!', role: 'admin' }, token: 'admin' },
    { method: 'POST', url: '/api/users', payload: { name: 'ok', role: 'root' }, token: 'admin' },
    { method: 'GET', url: `/api/labeling/batches/${b.id}/export?resolution=coinflip`, token: 'admin' },
    { method: 'GET', url: '/api/runs?limit=abc', token: 'admin' },
  ];
  for (const c of bad) {
    const r = await s.app.inject({ method: c.method, url: c.url, payload: c.payload as object, headers: bearer(s.tokens[c.token ?? 'labeler']) });
    assert.equal(r.statusCode, 400, `${c.method} ${c.url} ${JSON.stringify(c.payload)?.slice(0, 80)} → ${r.statusCode} ${r.body}`);
    assert.equal(r.json().error, 'input');
  }
  const raw = await s.app.inject({ method: 'POST', url: L, payload: '{not json', headers: { ...bearer(s.tokens.labeler), 'content-type': 'application/json' } });
  assert.equal(raw.statusCode, 400);
  assert.equal((s.db.$client.prepare('SELECT count(*) AS n FROM labels').get() as { n: number }).n, 0);
  assert.equal((s.db.$client.prepare('SELECT count(*) AS n FROM label_batches').get() as { n: number }).n, 1);
  assert.equal((s.db.$client.prepare('SELECT count(*) AS n FROM users').get() as { n: number }).n, 3);
});

test('OpenAPI document lists every API route with its schema and roles', async () => {
  const s = await testServer();
  const r = await s.app.inject({ method: 'GET', url: '/openapi.json' });
  assert.equal(r.statusCode, 200);
  const doc = r.json();
  assert.equal(doc.openapi, '3.1.0');
  const label = doc.paths['/api/labeling/assignments/{assignmentId}/label'].post;
  assert.deepEqual(label['x-roles'], ['labeler', 'admin']);
  assert.deepEqual(label.requestBody.content['application/json'].schema.properties.choice.enum, ['left', 'right', 'tie', 'both_bad']);
  assert.equal(label.parameters[0].name, 'assignmentId');
  assert.ok(doc.paths['/api/runs'].get);
  assert.ok(doc.paths['/api/users'].post.responses['403']);
});

test('the web UI is served locally with a strict content security policy', async () => {
  const s = await testServer();
  const page = await s.app.inject({ method: 'GET', url: '/' });
  assert.equal(page.statusCode, 200);
  assert.match(page.headers['content-security-policy'] as string, /script-src 'self';/);
  assert.ok(!/https?:\/\//.test(page.body), 'no remote assets');
  for (const f of ['app.js', 'app.css', 'markdown.js']) {
    const r = await s.app.inject({ method: 'GET', url: `/web/${f}` });
    assert.equal(r.statusCode, 200, f);
    assert.ok(!/(src|href)=["']https?:/.test(r.body) && !/import .* from ['"]https?:/.test(r.body), `${f} loads nothing remote`);
  }
  assert.equal((await s.app.inject({ method: 'GET', url: '/web/..%2Fserver%2Findex.ts' })).statusCode, 400);
});
