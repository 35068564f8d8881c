// The coordinator API (src/server/routes/coordinator.ts) over real HTTP, a real SQLite file and a
// real blob store: worker-token least privilege, one winner per claim race, chunked resumable
// verified uploads, Range downloads, and a remote attempt (the stage handler in a worker thread
// talking to the coordinator) that records the same artifacts as a local run.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { eq } from 'drizzle-orm';
import { runCli, setup, submit, writeFile } from '../orchestrator/helpers.js';
import { redisConnection } from '../../src/orchestrator/executors/bullmq.js';
import { buildServer } from '../../src/server/index.js';
import { addUser } from '../../src/labeling/users.js';
import { advanceRun } from '../../src/orchestrator/scheduler.js';
import { driveRun } from '../../src/orchestrator/executors/inline.js';
import { runStages } from '../../src/orchestrator/runs.js';
import { runRemoteAttempt } from '../../src/orchestrator/remote/attempt.js';
import { checkpoints, metrics, stageOutputs } from '../../src/store/schema.js';
import { tmpDir } from '../helpers/tmp.js';
import type { LocalArtifactStore } from '../../src/store/artifacts.js';

const env = await setup();
const app = await buildServer({ db: env.db, home: env.home, store: env.store });
const base = await app.listen({ port: 0, host: '127.0.0.1' });
test.after(() => app.close());
const tok = {
  w1: addUser(env.db, 'w1', 'worker').token,
  w2: addUser(env.db, 'w2', 'worker').token,
  admin: addUser(env.db, 'root', 'admin').token,
  labeler: addUser(env.db, 'lab', 'labeler').token,
};
const C = `${base}/api/coord/v1`;
const h = (t: string, extra: Record<string, string> = {}) => ({ authorization: `Bearer ${t}`, 'alignflow-worker': 'proc-1', ...extra });
const post = (t: string, url: string, body?: unknown) => fetch(url, { method: 'POST', headers: h(t, body === undefined ? {} : { 'content-type': 'application/json' }), ...(body === undefined ? {} : { body: JSON.stringify(body) }) });

writeFile(env.dir, 'data.jsonl', '{"text":"coordinator"}\n');
const spec = `
name: coord
datasets: { data: data.jsonl }
stages:
  a: { kind: count, inputs: { data: datasets.data }, config: { steps: 6, step_ms: 10, checkpoint_every: 2 } }
  b: { kind: join, inputs: { x: a } }
`;

test('worker tokens reach only the coordinator API; one claim wins a race; reads are limited to the held stage', async () => {
  // A worker token cannot read runs, administer users or label; an admin cannot act as a worker.
  for (const [method, url] of [['GET', '/api/runs'], ['GET', '/api/users'], ['POST', '/api/labeling/batches/b-1/next'], ['GET', '/api/labeling/queue']] as const) {
    const r = await fetch(base + url, { method, headers: { authorization: `Bearer ${tok.w1}` } });
    assert.equal(r.status, 403, `${method} ${url}`);
  }
  assert.equal((await post(tok.admin, `${C}/stages/s-x/claim`)).status, 403);
  assert.equal((await post(tok.labeler, `${C}/stages/s-x/claim`)).status, 403);
  assert.equal((await fetch(`${C}/stages/s-x/claim`, { method: 'POST', headers: { authorization: `Bearer ${tok.w1}` } })).status, 400, 'the worker header is required');

  const runId = await submit(env, spec, { executor: 'bullmq' });
  advanceRun(env.db, runId);
  const a = runStages(env.db, runId).find((s) => s.name === 'a')!;
  assert.equal(a.state, 'queued');
  const input = env.db.$client.prepare("SELECT id FROM artifacts WHERE kind = 'dataset'").get() as { id: string };
  const other = await env.store.put({ kind: 'other', name: 'secret', files: [{ path: 'x.txt', data: Buffer.from('not for workers') }] });

  // Not holding anything: no reads, no uploads.
  assert.equal((await fetch(`${C}/artifacts/${input.id}`, { headers: h(tok.w1) })).status, 403);
  assert.equal((await fetch(`${C}/uploads/${'0'.repeat(64)}`, { headers: h(tok.w1) })).status, 403);

  // Two workers race for the attempt: exactly one wins, in SQLite.
  const claims = await Promise.all([post(tok.w1, `${C}/stages/${a.id}/claim`), post(tok.w2, `${C}/stages/${a.id}/claim`)].map(async (p) => (await p).json() as Promise<{ ok: boolean }>));
  assert.equal(claims.filter((c) => c.ok).length, 1, JSON.stringify(claims));
  const [win, lose] = claims[0]!.ok ? [tok.w1, tok.w2] : [tok.w2, tok.w1];
  assert.equal(runStages(env.db, runId).find((s) => s.name === 'a')!.attempts, 1);

  const inputRes = await fetch(`${C}/artifacts/${input.id}`, { headers: h(win) });
  assert.equal(inputRes.status, 200);
  const manifest = (await inputRes.json()) as { files: { sha256: string }[] };
  assert.equal((await fetch(`${C}/blobs/${manifest.files[0]!.sha256}`, { headers: h(win) })).status, 200);
  assert.equal((await fetch(`${C}/artifacts/${input.id}`, { headers: h(lose) })).status, 403, 'the loser reads nothing');
  assert.equal((await fetch(`${C}/artifacts/${other.id}`, { headers: h(win) })).status, 403, 'an artifact outside the held stage');
  assert.equal((await fetch(`${C}/blobs/${other.files[0]!.sha256}`, { headers: h(win) })).status, 403);

  // The heartbeat tells the loser (and anyone not holding it) to stop.
  assert.deepEqual(await (await post(win, `${C}/stages/${a.id}/heartbeat`)).json(), { cancel: false });
  assert.deepEqual(await (await post(lose, `${C}/stages/${a.id}/heartbeat`)).json(), { cancel: true });
  assert.equal((await post(lose, `${C}/stages/${a.id}/records`, { events: [{ level: 'info', message: 'x' }] })).status, 409);

  // Bodies are validated strictly.
  const bad = await post(win, `${C}/stages/${a.id}/records`, { metrics: [{ step: 1, values: { loss: 'x' } }] });
  assert.equal(bad.status, 400);
  assert.equal((await post(win, `${C}/stages/${a.id}/records`, { extra: 1 })).status, 400);

  // Uploads: chunked, resumable from the offset the coordinator reports, verified, idempotent.
  const bytes = randomBytes(300_000);
  const sha = createHash('sha256').update(bytes).digest('hex');
  const put = (t: string, s: string, offset: number, chunk: Buffer) => fetch(`${C}/uploads/${s}?offset=${offset}`, { method: 'PUT', headers: h(t, { 'content-type': 'application/octet-stream' }), body: new Uint8Array(chunk) });
  assert.deepEqual(await (await fetch(`${C}/uploads/${sha}`, { headers: h(win) })).json(), { complete: false, offset: 0 });
  assert.equal((await put(win, sha, 0, bytes.subarray(0, 100_000))).status, 200);
  const wrong = await put(win, sha, 0, bytes.subarray(0, 100_000)); // a retried chunk whose answer was lost
  assert.equal(wrong.status, 409);
  assert.equal(((await wrong.json()) as { offset: number }).offset, 100_000);
  assert.deepEqual(await (await fetch(`${C}/uploads/${sha}`, { headers: h(win) })).json(), { complete: false, offset: 100_000 });
  // Registering an artifact before its blob is complete is refused, naming the missing blob.
  const early = await post(win, `${C}/stages/${a.id}/artifacts`, { kind: 'other', name: 'early', files: [{ path: 'f.bin', sha256: sha, sizeBytes: bytes.length }] });
  assert.equal(early.status, 409);
  assert.deepEqual(((await early.json()) as { missing: string[] }).missing, [sha]);
  assert.equal((await post(win, `${C}/uploads/${sha}/commit`, { sizeBytes: bytes.length })).status, 409, 'incomplete');
  assert.equal((await put(win, sha, 100_000, bytes.subarray(100_000))).status, 200);
  assert.deepEqual(await (await post(win, `${C}/uploads/${sha}/commit`, { sizeBytes: bytes.length })).json(), { complete: true, offset: bytes.length });
  assert.ok((env.store as LocalArtifactStore).blobs.has(sha));
  assert.deepEqual(await (await fetch(`${C}/uploads/${sha}`, { headers: h(win) })).json(), { complete: true, offset: bytes.length }, 'existing blob: nothing to send');

  // An empty file has no chunk to send: committing it with nothing uploaded makes the blob.
  const empty = createHash('sha256').update('').digest('hex');
  assert.ok(!(env.store as LocalArtifactStore).blobs.has(empty));
  assert.deepEqual(await (await post(win, `${C}/uploads/${empty}/commit`, { sizeBytes: 0 })).json(), { complete: true, offset: 0 });
  assert.ok((env.store as LocalArtifactStore).blobs.has(empty));

  // A forged upload (bytes that do not hash to the name) never becomes a blob.
  const fake = createHash('sha256').update('something else').digest('hex');
  assert.equal((await put(win, fake, 0, Buffer.from('these bytes'))).status, 200);
  const forged = await post(win, `${C}/uploads/${fake}/commit`, { sizeBytes: 11 });
  assert.equal(forged.status, 422);
  assert.ok(!(env.store as LocalArtifactStore).blobs.has(fake));
  assert.deepEqual(await (await fetch(`${C}/uploads/${fake}`, { headers: h(win) })).json(), { complete: false, offset: 0 }, 'the forged part is discarded');

  // Registered under the held stage; then readable (an output of the held stage), with Range.
  const reg = await post(win, `${C}/stages/${a.id}/artifacts`, { kind: 'other', name: 'blob', files: [{ path: 'f.bin', sha256: sha, sizeBytes: bytes.length }], producer: { runId, stageId: a.id, role: 'extra' } });
  assert.equal(reg.status, 201);
  const ranged = await fetch(`${C}/blobs/${sha}`, { headers: h(win, { range: 'bytes=250000-' }) });
  assert.equal(ranged.status, 206);
  assert.equal(ranged.headers.get('content-range'), `bytes 250000-${bytes.length - 1}/${bytes.length}`);
  assert.ok(Buffer.from(await ranged.arrayBuffer()).equals(bytes.subarray(250_000)));
  assert.equal((await fetch(`${C}/blobs/${sha}`, { headers: h(win, { range: 'bytes=999999999-' }) })).status, 416);
  // Another stage's producer is refused.
  assert.equal((await post(win, `${C}/stages/${a.id}/artifacts`, { kind: 'other', name: 'x', files: [], producer: { runId, stageId: 's-other', role: 'r' } })).status, 403);

  // Give the stage back (an error outcome with attempts left re-queues it).
  const done = await post(win, `${C}/stages/${a.id}/complete`, { outcome: { status: 'error', kind: 'transient', message: 'test gives it back' } });
  assert.equal(((await done.json()) as { status: string }).status, 'retry');
  assert.equal((await fetch(`${C}/artifacts/${input.id}`, { headers: h(win) })).status, 403, 'nothing held: no reads');
});

test('a remote attempt (handler in a worker thread, over HTTP) records what a local run records', { timeout: 120_000 }, async () => {
  const ref = await setup();
  writeFile(ref.dir, 'data.jsonl', '{"text":"coordinator"}\n');
  // (salt: not the first test's stage, which is still queued, or this one would wait for it)
  const spec2 = spec.replace('checkpoint_every: 2', 'checkpoint_every: 2, salt: 2');
  const refRun = await submit(ref, spec2);
  assert.equal(await driveRun(ref, refRun), 'succeeded');
  const outputs = (e: typeof env, runId: string) => runStages(e.db, runId).map((s) => e.db.select().from(stageOutputs).where(eq(stageOutputs.stageId, s.id)).all().map((o) => `${s.name}.${o.role}=${o.artifactId}`).join(',')).join(' ');

  const runId = await submit(env, spec2, { executor: 'bullmq' });
  const home = tmpDir(); // the worker's own home: a blob cache, no database
  const cfg = { url: base, token: tok.w1, worker: 'remote-1', home };
  for (let i = 0; i < 20; i++) {
    advanceRun(env.db, runId);
    const next = runStages(env.db, runId).find((s) => s.state === 'queued');
    if (!next) break;
    const res = await runRemoteAttempt(cfg, next.id);
    assert.ok(res.status === 'succeeded' || res.status === 'retry', JSON.stringify(res));
  }
  advanceRun(env.db, runId);
  assert.deepEqual(runStages(env.db, runId).map((s) => [s.name, s.state, /^w1\/remote-1\.\d+$/.test(s.worker ?? '')]), [['a', 'succeeded', true], ['b', 'succeeded', true]]);
  assert.equal(outputs(env, runId), outputs(ref, refRun));
  const a = runStages(env.db, runId).find((s) => s.name === 'a')!;
  assert.equal(env.db.select().from(metrics).where(eq(metrics.stageId, a.id)).all().length, 6, 'one loss point per step, through the recorder');
  assert.ok(env.db.select().from(checkpoints).where(eq(checkpoints.stageId, a.id)).all().length > 0);
  assert.ok(!fs.existsSync(path.join(home, 'alignflow.db')), 'the remote worker never opens a database');
  assert.ok(fs.readdirSync(path.join(home, 'blobs')).length > 0, 'its blob cache holds what it read and wrote');
});

test('worker --coordinator: flags are checked before anything starts', { timeout: 120_000 }, async () => {
  const home = tmpDir();
  const noToken = runCli(env.dir, home, ['worker', '--redis', 'redis://127.0.0.1:1', '--coordinator', base]);
  assert.equal(noToken.code, 2, noToken.err);
  assert.match(noToken.err, /--coordinator needs --token/);
  // Every kind runs on a remote worker (the labeling ones too: ./coordinator-labeling.test.ts); an unknown one is refused.
  const unknown = runCli(env.dir, home, ['worker', '--redis', 'redis://127.0.0.1:1', '--coordinator', base, '--token', tok.w1, '--stages', 'sft,collect,label,nope']);
  assert.equal(unknown.code, 2, unknown.err);
  assert.match(unknown.err, /unknown stage kind "nope"/);
  const badUrl = runCli(env.dir, home, ['worker', '--redis', 'redis://127.0.0.1:1', '--coordinator', 'ftp://x', '--token', tok.w1]);
  assert.equal(badUrl.code, 2, badUrl.err);
  assert.match(badUrl.err, /http:\/\/ or https:\/\//);
  assert.ok(!fs.existsSync(path.join(home, 'alignflow.db')), 'nothing opened a database');
});

test('Redis URLs with a password and rediss:// (TLS) reach ioredis as such', () => {
  const plain = redisConnection('redis://:s3cret@10.0.0.1:6379/2', { lazyConnect: true });
  assert.equal(plain.options.password, 's3cret');
  assert.equal(plain.options.db, 2);
  assert.equal(plain.options.tls, undefined);
  const tls = redisConnection('rediss://worker:s3cret@coord.example:6380', { lazyConnect: true });
  assert.equal(tls.options.username, 'worker');
  assert.equal(tls.options.password, 's3cret');
  assert.ok(tls.options.tls, 'rediss:// turns TLS on');
  plain.disconnect();
  tls.disconnect();
  // (A password-protected redis-server is exercised end to end by test/orchestrator/multihost-netns.test.ts.)
});
