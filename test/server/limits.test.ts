// Request limits and errors (issue 12, items 4 and 5): numbers past what SQLite stores, JSON nested
// without end and loosely typed bodies are 400s naming the field; a 500 always leaves its stack on
// stderr, with or without request logging, and never in the answer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import { testServer, bearer } from './helpers.js';
import { addPairs, createBatch } from '../../src/labeling/batches.js';
import { buildServer, jsonDepth } from '../../src/server/index.js';

const s = await testServer();
const batch = createBatch(s.db, { name: 'limits' });
addPairs(s.db, batch.id, [{ prompt: 'p', a: { text: 'a' }, b: { text: 'b' } }, { prompt: 'q', a: { text: 'c' }, b: { text: 'd' } }]);

test('huge numbers in the query string are 400s, not 500s', async () => {
  for (const o of ['1e400', '1e20', '9007199254740993']) {
    const r = await s.app.inject({ method: 'GET', url: `/api/labeling/batches/${batch.id}/pairs?offset=${o}`, headers: bearer(s.tokens.admin) });
    assert.equal(r.statusCode, 400, `offset=${o}: ${r.body}`);
    assert.equal(r.json().issues[0].field, 'querystring.offset');
  }
  const items = await s.app.inject({ method: 'GET', url: `/api/labeling/batches/${batch.id}/items?offset=1e20`, headers: bearer(s.tokens.admin) });
  assert.equal(items.statusCode, 400, items.body);
  const events = await s.app.inject({ method: 'GET', url: '/api/runs/r-x/events?after=1e400', headers: bearer(s.tokens.admin) });
  assert.equal(events.statusCode, 400, events.body);
  // query strings are still text coerced to the schema's types
  const ok = await s.app.inject({ method: 'GET', url: `/api/labeling/batches/${batch.id}/pairs?offset=1&limit=1`, headers: bearer(s.tokens.admin) });
  assert.equal(ok.statusCode, 200, ok.body);
  assert.equal(ok.json().pairs.length, 1);
  const seed = await s.app.inject({ method: 'POST', url: `/api/labeling/batches/${batch.id}/pairs`, headers: bearer(s.tokens.admin), payload: { pairs: [], seed: 1e20 } });
  assert.equal(seed.statusCode, 400, seed.body);
});

test('a 5,000-deep sampling object is a 400, and sampling is flat', async () => {
  const deep = '{"x":'.repeat(5000) + '1' + '}'.repeat(5000);
  const url = `/api/labeling/batches/${batch.id}/pairs`;
  const headers = { ...bearer(s.tokens.admin), 'content-type': 'application/json' };
  const r = await s.app.inject({ method: 'POST', url, headers, payload: `{"pairs":[{"prompt":"p","a":{"text":"a","sampling":${deep}},"b":{"text":"b"}}]}` });
  assert.equal(r.statusCode, 400, r.body);
  assert.match(r.json().message, /nested 50\d\d levels deep/);
  const nested = await s.app.inject({ method: 'POST', url, headers, payload: { pairs: [{ prompt: 'p', a: { text: 'a', sampling: { t: { u: 1 } } }, b: { text: 'b' } }] } });
  assert.equal(nested.statusCode, 400, nested.body);
  const flat = await s.app.inject({ method: 'POST', url, headers, payload: { pairs: [{ prompt: 'p2', a: { text: 'a', sampling: { temperature: 0.7, top_k: 5 } }, b: { text: 'b' } }] } });
  assert.equal(flat.statusCode, 200, flat.body);
  assert.equal(jsonDepth('{"a":"[[[{{{","b":[1,{"c":"\\"]"}]}'), 3, 'brackets inside strings do not count');
  const poisoned = await s.app.inject({ method: 'POST', url: '/api/labeling/batches', headers, payload: '{"name":"x","__proto__":{"admin":true}}' });
  assert.equal(poisoned.statusCode, 400, 'prototype poisoning is still refused');
});

test('bodies are validated strictly, as the OpenAPI document publishes them', async () => {
  const n = await s.app.inject({ method: 'POST', url: `/api/labeling/batches/${batch.id}/next`, headers: bearer(s.tokens.labeler) });
  const id = n.json().assignment.assignmentId as string;
  const label = (payload: unknown) => s.app.inject({ method: 'POST', url: `/api/labeling/assignments/${id}/label`, headers: bearer(s.tokens.labeler), payload: payload as object });
  for (const bad of [{ choice: ['left'] }, { choice: 'left', strength: '2' }, { choice: 'left', durationMs: '5' }, { choice: 'left', flags: 'unsafe' }]) {
    const r = await label(bad);
    assert.equal(r.statusCode, 400, `${JSON.stringify(bad)}: ${r.body}`);
  }
  const batchBody = await s.app.inject({ method: 'POST', url: '/api/labeling/batches', headers: bearer(s.tokens.admin), payload: { name: 'q', quota: '2' } });
  assert.equal(batchBody.statusCode, 400, batchBody.body);
  const doc = (await s.app.inject({ method: 'GET', url: '/openapi.json' })).json();
  const schema = doc.paths['/api/labeling/assignments/{assignmentId}/label'].post.requestBody.content['application/json'].schema;
  assert.equal(schema.properties.choice.type, 'string');
  const ok = await label({ choice: 'left', strength: 2, flags: ['unsafe'], durationMs: 5 });
  assert.equal(ok.statusCode, 200, ok.body);
});

async function captureStderr(fn: () => Promise<void>): Promise<string> {
  const write = process.stderr.write.bind(process.stderr);
  let out = '';
  process.stderr.write = ((chunk: string | Uint8Array) => {
    out += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
    return true;
  }) as typeof process.stderr.write;
  try {
    await fn();
  } finally {
    process.stderr.write = write;
  }
  return out;
}

test('a 500 is logged with its stack on stderr, with and without request logging; the client sees "internal error"', async () => {
  for (const logger of [false, true]) {
    let app: FastifyInstance | undefined;
    const logged = await captureStderr(async () => {
      app = await buildServer({
        db: s.db,
        home: s.home,
        logger,
        plugins: [async (a) => void a.get('/api/boom', { config: { roles: 'public' } }, async () => { throw new Error('kaboom in the handler'); })],
      });
      const r = await app.inject({ method: 'GET', url: '/api/boom?secret=1' });
      assert.equal(r.statusCode, 500);
      assert.deepEqual(r.json(), { error: 'internal', message: 'internal error' });
    });
    await app!.close();
    assert.match(logged, /internal error in GET \/api\/boom \(request [^)]+\):\nError: kaboom in the handler\n\s+at /, `logger ${logger}: ${logged}`);
    assert.doesNotMatch(logged, /secret=1/);
  }
});

test("the server's connection commits with synchronous=FULL (acknowledged labels survive a power cut)", () => {
  assert.equal(s.db.$client.pragma('synchronous', { simple: true }), 2);
});
