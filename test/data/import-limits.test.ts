// Import limits (issue 12, item 5): a refused `--name` leaves no blob behind; the line limit is
// lower by default and `--max-line-bytes` moves it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { tmpDir } from '../helpers/tmp.js';
import { openDb } from '../../src/store/db.js';
import { createLocalStore } from '../../src/store/artifacts.js';
import { importDataset } from '../../src/data/datasets.js';
import { DEFAULT_MAX_LINE_BYTES } from '../../src/data/jsonl.js';
import { AlignflowError } from '../../src/errors.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

test('an import refused because the name is taken leaves no orphan blob; the same content under the same name is a no-op', async () => {
  const home = tmpDir();
  const data = tmpDir();
  const db = openDb(path.join(home, 'alignflow.db'));
  const store = createLocalStore(db, home);
  try {
    const a = path.join(data, 'a.jsonl');
    const b = path.join(data, 'b.jsonl');
    fs.writeFileSync(a, '{"text":"first"}\n');
    fs.writeFileSync(b, '{"text":"second"}\n');
    await importDataset(db, store, a, { name: 'taken' });
    const before = store.blobs.listSync().length;
    await assert.rejects(importDataset(db, store, b, { name: 'taken' }), (e) => e instanceof AlignflowError && /already named "taken"/.test(e.message));
    assert.equal(store.blobs.listSync().length, before, 'no blob written for the refused import');
    assert.deepEqual(fs.readdirSync(path.join(home, 'tmp')), [], 'no temp file either');
    const again = await importDataset(db, store, a, { name: 'taken' });
    assert.equal(again.created, false);
    const v2 = await importDataset(db, store, b, { name: 'taken', newVersion: true });
    assert.equal(v2.created, true);
    const back = await importDataset(db, store, a, { name: 'taken' });
    assert.equal(back.created, false, 'an older version of the name is still the same dataset');
  } finally {
    db.$client.close();
  }
});

test('the default line limit is 16 MiB; --max-line-bytes changes it and the error names the flag', () => {
  assert.equal(DEFAULT_MAX_LINE_BYTES, 16 * 1024 * 1024);
  const home = tmpDir();
  const data = tmpDir();
  const file = path.join(data, 'long.jsonl');
  fs.writeFileSync(file, `{"text":"${'x'.repeat(200)}"}\n{"text":"short"}\n`);
  const cli = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', path.join(repo, 'src/cli/main.ts'), ...args], { cwd: repo, env: { ...process.env, ALIGNFLOW_HOME: home }, encoding: 'utf8' });
  const small = cli('datasets', 'import', file, '--max-line-bytes', '100');
  assert.equal(small.status, 2, small.stderr);
  assert.match(small.stderr, /line 1: line is longer than 100 bytes \(the limit; raise it with --max-line-bytes\)/);
  const bad = cli('datasets', 'import', file, '--max-line-bytes', 'lots');
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--max-line-bytes must be a positive integer/);
  const ok = cli('datasets', 'import', file, '--max-line-bytes', '1000', '--json');
  assert.equal(ok.status, 0, ok.stderr);
  assert.equal(JSON.parse(ok.stdout).records, 2);
});
