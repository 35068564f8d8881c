// Twenty labelers on one batch over real HTTP (loopback), and submissions racing a close.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { testServer } from './helpers.js';
import { addPairs, createBatch, batchProgress } from '../../src/labeling/batches.js';
import { addUser } from '../../src/labeling/users.js';

async function listen(s: Awaited<ReturnType<typeof testServer>>): Promise<string> {
  await s.app.listen({ port: 0, host: '127.0.0.1' });
  return `http://127.0.0.1:${(s.app.server.address() as AddressInfo).port}`;
}

function client(base: string, token: string) {
  return async (method: string, url: string, body?: unknown) => {
    const res = await fetch(base + url, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as any };
  };
}

const pairs = (n: number) => Array.from({ length: n }, (_, i) => ({ prompt: `prompt ${i}`, a: { text: `a${i}` }, b: { text: `b${i}` } }));

test('20 concurrent labelers: quota kept, no label lost, no assignment shared, nobody sees a pair twice', { timeout: 120_000 }, async () => {
  const s = await testServer();
  const base = await listen(s);
  const quota = 3;
  const batch = createBatch(s.db, { name: 'crowd', quota, leaseSeconds: 1 });
  addPairs(s.db, batch.id, pairs(40));
  const labelers = Array.from({ length: 20 }, (_, i) => ({ name: `l${i}`, ...addUser(s.db, `l${i}`, 'labeler') }));
  const owner = new Map<string, string>(); // assignmentId → labeler
  const stored: string[] = [];
  const seen = new Map<string, Set<string>>();
  let maxOver = 0;
  const deadline = Date.now() + 90_000;
  await Promise.all(
    labelers.map(async (l, idx) => {
      const call = client(base, l.token);
      seen.set(l.name, new Set());
      let abandoned = false;
      while (Date.now() < deadline) {
        const n = await call('POST', `/api/labeling/batches/${batch.id}/next`);
        assert.equal(n.status, 200, JSON.stringify(n.body));
        const a = n.body.assignment;
        if (!a) {
          if (batchProgress(s.db, batch.id).completePairs === 40) return;
          await new Promise((r) => setTimeout(r, 100)); // leases in flight may still expire back to the pool
          continue;
        }
        const prev = owner.get(a.assignmentId);
        assert.ok(prev === undefined || prev === l.name, `assignment ${a.assignmentId} given to ${prev} and ${l.name}`);
        owner.set(a.assignmentId, l.name);
        const mine = seen.get(l.name)!;
        if (prev === undefined) {
          assert.ok(!mine.has(a.prompt), `${l.name} saw "${a.prompt}" twice`);
          mine.add(a.prompt);
        }
        // two labelers abandon their first lease and never come back
        if (idx < 2 && !abandoned) {
          abandoned = true;
          return;
        }
        const r = await call('POST', `/api/labeling/assignments/${a.assignmentId}/label`, { choice: ['left', 'right', 'tie'][(idx + mine.size) % 3], durationMs: 100 });
        if (r.status === 200) stored.push(r.body.labelId);
        else assert.equal(r.status, 409, JSON.stringify(r.body)); // only a lease lost to expiry may be refused
        const over = s.db.$client.prepare('SELECT max(label_count) AS m FROM pairs WHERE batch_id = ?').get(batch.id) as { m: number };
        maxOver = Math.max(maxOver, over.m - quota);
      }
    }),
  );
  const rows = s.db.$client.prepare('SELECT p.id, p.label_count AS n, (SELECT count(*) FROM labels l WHERE l.pair_id = p.id) AS real, (SELECT count(DISTINCT user_id) FROM labels l WHERE l.pair_id = p.id) AS users FROM pairs p').all() as { n: number; real: number; users: number }[];
  assert.equal(rows.length, 40);
  for (const r of rows) {
    assert.equal(r.n, quota, 'every pair reached exactly its quota');
    assert.equal(r.real, quota);
    assert.equal(r.users, quota, 'three different labelers per pair');
  }
  assert.equal(maxOver, 0);
  // no label lost: every acknowledged label is in the database, and nothing unacknowledged is
  const ids = new Set((s.db.$client.prepare('SELECT id FROM labels').all() as { id: string }[]).map((r) => r.id));
  assert.equal(ids.size, stored.length);
  for (const id of stored) assert.ok(ids.has(id));
});

test('submissions racing a close are either stored or refused with a clear message, never lost', { timeout: 60_000 }, async () => {
  const s = await testServer();
  const base = await listen(s);
  const batch = createBatch(s.db, { name: 'race', quota: 1 });
  addPairs(s.db, batch.id, pairs(20));
  const labelers = Array.from({ length: 20 }, (_, i) => addUser(s.db, `r${i}`, 'labeler'));
  const held = await Promise.all(labelers.map(async (l) => ({ l, a: (await client(base, l.token)('POST', `/api/labeling/batches/${batch.id}/next`)).body.assignment })));
  const admin = client(base, s.tokens.admin);
  const results = await Promise.all([
    ...held.slice(0, 10).map(({ l, a }) => client(base, l.token)('POST', `/api/labeling/assignments/${a.assignmentId}/label`, { choice: 'left' })),
    admin('POST', `/api/labeling/batches/${batch.id}/close`, {}),
    ...held.slice(10).map(({ l, a }) => client(base, l.token)('POST', `/api/labeling/assignments/${a.assignmentId}/label`, { choice: 'right' })),
  ]);
  const closeRes = results.splice(10, 1)[0]!;
  assert.equal(closeRes.status, 200);
  let ok = 0;
  for (const r of results) {
    if (r.status === 200) ok++;
    else {
      assert.equal(r.status, 409);
      assert.match(r.body.message, /closed before this label arrived; it was not stored/);
    }
  }
  const inDb = (s.db.$client.prepare('SELECT count(*) AS n FROM labels').get() as { n: number }).n;
  assert.equal(inDb, ok, 'exactly the acknowledged labels are stored');
  // after the close, everything is refused
  const late = await client(base, labelers[0]!.token)('POST', `/api/labeling/assignments/${held[0]!.a.assignmentId}/label`, { choice: 'left' });
  assert.equal(late.status, 409);
});
