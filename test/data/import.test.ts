import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { tmpDir } from '../helpers/tmp.js';
import { openDb } from '../../src/store/db.js';
import { createLocalStore } from '../../src/store/artifacts.js';
import { gc, listArtifacts } from '../../src/store/registry.js';
import { exportDataset, importDataset, listDatasets, readDatasetRecords, resolveDataset } from '../../src/data/datasets.js';
import { AlignflowError } from '../../src/errors.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../..');
const samples = path.join(repo, 'datasets', 'samples');

function fresh() {
  const home = tmpDir();
  const db = openDb(path.join(home, 'alignflow.db'));
  return { home, db, store: createLocalStore(db, home) };
}

function write(dir: string, name: string, content: string | Buffer): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, content);
  return p;
}

const expected: Record<string, [string, string]> = {
  'sft-prompt-completion.jsonl': ['sft', 'prompt-completion'],
  'sft-messages.jsonl': ['sft', 'messages'],
  'sft-text.jsonl': ['sft', 'text'],
  'preference-explicit.jsonl': ['preference', 'explicit-prompt'],
  'preference-implicit.jsonl': ['preference', 'implicit-prompt'],
  'preference-conversational.jsonl': ['preference', 'conversational-explicit-prompt'],
  'unpaired.jsonl': ['unpaired', 'unpaired'],
  'prompts.jsonl': ['prompt', 'prompt-only'],
};

test('every sample imports, re-imports as a no-op, and export → import round-trips byte-identically', async () => {
  const { home, db, store } = fresh();
  assert.deepEqual(fs.readdirSync(samples).sort(), Object.keys(expected).sort());
  for (const [file, [kind, format]] of Object.entries(expected)) {
    const src = path.join(samples, file);
    const lines = fs.readFileSync(src, 'utf8').split('\n').filter((l) => l.trim()).length;
    const first = await importDataset(db, store, src);
    assert.equal(first.created, true, file);
    assert.equal(first.kind, kind, file);
    assert.equal(first.format, format, file);
    assert.equal(first.records, lines, file);
    assert.equal(first.dataset.name, file.replace('.jsonl', ''));
    assert.deepEqual(first.artifact.metadata, { datasetKind: kind, format, records: lines, skipped: 0, warnings: 0 });
    const again = await importDataset(db, store, src);
    assert.equal(again.created, false);
    assert.equal(again.artifact.id, first.artifact.id);
    assert.equal(again.dataset.id, first.dataset.id);

    const out1 = path.join(home, 'export', file);
    await exportDataset(db, store, first.dataset.id, out1);
    const reimported = await importDataset(db, store, out1, { name: 'copy-' + file });
    assert.equal(reimported.artifact.id, first.artifact.id, 'exported file is the same dataset');
    const out2 = path.join(home, 'export2', file);
    await exportDataset(db, store, first.artifact.id, out2);
    assert.ok(fs.readFileSync(out1).equals(fs.readFileSync(out2)));
    // the records read back equal the original lines' records (as parsed)
    const records = [];
    for await (const r of readDatasetRecords(store, first.artifact.id)) records.push(r);
    const exportedRecords = fs.readFileSync(out1, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(records, exportedRecords);
    const original = fs.readFileSync(src, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(records, original, 'samples are already canonical records');
  }
  assert.equal(listDatasets(db).length, 8);
  assert.equal(listDatasets(db, { kind: 'preference' }).length, 3);
  assert.equal(resolveDataset(db, 'prompts').kind, 'prompt');
  await assert.rejects(exportDataset(db, store, 'prompts', path.join(home, 'export', 'prompts.jsonl')), /already exists/);
});

test('readDatasetRecords checks the kind a stage asks for and refuses a corrupted blob', async () => {
  const { db, store } = fresh();
  const res = await importDataset(db, store, path.join(samples, 'preference-explicit.jsonl'));
  const pairs = [];
  for await (const r of readDatasetRecords(store, res.artifact.id, { kind: 'preference' })) pairs.push(r.chosen);
  assert.equal(pairs.length, 10);
  await assert.rejects(async () => {
    for await (const _ of readDatasetRecords(store, res.artifact.id, { kind: 'sft' })) void _;
  }, (e: unknown) => e instanceof AlignflowError && e.kind === 'config');
  const blob = store.blobs.pathOf(res.artifact.files[0]!.sha256);
  const buf = fs.readFileSync(blob);
  buf[10] = buf[10]! ^ 0x20;
  fs.writeFileSync(blob, buf);
  let yielded = 0;
  await assert.rejects(async () => {
    for await (const _ of readDatasetRecords(store, res.artifact.id)) yielded++;
  }, (e: unknown) => e instanceof AlignflowError && e.kind === 'integrity');
  assert.equal(yielded, 0, 'no record of a corrupted dataset is used');
});

async function rejectsInput(p: Promise<unknown>, check: (e: AlignflowError) => void) {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof AlignflowError, String(e));
    check(e);
    return true;
  });
}

test('bad input: every bad line is reported with file, line, field and reason; nothing is imported', async () => {
  const { home, db, store } = fresh();
  const file = write(
    home,
    'bad.jsonl',
    [
      '{"prompt":"p1","chosen":"good","rejected":"bad"}',
      '{"prompt":"p2","chosen":"good",', // malformed JSON
      '{"prompt":"p3","chosen":"good"}', // missing rejected
      '{"prompt":"p4","chosen":42,"rejected":"x"}', // non-string
      '{"prompt":"","chosen":"y","rejected":"x"}', // empty prompt (an empty answer is legal)
      '{"prompt":"p6\\ud800","chosen":"y","rejected":"x"}', // unpaired surrogate
      '{"prompt":"p7","chosen":"same","rejected":"same"}', // warning only
      '',
      '[1,2,3]',
      '{"prompt":"p10","chosen":"ok","rejected":"fine"}',
    ].join('\n') + '\n',
  );
  await rejectsInput(importDataset(db, store, file), (e) => {
    assert.equal(e.kind, 'input');
    assert.match(e.message, /bad\.jsonl has 6 invalid lines .*nothing was imported/);
    const at = e.issues.map((i) => [i.line, i.field ?? null]);
    assert.deepEqual(at, [[2, null], [3, 'rejected'], [4, 'chosen'], [5, 'prompt'], [6, 'prompt'], [9, null]]);
    assert.ok(e.issues.every((i) => i.file === file));
    assert.match(e.issues[0]!.reason, /malformed JSON/);
    assert.equal(e.issues[1]!.reason, 'missing');
    assert.match(e.issues[2]!.reason, /must be a string/);
    assert.equal(e.issues[3]!.reason, 'is empty');
  });
  assert.equal(listArtifacts(db).length, 0);
  assert.equal(listDatasets(db).length, 0);
  assert.deepEqual(fs.readdirSync(path.join(home, 'tmp')), [], 'the temp blob is removed');

  const res = await importDataset(db, store, file, { skipInvalid: true });
  assert.equal(res.records, 3);
  assert.equal(res.skipped, 6);
  assert.deepEqual([...new Set(res.skippedIssues.map((i) => i.line))], [2, 3, 4, 5, 6, 9]);
  assert.equal(res.warnings, 1);
  assert.deepEqual(res.warningIssues, [{ file, line: 7, field: 'rejected', reason: 'identical to chosen (the pair teaches nothing)' }]);
  assert.deepEqual(res.artifact.metadata, { datasetKind: 'preference', format: 'explicit-prompt', records: 3, skipped: 6, warnings: 1 });
});

test('bad input: wrong messages role order names the line and field', async () => {
  const { home, db, store } = fresh();
  const file = write(
    home,
    'chat.jsonl',
    [
      JSON.stringify({ messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'hello' }] }),
      JSON.stringify({ messages: [{ role: 'assistant', content: 'hi' }, { role: 'user', content: 'hello' }] }),
      JSON.stringify({ messages: [{ role: 'user', content: 'a' }, { role: 'user', content: 'b' }, { role: 'assistant', content: 'c' }] }),
      JSON.stringify({ messages: [{ role: 'system', content: 's' }, { role: 'user', content: 'q' }] }),
    ].join('\n'),
  );
  await rejectsInput(importDataset(db, store, file), (e) => {
    assert.deepEqual(e.issues.map((i) => [i.line, i.field]), [[2, 'messages'], [3, 'messages'], [4, 'messages']]);
    assert.match(e.issues[0]!.reason, /role order/);
    assert.match(e.issues[2]!.reason, /end with a "assistant"/);
  });
  // conversational preference: a prompt must end with the user; chosen must be the assistant's
  const pref = write(home, 'pref.jsonl', JSON.stringify({ prompt: [{ role: 'user', content: 'q' }], chosen: [{ role: 'user', content: 'a' }], rejected: [{ role: 'assistant', content: 'b' }] }) + '\n');
  await rejectsInput(importDataset(db, store, pref), (e) => assert.deepEqual(e.issues.map((i) => [i.line, i.field]), [[1, 'chosen']]));
});

test('bad input: non-UTF-8, empty file, blank-only file, nonexistent path, directory, unknown fields', async () => {
  const { home, db, store } = fresh();
  const latin1 = write(home, 'latin1.jsonl', Buffer.concat([Buffer.from('{"text":"ok"}\n{"text":"caf'), Buffer.from([0xe9]), Buffer.from('"}\n')]));
  await rejectsInput(importDataset(db, store, latin1), (e) => {
    assert.equal(e.kind, 'input');
    assert.deepEqual(e.issues, [{ file: latin1, line: 2, reason: 'not valid UTF-8' }]);
  });
  const empty = write(home, 'empty.jsonl', '');
  await rejectsInput(importDataset(db, store, empty), (e) => {
    assert.equal(e.kind, 'input');
    assert.match(e.message, /is empty/);
  });
  const blank = write(home, 'blank.jsonl', '\n\r\n  \n');
  await rejectsInput(importDataset(db, store, blank), (e) => assert.match(e.message, /is empty/));
  await rejectsInput(importDataset(db, store, path.join(home, 'nope.jsonl')), (e) => {
    assert.equal(e.kind, 'not_found');
    assert.match(e.message, /nope\.jsonl does not exist/);
  });
  await rejectsInput(importDataset(db, store, home), (e) => assert.match(e.message, /not a regular file/));
  const unknown = write(home, 'unknown.jsonl', '{"id":1,"question":"q"}\n');
  await rejectsInput(importDataset(db, store, unknown), (e) => assert.match(e.issues[0]!.reason, /no dataset fields/));
  const skipAll = write(home, 'allbad.jsonl', '{"text":1}\n{"text":2}\n');
  await rejectsInput(importDataset(db, store, skipAll, { skipInvalid: true }), (e) => assert.match(e.message, /no valid records/));
  assert.equal(listArtifacts(db).length, 0);
});

test('CRLF, BOM and a missing final newline import the same records as a clean file', async () => {
  const { home, db, store } = fresh();
  const clean = write(home, 'clean.jsonl', '{"prompt":"a"}\n{"prompt":"b"}\n');
  const messy = write(home, 'messy.jsonl', '\ufeff{"prompt":"a"}\r\n\r\n{"prompt":"b"}');
  const a = await importDataset(db, store, clean);
  const b = await importDataset(db, store, messy);
  assert.equal(b.artifact.id, a.artifact.id);
  assert.equal(b.created, false);
});

test('the issue list is capped but every bad line is counted; formats are one per file; kinds can be forced; names are unique', async () => {
  const { home, db, store } = fresh();
  const many = write(home, 'many.jsonl', Array.from({ length: 250 }, (_, i) => (i % 2 ? '{"text":"fine"}' : '{"text":')).join('\n'));
  await rejectsInput(importDataset(db, store, many), (e) => {
    assert.match(e.message, /has 125 invalid lines/);
    assert.equal(e.issues.length, 100);
  });
  const mixed = write(home, 'mixed.jsonl', '{"chosen":"a","rejected":"b"}\n{"prompt":"p","chosen":"a","rejected":"b"}\n');
  await rejectsInput(importDataset(db, store, mixed), (e) => {
    assert.deepEqual(e.issues.map((i) => [i.line, i.field]), [[2, 'prompt']]);
    assert.match(e.message, /implicit-prompt, detected from line 1/);
  });
  const pc = path.join(samples, 'sft-prompt-completion.jsonl');
  const asPrompts = await importDataset(db, store, pc, { kind: 'prompt', name: 'pc-prompts' });
  assert.equal(asPrompts.format, 'prompt-only');
  const asSft = await importDataset(db, store, pc, { name: 'pc-sft' });
  assert.notEqual(asSft.artifact.id, asPrompts.artifact.id);
  await rejectsInput(importDataset(db, store, pc, { kind: 'preference', name: 'pc-pref' }), (e) => assert.equal(e.issues[0]!.field, 'chosen'));
  await rejectsInput(importDataset(db, store, path.join(samples, 'prompts.jsonl'), { name: 'pc-sft' }), (e) => assert.match(e.message, /already named "pc-sft"/));
  // the name clash rolled back the whole registration
  assert.equal(listArtifacts(db, { kind: 'dataset' }).length, 2);
});

function childImport(home: string, file: string, mode: string) {
  return spawn(process.execPath, ['--import', 'tsx', path.join(here, 'fixtures', 'import-child.ts'), home, file, mode], { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] });
}

function bigFile(dir: string, mb: number): string {
  const p = path.join(dir, `big-${mb}.jsonl`);
  const fd = fs.openSync(p, 'w');
  const block: string[] = [];
  for (let i = 0; i < 1000; i++) block.push(JSON.stringify({ prompt: `Question number ${i}: what is ${i} plus ${i}?`, completion: ` It is ${2 * i}. `.padEnd(60 + (i % 40), '.') }));
  const chunk = Buffer.from(block.join('\n') + '\n');
  const n = Math.ceil((mb << 20) / chunk.length);
  for (let i = 0; i < n; i++) fs.writeSync(fd, chunk);
  fs.closeSync(fd);
  return p;
}

test('a crash in the middle of an import leaves nothing registered, and the re-run succeeds', async () => {
  const { home } = fresh();
  const file = bigFile(home, 16);
  // 1. killed while streaming: poll until its temp blob has data, then SIGKILL
  const child = childImport(home, file, 'plain');
  const tmp = path.join(home, 'tmp');
  const started = Date.now();
  let killedMidStream = false;
  while (Date.now() - started < 60_000) {
    const files = fs.existsSync(tmp) ? fs.readdirSync(tmp) : [];
    if (files.some((f) => (fs.statSync(path.join(tmp, f), { throwIfNoEntry: false })?.size ?? 0) > 0)) {
      child.kill('SIGKILL');
      killedMidStream = true;
      break;
    }
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 5));
  }
  await new Promise((r) => child.once('close', r));
  assert.ok(killedMidStream, 'the child was killed mid-stream');
  assert.equal(child.signalCode, 'SIGKILL');

  // 2. killed after the blob is durable, just before registration
  const child2 = childImport(home, file, 'kill-before-register');
  await new Promise((r) => child2.once('close', r));
  assert.equal(child2.signalCode, 'SIGKILL');

  const db = openDb(path.join(home, 'alignflow.db'));
  const store = createLocalStore(db, home);
  assert.equal(listArtifacts(db).length, 0, 'no half-registered artifact');
  assert.equal(listDatasets(db).length, 0);
  assert.equal(store.blobs.listSync().length, 1, 'the orphan blob of the second crash');
  // gc cleans the orphan and the stale temp file
  const r = gc(store, { graceMs: 0 });
  assert.equal(r.blobsRemoved, 1);
  assert.ok(r.tmpFilesRemoved >= 1);
  // the re-run succeeds
  const res = await importDataset(db, store, file);
  assert.equal(res.created, true);
  assert.ok(res.records > 100_000);
  assert.equal(listArtifacts(db).length, 1);
  db.$client.close();
});

test('a large file is streamed: peak memory does not grow with the file size', { timeout: 900_000 }, async (t) => {
  // Two imports in child processes with a capped JS heap (a file read whole as a string would not
  // fit): a small file and one several times larger. Streaming means the same peak RSS growth for
  // both (a fixed working set plus GC headroom, which varies by 10-16 MiB between builds); reading
  // whole would add the size difference, so the larger file is 90 MiB bigger to keep the two apart.
  // ALIGNFLOW_BIG_TEST_MB=1024 runs the large one at 1 GiB (about a minute here).
  const { home } = fresh();
  const sizes = [6, Number(process.env.ALIGNFLOW_BIG_TEST_MB ?? 96)];
  const growth: number[] = [];
  for (const mb of sizes) {
    const file = bigFile(home, mb);
    const h = path.join(home, `home-${mb}`);
    const res = spawnSync(process.execPath, ['--max-old-space-size=48', '--import', 'tsx', path.join(here, 'fixtures', 'import-child.ts'), h, file, 'plain'], { cwd: repo, encoding: 'utf8' });
    assert.equal(res.status, 0, res.stderr);
    const out = JSON.parse(res.stdout.trim()) as { records: number; rssBefore: number; maxRssBytes: number };
    growth.push(out.maxRssBytes - out.rssBefore);
    t.diagnostic(`streamed ${mb} MiB (${out.records} records): peak RSS growth ${((out.maxRssBytes - out.rssBefore) / 2 ** 20).toFixed(1)} MiB`);
    fs.rmSync(file);
  }
  const extra = growth[1]! - growth[0]!;
  const diff = (sizes[1]! - sizes[0]!) * 2 ** 20;
  assert.ok(extra < diff / 2, `peak RSS grew ${(extra / 2 ** 20).toFixed(1)} MiB more for a file ${sizes[1]! - sizes[0]!} MiB larger`);
});

test('the conversational formats without a sample file import and round-trip too', async () => {
  const { home, db, store } = fresh();
  const U = (content: string) => ({ role: 'user', content });
  const A = (content: string) => ({ role: 'assistant', content });
  const cases: [string, string, object[]][] = [
    ['conversational-prompt-completion', 'sft', [{ prompt: [U('Sky?')], completion: [A('Blue.')] }, { prompt: [{ role: 'system', content: 'Be brief.' }, U('Grass?')], completion: [A('Green.')] }]],
    ['conversational-implicit-prompt', 'preference', [{ chosen: [U('Sky?'), A('Blue.')], rejected: [U('Sky?'), A('Green.')] }]],
    ['conversational-unpaired', 'unpaired', [{ prompt: [U('Sky?')], completion: [A('Blue.')], label: true }, { prompt: [U('Sky?')], completion: [A('Red.')], label: false }]],
    ['conversational-prompt-only', 'prompt', [{ prompt: [U('Sky?')] }, { prompt: [U('Hi'), A('Hello!'), U('Sky?')] }]],
  ];
  for (const [format, kind, rows] of cases) {
    const file = write(home, `${format}.jsonl`, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
    const res = await importDataset(db, store, file);
    assert.equal(res.format, format);
    assert.equal(res.kind, kind);
    const out = path.join(home, `${format}.out.jsonl`);
    await exportDataset(db, store, res.dataset.id, out);
    assert.equal(fs.readFileSync(out, 'utf8'), fs.readFileSync(file, 'utf8'));
    const records = [];
    for await (const r of readDatasetRecords(store, res.artifact.id)) records.push(r);
    assert.deepEqual(records, rows);
  }
});
