// The labeling service over the coordinator API (src/server/routes/coordinator-labeling.ts and its
// client, src/orchestrator/remote/labeling.ts), over real HTTP and a real SQLite file:
//   - scope: only the worker process holding the stage (another token: 403; the same token's
//     other process, i.e. an attempt taken over: 409), only that stage's batches and answers;
//   - retries: between the worker and the coordinator sits a proxy that loses the answer of a
//     chosen request after the coordinator has done it; the client's retry must not store pairs,
//     responses or labels twice;
//   - the remote port answers what the coordinator's own port answers.
import test from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { setup, submit, writeFile } from '../orchestrator/helpers.js';
import { buildServer } from '../../src/server/index.js';
import { addUser } from '../../src/labeling/users.js';
import { createLabelingPort } from '../../src/labeling/port.js';
import { advanceRun } from '../../src/orchestrator/scheduler.js';
import { runStages } from '../../src/orchestrator/runs.js';
import { CoordinatorClient } from '../../src/orchestrator/remote/client.js';
import { remoteLabeling } from '../../src/orchestrator/remote/labeling.js';
import type { PairInput } from '../../src/labeling/batches.js';

const env = await setup();
const app = await buildServer({ db: env.db, home: env.home, store: env.store });
const base = await app.listen({ port: 0, host: '127.0.0.1' });

// A proxy that forwards every request and, for a path named in `lose`, drops the connection
// after the coordinator answered (the answer is lost; the work is done).
const lose = new Set<string>();
const seen: string[] = [];
const proxy = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    void (async () => {
      const body = Buffer.concat(chunks);
      const headers: Record<string, string> = {};
      for (const k of ['authorization', 'alignflow-worker', 'content-type']) if (typeof req.headers[k] === 'string') headers[k] = req.headers[k] as string;
      const r = await fetch(base + req.url, { method: req.method!, headers, ...(body.length ? { body } : {}) });
      const answer = Buffer.from(await r.arrayBuffer());
      const pathOnly = req.url!.split('?')[0]!;
      seen.push(`${req.method} ${pathOnly}`);
      const lost = [...lose].find((p) => pathOnly.endsWith(p));
      if (lost) {
        lose.delete(lost);
        req.socket.destroy();
        return;
      }
      res.writeHead(r.status, { 'content-type': r.headers.get('content-type') ?? 'application/json' });
      res.end(answer);
    })();
  });
});
await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
const viaProxy = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
test.after(async () => {
  proxy.close();
  await app.close();
});

const tok = { w1: addUser(env.db, 'w1', 'worker').token, w2: addUser(env.db, 'w2', 'worker').token };
const C = `${base}/api/coord/v1`;
const h = (t: string, worker = 'proc-1', extra: Record<string, string> = {}) => ({ authorization: `Bearer ${t}`, 'alignflow-worker': worker, ...extra });
const post = (t: string, url: string, body?: unknown, worker = 'proc-1') =>
  fetch(url, { method: 'POST', headers: h(t, worker, body === undefined ? {} : { 'content-type': 'application/json' }), ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
const count = (sql: string, ...args: unknown[]) => (env.db.$client.prepare(sql).get(...args) as { n: number }).n;

writeFile(env.dir, 'data.jsonl', '{"text":"labels"}\n');
const spec = `
name: coord-labeling
datasets: { data: data.jsonl }
stages:
  a: { kind: count, inputs: { data: datasets.data }, config: { steps: 2, step_ms: 1, salt: labeling } }
  b: { kind: count, inputs: { data: datasets.data }, config: { steps: 2, step_ms: 1, salt: labeling-b } }
`;

test('labeling over the coordinator: scoped to the held stage; a retried write after a lost answer stores nothing twice', { timeout: 60_000 }, async () => {
  const runId = await submit(env, spec, { executor: 'bullmq' });
  advanceRun(env.db, runId);
  const [a, b] = ['a', 'b'].map((n) => runStages(env.db, runId).find((s) => s.name === n)!);
  // w1/proc-1 holds stage a; w2/proc-1 holds stage b.
  assert.equal(((await (await post(tok.w1, `${C}/stages/${a!.id}/claim`)).json()) as { ok: boolean }).ok, true);
  assert.equal(((await (await post(tok.w2, `${C}/stages/${b!.id}/claim`)).json()) as { ok: boolean }).ok, true);
  const L = `${C}/stages/${a!.id}/labeling`;
  const pair = (i: number): PairInput => ({ prompt: `prompt ${i}`, a: { text: `short ${i}` }, b: { text: `a longer answer ${i}` } });

  // Scope: another token, not holding the stage, gets 403 on every call; the same token's other
  // process (an attempt that was taken over) gets 409; bodies are validated.
  assert.equal((await post(tok.w2, `${L}/pairs`, { pairs: [pair(0)] })).status, 403);
  assert.equal((await post(tok.w2, `${L}/batch`, { name: 'x' })).status, 403);
  assert.equal((await fetch(`${L}/batches/b-nope/progress`, { headers: h(tok.w2) })).status, 403);
  assert.equal((await post(tok.w1, `${L}/pairs`, { pairs: [pair(0)] }, 'proc-2')).status, 409);
  assert.equal((await post(tok.w1, `${L}/pairs`, { pairs: [{ prompt: 'p', a: { text: 1 }, b: { text: 'x' } }] })).status, 400);
  assert.equal((await post(tok.w1, `${L}/pairs`, { pairs: [], extra: 1 })).status, 400);
  assert.equal(count('SELECT count(*) AS n FROM pairs'), 0, 'nothing refused was stored');

  const client = new CoordinatorClient(viaProxy, tok.w1, 'proc-1', { retryMs: 20_000 });
  const port = remoteLabeling(client, { runId, stageId: a!.id });
  const local = createLabelingPort(env.db);

  // savePairs: pairs without ids (the client names them before the first try), answer lost once.
  lose.add('/labeling/pairs');
  const ids = await port.savePairs(runId, a!.id, [pair(1), pair(2), pair(3)]);
  assert.equal(seen.filter((s) => s.endsWith('/labeling/pairs')).length, 2, 'the request was sent twice');
  assert.equal(ids.length, 3);
  assert.equal(count('SELECT count(*) AS n FROM pairs WHERE stage_id = ?', a!.id), 3, 'three pairs, not six');
  assert.equal(count('SELECT count(*) AS n FROM responses WHERE stage_id = ?', a!.id), 6, 'six answers, not twelve');
  await assert.rejects(port.savePairs(runId, b!.id, [pair(4)]), /labels for the stage it holds/);

  // ensureBatch and fillBatch, each answer lost once: one batch, filled once.
  lose.add('/labeling/batch');
  const batch = await port.ensureBatch({ runId, stageId: a!.id, name: 'a batch', quota: 1 });
  assert.equal(count('SELECT count(*) AS n FROM label_batches WHERE stage_id = ?', a!.id), 1);
  assert.deepEqual(await port.ensureBatch({ runId, stageId: a!.id, name: 'a batch', quota: 1 }), batch, 'the stage finds its own batch');
  lose.add('/fill');
  const fill = await port.fillBatch(batch.id, ids.map((id, i) => ({ ...pair(i + 1), id })), { seed: 1 });
  // The retry finds the batch filled (as a resumed stage would): the pairs are in it once.
  assert.equal(fill.alreadyFilled, true);
  assert.equal(count('SELECT count(*) AS n FROM pairs WHERE batch_id = ?', batch.id), 3);
  assert.equal(count('SELECT count(*) AS n FROM pairs WHERE stage_id = ?', a!.id), 3, 'the collected pairs joined the batch, no copies');

  // recordLabels with the answer lost: each label stored once, label_count bumped once.
  const pairs = await port.pairsOf(batch.id);
  assert.deepEqual(pairs, await local.pairsOf(batch.id));
  lose.add('/labels');
  const recorded = await port.recordLabels(batch.id, pairs.map((p) => ({ pairId: p.pairId, decision: 'a' as const, source: 'judge:test@1' })));
  assert.equal(recorded, 3);
  assert.equal(await port.labelCount(batch.id), 3, 'three labels, not six');
  assert.equal(count('SELECT sum(label_count) AS n FROM pairs WHERE batch_id = ?', batch.id), 3);
  lose.add('/scores');
  await port.setScore(pairs[0]!.a.id, 0.75);
  assert.equal(count('SELECT score AS n FROM responses WHERE id = ?', pairs[0]!.a.id), 0.75);
  lose.add('/close');
  await port.closeBatch(batch.id);
  assert.equal((await port.progress(batch.id)).status, 'closed');
  assert.equal(lose.size, 0, 'every chosen answer was lost once');
  for (const p of ['/labeling/pairs', '/labeling/batch', '/fill', '/labels', '/scores', '/close']) assert.equal(seen.filter((s) => s.startsWith('POST') && s.endsWith(p)).length, p === '/labeling/batch' ? 3 : 2, `${p}: tried, answer lost, retried`);

  // The remote port answers what the coordinator's own does.
  assert.deepEqual(await port.progress(batch.id), await local.progress(batch.id));
  assert.deepEqual(await port.preferences(batch.id, 'majority'), await local.preferences(batch.id, 'majority'));
  assert.deepEqual(await port.rawLabels(batch.id), await local.rawLabels(batch.id));
  assert.equal((await port.preferences(batch.id)).records.length, 3);

  // Another stage's batch and answers are out of reach, even for a worker holding a stage.
  const portB = remoteLabeling(new CoordinatorClient(base, tok.w2, 'proc-1'), { runId, stageId: b!.id });
  const batchB = await portB.ensureBatch({ runId, stageId: b!.id, name: 'b batch' });
  assert.equal((await fetch(`${L}/batches/${batchB.id}/progress`, { headers: h(tok.w1) })).status, 403, "stage a's worker reads no batch of stage b");
  assert.equal((await fetch(`${C}/stages/${b!.id}/labeling/batches/${batch.id}/raw-labels`, { headers: h(tok.w2) })).status, 403, "stage b's worker reads no batch of stage a");
  assert.equal((await post(tok.w2, `${C}/stages/${b!.id}/labeling/batches/${batch.id}/labels`, { labels: [{ id: 'l-x', pairId: ids[0], decision: 'b', source: 'x' }] })).status, 403);
  assert.equal((await post(tok.w2, `${C}/stages/${b!.id}/labeling/scores`, { responseId: pairs[0]!.a.id, score: 1 })).status, 403, "an answer outside stage b's batches");
  await assert.rejects(portB.setScore(pairs[0]!.a.id, 1), /403/);

  // Once the stage is given back, its worker can no longer label.
  const done = await post(tok.w1, `${C}/stages/${a!.id}/complete`, { outcome: { status: 'error', kind: 'transient', message: 'test gives it back' } });
  assert.equal(done.status, 200);
  assert.equal((await fetch(`${L}/batches/${batch.id}/progress`, { headers: h(tok.w1) })).status, 403);
  assert.equal(await port.labelCount(batch.id).catch((e: Error) => e.message.includes('403')), true);
});
