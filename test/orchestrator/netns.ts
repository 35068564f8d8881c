// Linux network namespaces for the multi-host tests: one "coordinator host" namespace joined to
// each "worker host" namespace by a veth pair (10.77.N.1 ↔ 10.77.N.2/24), so the workers reach
// the coordinator and Redis only over those links, which a test can cut (`ip link set … down`).
// Names carry this process's pid; everything is removed after the test file, also on failure.
// Needs root (CAP_NET_ADMIN); `netnsUnavailable()` says why not, for the tests' skip message.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { after } from 'node:test';
import { eq } from 'drizzle-orm';
import { openDb, type Db } from '../../src/store/db.js';
import { databasePath } from '../../src/config/paths.js';
import { driveRun } from '../../src/orchestrator/executors/inline.js';
import { runStages } from '../../src/orchestrator/runs.js';
import { stageOutputs } from '../../src/store/schema.js';
import { cliArgs, setup, submit, type Env } from './helpers.js';
import { tmpDir } from '../helpers/tmp.js';

const tag = String(process.pid % 100_000);
const made: string[] = [];
const procs = new Set<ChildProcess>();

const ip = (args: string[]) => {
  const r = spawnSync('ip', args, { encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr || r.error?.message || `exit ${r.status}`}`);
  return r.stdout;
};

/** Why network namespaces cannot be used here (undefined when they can). */
export function netnsUnavailable(): string | undefined {
  if (process.platform !== 'linux') return 'network namespaces need Linux';
  if (process.getuid?.() !== 0) return 'ip netns needs root (CAP_NET_ADMIN); CI runs this as root';
  const probe = `afprobe${tag}`;
  const r = spawnSync('ip', ['netns', 'add', probe], { encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0) return `ip netns add failed: ${(r.stderr || r.error?.message || '').trim()}`;
  spawnSync('ip', ['netns', 'del', probe], { timeout: 10_000 });
  return undefined;
}

export interface Topology {
  coord: string;
  workers: { ns: string; dev: string; coordAddr: string }[];
  /** Cuts (or restores) worker i's link: its packets to the coordinator and Redis are dropped. */
  link(i: number, up: boolean): void;
  /** Kills what runs inside and removes the namespaces (also done after the test file). */
  destroy(): void;
}

let topologies = 0;

export function createTopology(nWorkers: number): Topology {
  const n = ++topologies;
  const mine: string[] = [];
  const coord = `a${n}c${tag}`;
  ip(['netns', 'add', coord]);
  made.push(coord);
  mine.push(coord);
  ip(['-n', coord, 'link', 'set', 'lo', 'up']);
  const workers: Topology['workers'] = [];
  for (let i = 1; i <= nWorkers; i++) {
    const ns = `a${n}w${i}x${tag}`;
    ip(['netns', 'add', ns]);
    made.push(ns);
    mine.push(ns);
    ip(['-n', ns, 'link', 'set', 'lo', 'up']);
    const a = `a${n}c${i}x${tag}`;
    const b = `a${n}w${i}x${tag}`;
    ip(['link', 'add', a, 'type', 'veth', 'peer', 'name', b]);
    ip(['link', 'set', a, 'netns', coord]);
    ip(['link', 'set', b, 'netns', ns]);
    ip(['-n', coord, 'addr', 'add', `10.77.${i}.1/24`, 'dev', a]);
    ip(['-n', ns, 'addr', 'add', `10.77.${i}.2/24`, 'dev', b]);
    ip(['-n', coord, 'link', 'set', a, 'up']);
    ip(['-n', ns, 'link', 'set', b, 'up']);
    workers.push({ ns, dev: b, coordAddr: `10.77.${i}.1` });
  }
  return {
    coord,
    workers,
    link(i, up) {
      const w = workers[i]!;
      ip(['-n', w.ns, 'link', 'set', w.dev, up ? 'up' : 'down']);
    },
    destroy() {
      for (const ns of mine) removeNs(ns);
      made.splice(0, made.length, ...made.filter((x) => !mine.includes(x)));
    },
  };
}

export interface NsProc {
  proc: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
  /** Waits until the output contains `text` (throws after `ms` or when the process exits). */
  waitFor(text: string | RegExp, ms: number): Promise<void>;
}

/** Runs `cmd` inside namespace `ns`; killed (SIGKILL) after the test file at the latest. */
export function spawnIn(ns: string, cmd: string, args: string[], env: NodeJS.ProcessEnv, cwd: string): NsProc {
  const proc = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  procs.add(proc);
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((res) => proc.once('exit', (code) => res(code)));
  return {
    proc,
    output: () => out,
    exited,
    async waitFor(text, ms) {
      const end = Date.now() + ms;
      while (!(typeof text === 'string' ? out.includes(text) : text.test(out))) {
        if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`${cmd} ${args.join(' ')} exited: ${out.slice(-3000)}`);
        if (Date.now() > end) throw new Error(`timed out waiting for ${text} from ${cmd} ${args.slice(0, 4).join(' ')}: ${out.slice(-3000)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
  };
}

export async function kill9(p: NsProc): Promise<void> {
  if (p.proc.exitCode !== null || p.proc.signalCode !== null) return;
  p.proc.kill('SIGKILL');
  await p.exited;
}

function cleanup() {
  for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  for (const ns of made.splice(0).reverse()) removeNs(ns);
}

/** Kills the processes inside `ns` (ours: the tests started them there), by pid, then deletes it. */
function removeNs(ns: string) {
  {
    const pids = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8', timeout: 10_000 }).stdout?.split(/\s+/).filter(Boolean) ?? [];
    for (const pid of pids) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // already gone
      }
    }
    spawnSync('ip', ['netns', 'del', ns], { timeout: 10_000 }); // removes its veth ends too
  }
}

after(cleanup);
process.once('exit', cleanup);

/** Each stage's outputs as "role=artifact" lists: what two runs must agree on. */
export const outputsOf = (db: Db, runId: string) =>
  Object.fromEntries(runStages(db, runId).map((s) => [s.name, db.select().from(stageOutputs).where(eq(stageOutputs.stageId, s.id)).all().map((o) => `${o.role}=${o.artifactId}`).sort().join(',')]));

/** The pipeline run inline in a fresh home: the reference a multi-host run must equal. */
export async function inlineRun(spec: string): Promise<{ env: Env; runId: string; outputs: Record<string, string> }> {
  const env: Env = await setup();
  const runId = await submit(env, spec);
  assert.equal(await driveRun(env, runId), 'succeeded', JSON.stringify(runStages(env.db, runId).map((s) => [s.name, s.state, s.error])));
  return { env, runId, outputs: outputsOf(env.db, runId) };
}

const ROOT = path.resolve(import.meta.dirname, '../..');
const REDIS_PORT = 16379;
const COORD_PORT = 18765;
const PASS = `pw-${process.pid}`;

/**
 * The coordinator host of a topology: a home with a worker user (`wk`), a password-protected
 * redis-server in its namespace, and ways to start `alignflow serve` there, start `alignflow
 * worker` on a worker host, and submit a spec on it (Redis listens only there).
 */
export interface CoordinatorHost {
  home: string;
  db: Db;
  startCoordinator(): Promise<NsProc>;
  /** `alignflow worker --coordinator` on worker host i with its own home; `args`/`env` added. */
  startWorker(i: number, home: string, o?: { args?: string[]; env?: Record<string, string> }): NsProc;
  submit(spec: string): string;
  /** `redis-cli` against the coordinator host's Redis; its output, trimmed. */
  redisCli(...args: string[]): string;
}

export async function coordinatorHost(topo: Topology, timings: Record<string, string>): Promise<CoordinatorHost> {
  const home = path.join(tmpDir(), 'coord');
  const env = { ...process.env, ...timings, ALIGNFLOW_HOME: home };
  const added = spawnSync(process.execPath, cliArgs(['users', 'add', 'wk', '--role', 'worker', '--json']), { cwd: ROOT, env, encoding: 'utf8', timeout: 60_000 });
  assert.equal(added.status, 0, added.stderr);
  const token = JSON.parse(added.stdout).token as string;
  const redis = spawnIn(topo.coord, 'redis-server', ['--port', String(REDIS_PORT), '--bind', '0.0.0.0', '--protected-mode', 'no', '--requirepass', PASS, '--save', '', '--appendonly', 'no'], env, ROOT);
  await redis.waitFor('Ready to accept connections', 20_000);
  const localRedis = `redis://:${PASS}@127.0.0.1:${REDIS_PORT}`;
  return {
    home,
    db: openDb(databasePath(home)),
    async startCoordinator() {
      const p = spawnIn(topo.coord, process.execPath, cliArgs(['serve', '--host', '0.0.0.0', '--port', String(COORD_PORT), '--redis', localRedis]), env, ROOT);
      await p.waitFor('alignflow serving', 180_000);
      return p;
    },
    startWorker(i, workerHome, o = {}) {
      const w = topo.workers[i]!;
      const args = ['worker', '--redis', `redis://:${PASS}@${w.coordAddr}:${REDIS_PORT}`, '--coordinator', `http://${w.coordAddr}:${COORD_PORT}`, '--token', token, ...(o.args ?? [])];
      return spawnIn(w.ns, process.execPath, cliArgs(args), { ...process.env, ...timings, ALIGNFLOW_HOME: workerHome, ...o.env }, ROOT);
    },
    submit(spec) {
      const file = path.join(tmpDir(), 'spec.yaml');
      fs.writeFileSync(file, spec);
      const r = spawnSync('ip', ['netns', 'exec', topo.coord, process.execPath, ...cliArgs(['submit', file, '--redis', localRedis, '--json'])], { cwd: ROOT, env, encoding: 'utf8', timeout: 60_000 });
      assert.equal(r.status, 0, r.stderr);
      return JSON.parse(r.stdout).id as string;
    },
    redisCli(...args) {
      const r = spawnSync('ip', ['netns', 'exec', topo.coord, 'redis-cli', '-p', String(REDIS_PORT), '--no-auth-warning', '-a', PASS, ...args], { encoding: 'utf8', timeout: 10_000 });
      assert.equal(r.status, 0, r.stderr);
      return r.stdout.trim();
    },
  };
}
