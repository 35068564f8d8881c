// The users and labels commands, run through commander in-process against a temp ALIGNFLOW_HOME.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { tmpDir } from '../helpers/tmp.js';

const home = tmpDir('alignflow-cli-');
process.env.ALIGNFLOW_HOME = home;
const { cliDb, reportError } = await import('../../src/cli/shared.js');
const { exitCodeFor } = await import('../../src/errors.js');
const { CommanderError } = await import('commander');
const users = await import('../../src/cli/commands/users.js');
const labels = await import('../../src/cli/commands/labels.js');
const { createBatch, addPairs } = await import('../../src/labeling/batches.js');
const { nextAssignment, submitLabel } = await import('../../src/labeling/queue.js');
const { verifyToken } = await import('../../src/labeling/users.js');

async function cli(...args: string[]): Promise<{ out: string; err: string; code: number }> {
  const program = new Command('alignflow');
  users.register(program);
  labels.register(program);
  let out = '';
  let err = '';
  const w1 = process.stdout.write.bind(process.stdout);
  const w2 = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((s: string) => ((out += s), true)) as typeof process.stdout.write;
  process.stderr.write = ((s: string) => ((err += s), true)) as typeof process.stderr.write;
  process.exitCode = 0;
  program.exitOverride();
  try {
    // like runCli, but keeps the cached database open between commands
    await program.parseAsync(['node', 'alignflow', ...args]);
  } catch (e) {
    if (e instanceof CommanderError) process.exitCode = e.exitCode === 0 ? 0 : 2;
    else {
      reportError(e);
      process.exitCode = exitCodeFor(e);
    }
  } finally {
    process.stdout.write = w1;
    process.stderr.write = w2;
  }
  const code = Number(process.exitCode ?? 0);
  process.exitCode = 0;
  return { out, err, code };
}

test('users add / ls / revoke; tokens shown once and verified', async () => {
  const add = await cli('users', 'add', 'alice', '--role', 'labeler', '--json');
  assert.equal(add.code, 0, add.err);
  const { token, role } = JSON.parse(add.out);
  assert.equal(role, 'labeler');
  assert.equal(verifyToken(cliDb(), token)?.name, 'alice');
  const dup = await cli('users', 'add', 'alice', '--role', 'admin');
  assert.equal(dup.code, 2);
  assert.match(dup.err, /already exists/);
  const bad = await cli('users', 'add', 'bob', '--role', 'root');
  assert.equal(bad.code, 2);
  const ls = await cli('users', 'ls', '--json');
  assert.deepEqual(JSON.parse(ls.out).map((u: { name: string; status: string }) => [u.name, u.status]), [['alice', 'active']]);
  assert.ok(!ls.out.includes(token));
  assert.equal((await cli('users', 'revoke', 'alice')).code, 0);
  assert.equal(verifyToken(cliDb(), token), undefined);
});

test('labels stats and export', async () => {
  const db = cliDb();
  const b = createBatch(db, { name: 'cli batch', quota: 2 });
  addPairs(db, b.id, [0, 1, 2].map((i) => ({ prompt: `p${i}`, a: { text: `good ${i}` }, b: { text: `bad ${i}` } })));
  for (const name of ['x', 'y']) {
    const u = JSON.parse((await cli('users', 'add', name, '--role', 'labeler', '--json')).out) as { id: string; name: string };
    for (let k = 0; k < 3; k++) {
      const a = nextAssignment(cliDb(), b.id, u)!;
      const good = a.left.startsWith('good') ? 'left' : 'right';
      submitLabel(cliDb(), a.assignmentId, u, { choice: name === 'y' && a.prompt === 'p2' ? 'tie' : good, durationMs: 1500 });
    }
  }
  const st = await cli('labels', 'stats', b.id);
  assert.equal(st.code, 0, st.err);
  assert.match(st.out, /6\/6 labels, 3\/3 pairs complete/);
  assert.match(st.out, /Krippendorff's α 0\.\d{3}/);
  const js = JSON.parse((await cli('labels', 'stats', b.id, '--json')).out);
  assert.equal(js[0].stats.disputed[0].prompt, 'p2');
  const dir = path.join(home, 'export');
  const ex = await cli('labels', 'export', b.id, '--out', dir);
  assert.equal(ex.code, 0, ex.err);
  const prefs = fs.readFileSync(path.join(dir, 'preferences.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  // p2 is split (good vs tie) and excluded; p0 and p1 resolve to the good answers
  prefs.sort((p, q) => (p.prompt < q.prompt ? -1 : 1));
  assert.deepEqual(prefs, [{ prompt: 'p0', chosen: 'good 0', rejected: 'bad 0' }, { prompt: 'p1', chosen: 'good 1', rejected: 'bad 1' }]);
  const raw = fs.readFileSync(path.join(dir, 'labels.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(raw.length, 6);
  assert.deepEqual([...new Set(raw.map((r) => r.annotator))].sort(), ['user:x', 'user:y']);
  assert.match(ex.out, /excluded: 0 tie, 0 both bad, 1 split/);
  const missing = await cli('labels', 'stats', 'r-nope');
  assert.equal(missing.code, 2);
  assert.equal((await cli('labels', 'export', b.id, '--out', dir, '--resolution', 'vibes')).code, 2);
});

test('labels stats: a ranking batch with suggestions prints exact follows and τ-b to the suggestion per labeler', async () => {
  const db = cliDb();
  const b = createBatch(db, { name: 'cli ranks', quota: 1, kind: 'ranking', suggestions: true });
  // Scores order the answers 1 > 2 > 3 (item order); the labeler follows on r0 and reverses on r1.
  addPairs(db, b.id, [0, 1].map((i) => ({ prompt: `r${i}`, a: { text: `x${i}`, score: 3 }, b: { text: `y${i}`, score: 2 }, rest: [{ text: `z${i}`, score: 1 }] })));
  const u = JSON.parse((await cli('users', 'add', 'ranker', '--role', 'labeler', '--json')).out) as { id: string; name: string };
  for (let k = 0; k < 2; k++) {
    const a = nextAssignment(cliDb(), b.id, u)!;
    const sug = (a.suggestion as { ranking: number[][] }).ranking;
    submitLabel(cliDb(), a.assignmentId, u, { ranking: a.prompt === 'r0' ? sug : [...sug].reverse() });
  }
  const st = await cli('labels', 'stats', b.id);
  assert.equal(st.code, 0, st.err);
  assert.match(st.out, /suggestions {3}followed 1\/2 \(50\.0%\), mean Kendall's τ-b label vs suggestion 0\.000 \(2 labels\)/);
  assert.match(st.out, /user:ranker\s+1\/2\s+50\.0%\s+0\.000/);
});
