// An admin's batch life cycle over the API: create (with gold), add pairs, label, stats, export, close.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { testServer, bearer } from './helpers.js';

test('batch life cycle over the API, gold mixed in, export in TRL format', async () => {
  const s = await testServer();
  const A = bearer(s.tokens.admin);
  const L = bearer(s.tokens.labeler);
  const created = await s.app.inject({ method: 'POST', url: '/api/labeling/batches', headers: A, payload: { name: 'api batch', quota: 1, goldRate: 0.25, guidelines: 'be fair', leaseSeconds: 60 } });
  assert.equal(created.statusCode, 201, created.body);
  const b = created.json();
  assert.equal((await s.app.inject({ method: 'POST', url: '/api/labeling/batches', headers: A, payload: { name: 'x', runId: 'r-missing' } })).statusCode, 404);
  const pairs = Array.from({ length: 6 }, (_, i) => ({ prompt: `p${i}`, a: { text: `good ${i}`, modelArtifactId: 'a-0123456789abcdef', seed: 5 }, b: { text: `bad ${i}`, modelArtifactId: 'a-fedcba9876543210', seed: 5 } }));
  const gold = Array.from({ length: 5 }, (_, i) => ({ prompt: `g${i}`, chosen: `good gold ${i}`, rejected: `bad gold ${i}` }));
  const add = await s.app.inject({ method: 'POST', url: `/api/labeling/batches/${b.id}/pairs`, headers: A, payload: { pairs, gold, seed: 3 } });
  assert.equal(add.statusCode, 200, add.body);
  assert.deepEqual(add.json(), { added: 6, gold: 2 });

  const viewerPairs = (await s.app.inject({ method: 'GET', url: `/api/labeling/batches/${b.id}/pairs`, headers: bearer(s.tokens.viewer) })).json();
  assert.equal(viewerPairs.pairs.length, 8);
  assert.equal(viewerPairs.pairs.filter((p: { isGold: boolean }) => p.isGold).length, 2);
  assert.ok(viewerPairs.pairs.some((p: { a: { modelArtifactId: string } }) => p.a.modelArtifactId === 'a-0123456789abcdef'));

  const queue = (await s.app.inject({ method: 'GET', url: '/api/labeling/queue', headers: L })).json();
  assert.deepEqual(queue.batches.map((q: { name: string; guidelines: string; total: number }) => [q.name, q.guidelines, q.total]), [['api batch', 'be fair', 6]]);
  for (;;) {
    const a = (await s.app.inject({ method: 'POST', url: `/api/labeling/batches/${b.id}/next`, headers: L })).json().assignment;
    if (!a) break;
    const choice = a.left.startsWith('good') ? 'left' : 'right';
    const r = await s.app.inject({ method: 'POST', url: `/api/labeling/assignments/${a.assignmentId}/label`, headers: L, payload: { choice, strength: 2, durationMs: 1200 } });
    assert.equal(r.statusCode, 200, r.body);
  }
  const me = (await s.app.inject({ method: 'GET', url: `/api/labeling/batches/${b.id}/me`, headers: L })).json();
  assert.equal(me.me.labels, 8);
  assert.equal(me.me.goldAccuracy, 1);
  assert.deepEqual(me.progress, { done: 6, total: 6, pairs: 6, completePairs: 6 });

  const stats = (await s.app.inject({ method: 'GET', url: `/api/labeling/batches/${b.id}/stats`, headers: A })).json();
  assert.deepEqual(stats.gold, [{ annotator: 'user:lab', correct: 2, total: 2, accuracy: 1 }]);
  assert.equal(stats.time[0].medianMs, 1200);

  const ex = await s.app.inject({ method: 'GET', url: `/api/labeling/batches/${b.id}/export?resolution=strength`, headers: A });
  assert.equal(ex.statusCode, 200);
  assert.match(ex.headers['content-type'] as string, /ndjson/);
  const recs = ex.body.trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(recs.length, 6);
  for (const r of recs) {
    assert.deepEqual(Object.keys(r), ['prompt', 'chosen', 'rejected']);
    assert.match(r.chosen, /^good \d$/);
  }
  const raw = (await s.app.inject({ method: 'GET', url: `/api/labeling/batches/${b.id}/export?what=labels`, headers: A })).body.trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(raw.length, 8);
  assert.ok(raw.every((r: { annotator: string; strength: number }) => r.annotator === 'user:lab' && r.strength === 2));

  const close = await s.app.inject({ method: 'POST', url: `/api/labeling/batches/${b.id}/close`, headers: A });
  assert.equal(close.json().status, 'closed');
  assert.equal((await s.app.inject({ method: 'POST', url: `/api/labeling/batches/${b.id}/undo`, headers: L })).statusCode, 409);
  assert.deepEqual((await s.app.inject({ method: 'GET', url: '/api/labeling/queue', headers: L })).json().batches, []);
});
