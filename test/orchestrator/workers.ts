// Spawns real `alignflow worker` processes for the reliability tests.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after } from 'node:test';
import { fixturesModule } from './helpers.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Short lock/heartbeat timings so crash recovery happens in seconds, not the default ~30 s. */
export const fastTimings = {
  ALIGNFLOW_LOCK_MS: '2000',
  ALIGNFLOW_STALLED_MS: '1000',
  ALIGNFLOW_HEARTBEAT_MS: '250',
  ALIGNFLOW_STALE_MS: '2000',
  ALIGNFLOW_RECONCILE_MS: '700',
};

const live = new Set<ChildProcess>();
after(() => {
  for (const p of live) if (p.exitCode === null) p.kill('SIGKILL');
});

export interface WorkerProc {
  proc: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

export async function spawnWorker(home: string, url: string, args: string[] = [], env: Record<string, string> = {}): Promise<WorkerProc> {
  const proc = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'src/cli/main.ts'), 'worker', '--redis', url, ...args], {
    cwd: root,
    env: { ...process.env, ...fastTimings, ALIGNFLOW_HOME: home, ALIGNFLOW_STAGE_MODULES: fixturesModule, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(proc);
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((res) => proc.once('exit', (code) => res(code)));
  const deadline = Date.now() + 30_000;
  while (!out.includes('ready:')) {
    if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`worker did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { proc, output: () => out, exited };
}

/** SIGTERM, then SIGKILL if the worker has not exited within `ms`. Returns the exit code. */
export async function stopWorker(w: WorkerProc, ms = 15_000): Promise<number | null> {
  if (w.proc.exitCode !== null) return w.proc.exitCode;
  w.proc.kill('SIGTERM');
  const t = setTimeout(() => w.proc.kill('SIGKILL'), ms);
  const code = await w.exited;
  clearTimeout(t);
  return code;
}
