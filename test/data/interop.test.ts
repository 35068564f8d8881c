// Data safety on import: nothing a file says is lost without a word. TRL's stepwise-supervision
// format is refused (not imported as prompt-only), fields a format does not have are named in a
// warning, and a string with an unpaired surrogate escape is refused with its line and field.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { tmpDir } from '../helpers/tmp.js';
import { openDb } from '../../src/store/db.js';
import { createLocalStore } from '../../src/store/artifacts.js';
import { importDataset, listDatasets } from '../../src/data/datasets.js';
import { normalizeRecord } from '../../src/data/formats.js';
import { AlignflowError } from '../../src/errors.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

function fresh() {
  const home = tmpDir();
  const db = openDb(path.join(home, 'alignflow.db'));
  return { home, db, store: createLocalStore(db, home) };
}
const write = (dir: string, name: string, lines: string[]) => {
  const p = path.join(dir, name);
  fs.writeFileSync(p, lines.join('\n') + '\n');
  return p;
};

test('stepwise supervision (prompt/completions/labels) is refused, naming the format; nothing is imported', async () => {
  const { home, db, store } = fresh();
  const file = write(home, 'prm.jsonl', [
    JSON.stringify({ prompt: 'Which number is larger, 9.8 or 9.11?', completions: ['The fractional part of 9.8 is 0.8.', 'So 9.11 is larger.'], labels: [true, false] }),
  ]);
  await assert.rejects(importDataset(db, store, file), (err: AlignflowError) => {
    assert.equal(err.kind, 'input');
    assert.equal(err.issues[0]!.line, 1);
    assert.equal(err.issues[0]!.field, 'completions');
    assert.match(err.issues[0]!.reason, /stepwise-supervision/);
    return true;
  });
  assert.equal(listDatasets(db).length, 0);
  // Stepwise fields later in a file are refused too (not dropped from a prompt-only line).
  const later = write(home, 'later.jsonl', [JSON.stringify({ prompt: 'a' }), JSON.stringify({ prompt: 'b', completions: ['x'], labels: [true] })]);
  await assert.rejects(importDataset(db, store, later), (err: AlignflowError) => err.issues.some((i) => i.line === 2 && /stepwise/.test(i.reason)));
});

test('fields the format does not have are named once each in a warning, with the lines they were on', async () => {
  const { home, db, store } = fresh();
  const file = write(home, 'extra.jsonl', [
    JSON.stringify({ prompt: 'p1', chosen: 'c1', rejected: 'r1', id: 1, source: 'web' }),
    JSON.stringify({ prompt: 'p2', chosen: 'c2', rejected: 'r2', id: 2 }),
  ]);
  const r = await importDataset(db, store, file);
  assert.equal(r.records, 2);
  assert.equal(r.warnings, 2);
  assert.deepEqual(r.warningIssues.map((w) => [w.field, w.line]), [['id', 1], ['source', 1]]);
  assert.match(r.warningIssues[0]!.reason, /not a field of the explicit-prompt format .*on 2 lines.*prompt, chosen, rejected, margin/);
  // Keys inside chat messages count too.
  const conv = normalizeRecord({ messages: [{ role: 'user', content: 'hi', name: 'bob' }, { role: 'assistant', content: 'hello' }] }, 'messages');
  assert.ok(conv.ok);
  if (conv.ok) assert.deepEqual(conv.dropped, ['messages[].name']);
});

test('an unpaired surrogate escape is refused with its line and field', async () => {
  const { home, db, store } = fresh();
  const file = write(home, 'sur.jsonl', ['{"prompt":"fine","completion":"ok \\ud83d\\ude00"}', '{"prompt":"bad \\ud800 here","completion":"x"}', '{"prompt":"p","completion":"tail \\udc00"}']);
  await assert.rejects(importDataset(db, store, file), (err: AlignflowError) => {
    assert.deepEqual(err.issues.map((i) => [i.line, i.field]), [[2, 'prompt'], [3, 'completion']]);
    assert.match(err.issues[0]!.reason, /unpaired UTF-16 surrogate \(\\ud800 at character 4\)/);
    return true;
  });
  const conv = normalizeRecord({ prompt: [{ role: 'user', content: 'a\ud800' }], completion: [{ role: 'assistant', content: 'b' }] }, 'conversational-prompt-completion');
  assert.ok(!conv.ok);
  if (!conv.ok) assert.equal(conv.issues[0]!.field, 'prompt[0].content');
});

test('empty answers are legal (EOS-only), empty prompts and texts are not; the CLI prints the warnings', () => {
  const ok = normalizeRecord({ prompt: 'p', chosen: '', rejected: 'r' }, 'explicit-prompt');
  assert.ok(ok.ok);
  if (ok.ok) assert.equal(ok.warnings[0]!.field, 'chosen');
  assert.ok(normalizeRecord({ prompt: 'p', completion: '' }, 'prompt-completion').ok);
  assert.ok(normalizeRecord({ prompt: [{ role: 'user', content: 'p' }], completion: [{ role: 'assistant', content: '' }] }, 'conversational-prompt-completion').ok);
  assert.ok(!normalizeRecord({ prompt: '', completion: 'c' }, 'prompt-completion').ok);
  assert.ok(!normalizeRecord({ text: ' ' }, 'text').ok);
  assert.ok(!normalizeRecord({ chosen: '', rejected: 'r' }, 'implicit-prompt').ok, 'an implicit-prompt answer holds the prompt too');

  const home = tmpDir();
  const file = write(home, 'cli.jsonl', [JSON.stringify({ prompt: 'p', completion: '', meta: 1 })]);
  const r = spawnSync(process.execPath, ['--import', import.meta.resolve('tsx'), path.join(root, 'src/cli/main.ts'), 'datasets', 'import', file], {
    cwd: home,
    env: { ...process.env, ALIGNFLOW_HOME: path.join(home, 'h') },
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /field "meta": is not a field of the prompt-completion format/);
  assert.match(r.stderr, /field "completion": is empty \(legal: trained as an EOS-only answer/);
});
