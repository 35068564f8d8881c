import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { AlignflowError, type InputIssue } from '../../src/errors.js';
import { tmpDir } from '../helpers/tmp.js';
import { openDb, type Db } from '../../src/store/db.js';
import { createLocalStore } from '../../src/store/artifacts.js';
import { databasePath } from '../../src/config/paths.js';
import { getStage, registerStageModule } from '../../src/stages/index.js';
import { parseSpec } from '../../src/config/spec.js';
import { createRun, type ExecutorName } from '../../src/orchestrator/runs.js';
import type { ExecDeps } from '../../src/orchestrator/execute.js';

export const fixturesModule = fileURLToPath(new URL('./fixtures/stages.ts', import.meta.url));

export interface Env extends ExecDeps {
  dir: string;
  dbFile: string;
}

export async function setup(): Promise<Env> {
  await registerStageModule(fixturesModule);
  const home = tmpDir();
  const dbFile = databasePath(home);
  const db = openDb(dbFile);
  const store = createLocalStore(db, home);
  // Spec and data files live beside the home, never in it: alignflow refuses to read its own state as input.
  return { db, store, home, dir: tmpDir(), dbFile };
}

export const lookup = (k: string) => getStage(k);

/** The issues of the AlignflowError `fn` throws (fails the test when it does not throw one). */
export function issuesOf(fn: () => unknown): InputIssue[] {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof AlignflowError, String(err));
    return err.issues;
  }
  assert.fail('expected the spec to be refused');
}

export function writeFile(dir: string, name: string, text: string): string {
  const p = path.join(dir, name);
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, text);
  return p;
}

export async function submit(env: Env, yaml: string, opts: { sets?: string[]; force?: string[]; executor?: ExecutorName } = {}): Promise<string> {
  const file = writeFile(env.dir, `spec-${Math.random().toString(36).slice(2)}.yaml`, yaml);
  const spec = parseSpec(yaml, { file, lookup, sets: opts.sets ?? [] });
  return createRun(env.db as Db, env.store, spec, { executor: opts.executor ?? 'inline', specPath: file, force: opts.force ?? [] });
}

export function readTrace(file: string): { stage: string; event: string; t: number; pid: number; step?: number }[] {
  if (!fs.existsSync(file)) return [];
  return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

const mainTs = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

/** Env for a CLI child: its own home, the test stages, no Redis unless given. */
export const cliEnv = (home: string, extra: Record<string, string> = {}) => ({
  ...process.env,
  ALIGNFLOW_HOME: home,
  ALIGNFLOW_STAGE_MODULES: fixturesModule,
  ALIGNFLOW_REDIS_URL: '',
  ...extra,
});

/** The node arguments that run the CLI from source. */
export const cliArgs = (args: string[]) => ['--import', import.meta.resolve('tsx'), mainTs, ...args];

/** Runs `alignflow ARGS` to its end in `cwd` with `home` as ALIGNFLOW_HOME. */
export function runCli(cwd: string, home: string, args: string[], extra: Record<string, string> = {}, timeout = 120_000) {
  const r = spawnSync(process.execPath, cliArgs(args), { cwd, env: cliEnv(home, extra), encoding: 'utf8', timeout });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** Polls `probe` until it gives a value (not undefined), for at most `ms`. */
export async function waitFor<T>(probe: () => T | undefined, ms: number, what: string, everyMs = 100): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
