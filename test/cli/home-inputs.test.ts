// Issue 12, item 1: nothing in alignflow's own state is opened as input from the CLI either. Flags
// that name a file or folder to read (generate --prompts-file, models init --config /
// --train-tokenizer / --chat-template / --tokenizer, models import DIR) refuse the database, its
// -wal/-shm files, a hard link to it and the blobs, as `datasets import` and specs do, before
// anything is read.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { tmpDir } from '../helpers/tmp.js';
import { runCli } from '../orchestrator/helpers.js';
import { openDb } from '../../src/store/db.js';
import { blobsDir, databasePath } from '../../src/config/paths.js';

test('CLI flags that name input refuse the database, a hard link to it and the blobs', { timeout: 120_000 }, () => {
  const dir = tmpDir();
  const home = path.join(tmpDir(), 'home');
  const db = openDb(databasePath(home));
  db.$client.close();
  const dbFile = databasePath(home);
  const hard = path.join(dir, 'prompts.txt');
  fs.linkSync(dbFile, hard);
  fs.mkdirSync(blobsDir(home), { recursive: true });
  const cli = (...args: string[]) => runCli(dir, home, args);
  const refused = (r: { code: number | null; err: string }, flag: string) => {
    assert.equal(r.code, 2, r.err);
    assert.match(r.err, new RegExp(`^error: ${flag}: .* is inside ALIGNFLOW_HOME .*never read as input`));
  };

  refused(cli('generate', '--model', 'none', '--prompts-file', dbFile), '--prompts-file');
  refused(cli('generate', '--model', 'none', '--prompts-file', hard), '--prompts-file');
  refused(cli('models', 'init', '--config', dbFile), '--config');
  refused(cli('models', 'init', '--preset', 'gpt2-micro', '--train-tokenizer', `${dbFile}-wal`), '--train-tokenizer');
  refused(cli('models', 'init', '--preset', 'gpt2-micro', '--chat-template', dbFile), '--chat-template');
  refused(cli('models', 'init', '--preset', 'gpt2-micro', '--tokenizer', blobsDir(home)), '--tokenizer');
  refused(cli('models', 'import', blobsDir(home)), 'models import');

  // A file outside the state is read as before (here: a prompt for a model that does not exist).
  fs.writeFileSync(path.join(dir, 'ok.txt'), 'hello\n');
  const ok = cli('generate', '--model', 'none', '--prompts-file', path.join(dir, 'ok.txt'));
  assert.equal(ok.code, 2);
  assert.doesNotMatch(ok.err, /ALIGNFLOW_HOME/);
  assert.match(ok.err, /"none"/);
});
