import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { tmpDir } from '../helpers/tmp.js';
import { openDb } from '../../src/store/db.js';
import { createLocalStore, artifactId } from '../../src/store/artifacts.js';
import { gc, lineage, listArtifacts, setPinned, showArtifact, verifyArtifacts, resolveArtifactId } from '../../src/store/registry.js';
import { runs, stages, datasets } from '../../src/store/schema.js';
import { AlignflowError } from '../../src/errors.js';
import { canonicalJson } from '../../src/store/canonical-json.js';

function fresh() {
  const home = tmpDir();
  const db = openDb(path.join(home, 'alignflow.db'));
  return { home, db, store: createLocalStore(db, home) };
}

const bytes = (s: string) => new TextEncoder().encode(s);

test('canonicalJson sorts keys at every depth and rejects non-finite numbers', () => {
  assert.equal(canonicalJson({ b: 1, a: { d: [1, { z: 1, y: 2 }], c: null } }), '{"a":{"c":null,"d":[1,{"y":2,"z":1}]},"b":1}');
  assert.equal(canonicalJson({ a: undefined, b: 'x' }), '{"b":"x"}');
  assert.throws(() => canonicalJson({ a: NaN }), /non-finite/);
  assert.throws(() => canonicalJson([undefined]), /undefined/);
});

test('put stores blobs under blobs/<aa>/<sha256>, get/readFile round-trip, ids are content hashes', async () => {
  const { home, store } = fresh();
  const m = await store.put({ kind: 'other', name: 'x', files: [{ path: 'a.txt', data: bytes('hello') }, { path: 'sub/b.bin', data: bytes('world') }], metadata: { z: 1, a: 2 } });
  assert.match(m.id, /^a-[0-9a-f]{16}$/);
  assert.equal(m.sizeBytes, 10);
  assert.deepEqual(m.files.map((f) => f.path), ['a.txt', 'sub/b.bin']);
  const sha = m.files[0]!.sha256;
  assert.equal(sha, '2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824');
  assert.ok(fs.existsSync(path.join(home, 'blobs', sha.slice(0, 2), sha)));
  assert.equal((await store.readFile(m.id, 'a.txt')).toString(), 'hello');
  assert.deepEqual(await store.get(m.id), m);
  assert.equal(m.id, artifactId('other', m.files, { a: 2, z: 1 }));
  // metadata key order and file order do not change the id; the name does not either
  const m2 = await store.put({ kind: 'other', name: 'another name', files: [{ path: 'sub/b.bin', data: bytes('world') }, { path: 'a.txt', data: bytes('hello') }], metadata: { a: 2, z: 1 } });
  assert.equal(m2.id, m.id);
  assert.equal(m2.name, 'x');
  // different metadata or kind: different artifact, same blobs (dedupe)
  const m3 = await store.put({ kind: 'other', name: 'x', files: [{ path: 'a.txt', data: bytes('hello') }, { path: 'sub/b.bin', data: bytes('world') }], metadata: { z: 1, a: 3 } });
  assert.notEqual(m3.id, m.id);
  assert.equal(store.blobs.listSync().length, 2);
  const out = path.join(home, 'out');
  await store.materialize(m.id, out);
  assert.equal(fs.readFileSync(path.join(out, 'sub', 'b.bin'), 'utf8'), 'world');
  assert.deepEqual(fs.readdirSync(path.join(home, 'tmp')), []);
});

test('put from a source file streams it in; invalid inputs are rejected', async () => {
  const { home, store } = fresh();
  const src = path.join(home, 'src.bin');
  fs.writeFileSync(src, Buffer.alloc(3 << 20, 7));
  const m = await store.put({ kind: 'model', name: 'm', files: [{ path: 'model.safetensors', sourceFile: src }] });
  assert.equal(m.sizeBytes, 3 << 20);
  await assert.rejects(store.put({ kind: 'model', name: 'm', files: [{ path: '../evil', data: bytes('x') }] }), /invalid file name/);
  await assert.rejects(store.put({ kind: 'model', name: 'm', files: [{ path: 'x', sourceFile: path.join(home, 'nope') }] }), (e: unknown) => e instanceof AlignflowError && e.kind === 'not_found');
  await assert.rejects(store.put({ kind: 'model', name: 'm', files: [{ path: 'x', data: bytes('1') }], inputs: [{ artifactId: 'a-0000000000000000', role: 'base' }] }), /does not exist/);
  await assert.rejects(store.get('a-0000000000000000'), (e: unknown) => e instanceof AlignflowError && e.kind === 'not_found');
  await assert.rejects(store.readFile(m.id, 'nope'), /has no file/);
});

test('re-put of an existing id is a no-op that still adds new lineage and producer rows', async () => {
  const { db, store } = fresh();
  const base = await store.put({ kind: 'model', name: 'base', files: [{ path: 'w', data: bytes('base') }] });
  const data = await store.put({ kind: 'dataset', name: 'd', files: [{ path: 'data.jsonl', data: bytes('{}\n') }] });
  db.insert(runs).values({ id: 'r1', name: 'r', spec: {}, specHash: 'h', status: 'running', executor: 'inline', createdAt: 1 }).run();
  db.insert(stages).values({ id: 's1', runId: 'r1', name: 'sft', kind: 'sft', config: {}, dependsOn: [], state: 'running' }).run();
  const sft1 = await store.put({ kind: 'model', name: 'sft', files: [{ path: 'w', data: bytes('tuned') }], inputs: [{ artifactId: base.id, role: 'base_model' }] });
  assert.equal(sft1.producerStageId, null);
  const sft2 = await store.put({ kind: 'model', name: 'sft', files: [{ path: 'w', data: bytes('tuned') }], inputs: [{ artifactId: data.id, role: 'train' }], producer: { runId: 'r1', stageId: 's1', role: 'model' } });
  assert.equal(sft2.id, sft1.id);
  assert.equal(sft2.producerStageId, 's1');
  const dpo = await store.put({ kind: 'model', name: 'dpo', files: [{ path: 'w', data: bytes('dpo') }], inputs: [{ artifactId: sft1.id, role: 'base_model' }] });
  const l = lineage(db, sft1.id);
  assert.deepEqual(l.ancestors.map((a) => [a.id, a.role]).sort(), [[base.id, 'base_model'], [data.id, 'train']].sort());
  assert.deepEqual(l.artifact.producers, [{ runId: 'r1', stageId: 's1', stageName: 'sft', role: 'model' }]);
  assert.deepEqual(l.descendants.map((d) => d.id), [dpo.id]);
  const up = lineage(db, dpo.id);
  assert.deepEqual(up.ancestors.map((a) => [a.id, a.depth]).sort(), [[sft1.id, 1], [base.id, 2], [data.id, 2]].sort());
  const details = showArtifact(store, sft1.id.slice(0, 8));
  assert.equal(details.id, sft1.id);
  assert.equal(details.usedBy[0]!.artifactId, dpo.id);
  assert.equal(listArtifacts(db, { kind: 'dataset' }).length, 1);
  assert.equal(listArtifacts(db).length, 4);
});

test('verify detects a flipped byte and a missing blob; readFile refuses corrupted bytes', async () => {
  const { store } = fresh();
  const a = await store.put({ kind: 'other', name: 'a', files: [{ path: 'f', data: bytes('0123456789abcdef') }] });
  const b = await store.put({ kind: 'other', name: 'b', files: [{ path: 'g', data: bytes('second blob') }] });
  assert.deepEqual((await verifyArtifacts(store)).problems, []);
  const p = store.blobs.pathOf(a.files[0]!.sha256);
  const buf = fs.readFileSync(p);
  buf[5] = buf[5]! ^ 0x01;
  fs.writeFileSync(p, buf);
  const all = await verifyArtifacts(store);
  assert.deepEqual(all.problems, [{ artifactId: a.id, path: 'f', sha256: a.files[0]!.sha256, problem: 'corrupt' }]);
  assert.deepEqual((await verifyArtifacts(store, b.id)).problems, []);
  await assert.rejects(store.readFile(a.id, 'f'), (e: unknown) => e instanceof AlignflowError && e.kind === 'integrity' && /corrupted/.test(e.message));
  await assert.rejects(async () => {
    for await (const _ of store.readFileChunks(a.id, 'f')) void _;
  }, /corrupted/);
  // re-putting the same content heals the blob
  await store.put({ kind: 'other', name: 'a', files: [{ path: 'f', data: bytes('0123456789abcdef') }] });
  assert.deepEqual((await verifyArtifacts(store)).problems, []);
  fs.rmSync(store.blobs.pathOf(b.files[0]!.sha256));
  assert.equal((await verifyArtifacts(store)).problems[0]!.problem, 'missing');
  await assert.rejects(store.readFile(b.id, 'g'), /missing/);
});

test('gc removes orphan blobs and stale temp files, keeps referenced ones; dry run changes nothing', async () => {
  const { home, store } = fresh();
  const kept = await store.put({ kind: 'other', name: 'k', files: [{ path: 'f', data: bytes('kept') }] });
  const orphan = await store.blobs.putBytes(bytes('orphan'));
  fs.mkdirSync(path.join(home, 'tmp'), { recursive: true });
  fs.writeFileSync(path.join(home, 'tmp', 'blob-1-dead.tmp'), 'partial');
  // within the grace period nothing goes
  let r = gc(store);
  assert.equal(r.blobsRemoved, 0);
  const dry = gc(store, { dryRun: true, graceMs: 0 });
  assert.equal(dry.blobsRemoved, 1);
  assert.equal(dry.tmpFilesRemoved, 1);
  assert.ok(store.blobs.has(orphan.sha256));
  r = gc(store, { graceMs: 0 });
  assert.equal(r.blobsRemoved, 1);
  assert.equal(r.blobBytesFreed, 6);
  assert.equal(r.tmpFilesRemoved, 1);
  assert.ok(!store.blobs.has(orphan.sha256));
  assert.ok(store.blobs.has(kept.files[0]!.sha256));
  assert.equal(r.artifactsRemoved.length, 0);
});

test('gc --prune-artifacts removes only unreferenced, unpinned artifacts of no live run', async () => {
  const { db, store } = fresh();
  const put = (name: string, content: string, extra: object = {}) => store.put({ kind: 'other', name, files: [{ path: 'f', data: bytes(content) }], ...extra });
  const loose = await put('loose', 'loose');
  const pinned = await put('pinned', 'pinned');
  setPinned(db, pinned.id, true);
  const input = await put('input', 'input');
  const derived = await put('derived', 'derived', { inputs: [{ artifactId: input.id, role: 'base' }] });
  db.insert(runs).values({ id: 'live', name: 'r', spec: { model: 'x' }, specHash: 'h', status: 'running', executor: 'inline', createdAt: 1 }).run();
  db.insert(runs).values({ id: 'done', name: 'r', spec: {}, specHash: 'h', status: 'succeeded', executor: 'inline', createdAt: 1 }).run();
  db.insert(stages).values({ id: 'st', runId: 'done', name: 'sft', kind: 'sft', config: {}, dependsOn: [], state: 'succeeded' }).run();
  db.insert(stages).values({ id: 'live-st', runId: 'live', name: 'sft', kind: 'sft', config: {}, dependsOn: [], state: 'running' }).run();
  const output = await put('output', 'output', { producer: { runId: 'done', stageId: 'st', role: 'model' } });
  const liveOut = await put('live', 'live', { producer: { runId: 'live', stageId: 'live-st', role: 'model' } });
  // a live run that names an artifact in its spec keeps it
  const named = await put('named', 'named');
  db.$client.prepare("update runs set spec = ? where id = 'live'").run(JSON.stringify({ base: named.id }));
  const ds = await put('ds', 'ds');
  db.insert(datasets).values({ id: 'd-1', name: 'ds', artifactId: ds.id, kind: 'sft', format: 'text', records: 1, createdAt: 1 }).run();
  // the producer row of the live run keeps liveOut; we remove that row to test the producer_run rule
  db.$client.prepare('delete from stage_outputs where stage_id = ?').run('live-st');

  const dry = gc(store, { pruneArtifacts: true, graceMs: 0, dryRun: true });
  const removed = dry.artifactsRemoved.map((a) => a.id).sort();
  assert.deepEqual(removed, [loose.id, derived.id, input.id].sort());
  assert.equal(listArtifacts(db).length, 8, 'dry run deletes nothing');
  const r = gc(store, { pruneArtifacts: true, graceMs: 0 });
  assert.deepEqual(r.artifactsRemoved.map((a) => a.id).sort(), removed);
  assert.equal(r.blobsRemoved, 3);
  const left = new Set(listArtifacts(db).map((a) => a.id));
  for (const k of [pinned, output, liveOut, named, ds]) assert.ok(left.has(k.id), k.name);
  // a young artifact is protected by the grace period
  const young = await put('young', 'young');
  assert.equal(gc(store, { pruneArtifacts: true }).artifactsRemoved.length, 0);
  assert.ok(left.has(resolveArtifactId(db, pinned.id)));
  void young;
});

test('the schema migrates an empty database and reopens a migrated one', async () => {
  const home = tmpDir();
  const file = path.join(home, 'state.db');
  const db1 = openDb(file);
  const s1 = createLocalStore(db1, home);
  const m = await s1.put({ kind: 'other', name: 'x', files: [{ path: 'f', data: bytes('persist') }] });
  const applied1 = db1.$client.prepare('select count(*) as n from __drizzle_migrations').get() as { n: number };
  db1.$client.close();
  const db2 = openDb(file);
  const applied2 = db2.$client.prepare('select count(*) as n from __drizzle_migrations').get() as { n: number };
  assert.equal(applied2.n, applied1.n);
  assert.ok(applied1.n >= 1);
  const s2 = createLocalStore(db2, home);
  assert.equal((await s2.readFile(m.id, 'f')).toString(), 'persist');
  await s2.put({ kind: 'other', name: 'y', files: [{ path: 'f', data: bytes('more') }] });
  assert.equal(listArtifacts(db2).length, 2);
  const tables = (db2.$client.prepare("select name from sqlite_master where type='table'").all() as { name: string }[]).map((r) => r.name);
  for (const t of ['runs', 'stages', 'artifacts', 'artifact_files', 'lineage_edges', 'datasets', 'metrics', 'users']) assert.ok(tables.includes(t), t);
  assert.equal(db2.$client.pragma('journal_mode', { simple: true }), 'wal');
  assert.equal(db2.$client.pragma('foreign_keys', { simple: true }), 1);
  db2.$client.close();
});

test('a gc between blob write and registration cannot lose the artifact: put notices and rewrites', async () => {
  const { store } = fresh();
  let gcRuns = 0;
  const m = await store.put(
    { kind: 'other', name: 'raced', files: [{ path: 'f', data: bytes('raced content') }] },
    {
      beforeRegister: () => {
        if (gcRuns++ === 0) assert.equal(gc(store, { graceMs: 0 }).blobsRemoved, 1, 'the fresh blob looked orphaned');
      },
    },
  );
  assert.equal(gcRuns, 2, 'the put wrote its blob again');
  assert.equal((await store.readFile(m.id, 'f')).toString(), 'raced content');
  // a blob handed over by reference cannot be rewritten: that is a transient (retryable) error
  const ref = await store.blobs.putBytes(bytes('by reference'));
  await assert.rejects(
    store.put({ kind: 'other', name: 'ref', files: [{ path: 'f', blob: ref }] }, { beforeRegister: () => void gc(store, { graceMs: 0 }) }),
    (e: unknown) => e instanceof AlignflowError && e.kind === 'transient',
  );
});
