// bin/alignflow.js, the installed command (issue 12, item 3): a signal sent to it reaches the
// command's graceful shutdown and leaves no process behind; --version answers without the CLI.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { tmpDir } from '../helpers/tmp.js';
import { ALIGNFLOW_VERSION } from '../../src/version.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const bin = path.join(root, 'bin', 'alignflow.js');

/** Every live process whose parent is `pid`, and theirs (from /proc). */
function descendants(pid: number): number[] {
  const parentOf = new Map<number, number>();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      // "pid (comm) state ppid …": comm may hold spaces, so split after the last ')'
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      parentOf.set(Number(d), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // gone meanwhile
    }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const [c, pp] of parentOf) if (pp === p) (out.push(c), walk(c));
  };
  walk(pid);
  return out;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

test('--version prints package.json\'s version, which src/version.ts matches', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string };
  assert.equal(pkg.version, ALIGNFLOW_VERSION);
  const r = spawnSync(process.execPath, [bin, '--version'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, `${ALIGNFLOW_VERSION}\n`);
});

for (const sig of ['SIGTERM', 'SIGHUP'] as const) {
  test(`kill -${sig.slice(3)} on \`alignflow serve\` started through bin/ shuts it down gracefully and leaves no orphan`, { timeout: 120_000 }, async () => {
    const home = tmpDir();
    const child = spawn(process.execPath, [bin, 'serve', '--port', '0'], { env: { ...process.env, ALIGNFLOW_HOME: home }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => child.on('exit', (code, signal) => res({ code, signal })));
    for (let i = 0; i < 600 && !/serving http/.test(out); i++) await new Promise((r) => setTimeout(r, 100));
    assert.match(out, /serving http/);
    const family = descendants(child.pid!);
    child.kill(sig);
    const { code, signal } = await exited;
    assert.equal(signal, null, out);
    assert.equal(code, 0, out);
    assert.match(out, new RegExp(`${sig}: closing the server[\\s\\S]*alignflow server stopped`));
    // helpers the command started (esbuild's service under tsx) exit once their pipe closes
    for (let i = 0; i < 100 && family.some(alive); i++) await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(family.filter(alive), [], 'no process of the command outlives it');
  });
}
