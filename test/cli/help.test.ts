// Every command, argument and option says what it is in --help; required options say so; with
// --json, errors reach stderr as one JSON object a script can parse.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { tmpDir } from '../helpers/tmp.js';
import { buildProgram } from '../../src/cli/program.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const dir = tmpDir();

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', import.meta.resolve('tsx'), path.join(root, 'src/cli/main.ts'), ...args], {
    cwd: dir,
    env: { ...process.env, ALIGNFLOW_HOME: path.join(dir, 'home'), ALIGNFLOW_REDIS_URL: '' },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('every command, argument and option of the whole tree has a description', async () => {
  const program = await buildProgram(['node', 'alignflow']);
  const missing: string[] = [];
  let commands = 0;
  const walk = (c: Command, at: string) => {
    commands++;
    if (!c.description()) missing.push(`command "${at}"`);
    for (const a of c.registeredArguments) if (!a.description) missing.push(`argument <${a.name()}> of "${at}"`);
    for (const o of c.options) if (!o.description) missing.push(`option ${o.flags} of "${at}"`);
    for (const s of c.commands) walk(s, `${at} ${s.name()}`);
  };
  walk(program, 'alignflow');
  assert.ok(commands > 40, `walked ${commands} commands`);
  assert.deepEqual(missing, []);
});

test('required options are marked in --help', () => {
  const r = cli('datasets', 'export', '--help');
  assert.equal(r.code, 0);
  assert.match(r.out, /--out <path>\s+\(required\) output file/);
  assert.match(r.out, /  id\s+dataset id \(d-…\), name, or the artifact id/);
});

test('with --json, errors go to stderr as JSON (ours and commander\'s), stdout stays empty', () => {
  const notFound = cli('runs', 'show', 'r-nope', '--json');
  assert.equal(notFound.code, 2);
  assert.equal(notFound.out, '');
  assert.deepEqual(JSON.parse(notFound.err), { error: { kind: 'not_found', message: 'no run with id r-nope', exitCode: 2 } });

  const usage = cli('datasets', 'export', 'd-x', '--json');
  assert.equal(usage.code, 2);
  const u = JSON.parse(usage.err);
  assert.equal(u.error.kind, 'usage');
  assert.match(u.error.message, /required option '--out <path>' not specified/);

  const plain = cli('runs', 'show', 'r-nope');
  assert.equal(plain.err, 'error: no run with id r-nope\n');
});
