// `alignflow doctor`: what this machine offers alignflow — Node, state directory, database and
// migrations, Redis, the TensorFlow.js backend. Changes nothing (the database is not created or
// migrated here). Exit 1 when something required is broken.
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import Database from 'better-sqlite3';
import { alignflowHome, blobsDir, databasePath } from '../../config/paths.js';
import { migrationsFolder } from '../../store/db.js';
import { ALIGNFLOW_VERSION, ENGINE_VERSION } from '../../version.js';
import { printJson } from '../shared.js';

export type CheckStatus = 'ok' | 'warn' | 'fail';
export interface Check {
  name: string;
  status: CheckStatus;
  detail: string;
  data?: Record<string, unknown>;
}

export const MIN_NODE_MAJOR = 20;

export function checkNode(version = process.versions.node): Check {
  const major = Number(version.split('.')[0]);
  return major >= MIN_NODE_MAJOR
    ? { name: 'node', status: 'ok', detail: `v${version}`, data: { version } }
    : { name: 'node', status: 'fail', detail: `v${version}; alignflow needs Node ${MIN_NODE_MAJOR} or newer`, data: { version } };
}

export function checkHome(home = alignflowHome()): Check {
  const exists = fs.existsSync(home);
  let writable = false;
  if (exists) {
    try {
      fs.accessSync(home, fs.constants.W_OK);
      writable = true;
    } catch {
      writable = false;
    }
  }
  const source = process.env.ALIGNFLOW_HOME ? 'ALIGNFLOW_HOME' : 'default ./.alignflow';
  if (exists && !writable) return { name: 'home', status: 'fail', detail: `${home} (${source}) is not writable`, data: { home, exists, writable } };
  return {
    name: 'home',
    status: 'ok',
    detail: `${home} (${source})${exists ? '' : ', created on first use'}; blobs in ${path.relative(home, blobsDir(home))}/`,
    data: { home, exists, writable: exists ? writable : null },
  };
}

interface JournalEntry {
  idx: number;
  when: number;
  tag: string;
}

/** Committed migrations vs those recorded in the database (drizzle's __drizzle_migrations). */
export function checkDatabase(file = databasePath()): Check {
  let journal: JournalEntry[] = [];
  try {
    journal = (JSON.parse(fs.readFileSync(path.join(migrationsFolder, 'meta', '_journal.json'), 'utf8')) as { entries: JournalEntry[] }).entries;
  } catch (err) {
    return { name: 'database', status: 'fail', detail: `cannot read the committed migrations in ${migrationsFolder}: ${(err as Error).message}` };
  }
  const committed = journal.length;
  const latest = journal[journal.length - 1]?.tag ?? null;
  if (!fs.existsSync(file)) {
    return { name: 'database', status: 'ok', detail: `${file} not created yet (created and migrated on first use); ${committed} migration(s) committed`, data: { path: file, exists: false, committed, applied: 0, pending: committed, latest } };
  }
  let sqlite: Database.Database | undefined;
  try {
    sqlite = new Database(file, { fileMustExist: true });
    sqlite.pragma('busy_timeout = 5000');
    const hasTable = sqlite.prepare("select 1 from sqlite_master where type = 'table' and name = '__drizzle_migrations'").get();
    const rows = hasTable ? (sqlite.prepare('select created_at as createdAt from __drizzle_migrations order by created_at').all() as { createdAt: number }[]) : [];
    const last = rows.length ? Number(rows[rows.length - 1]!.createdAt) : -Infinity;
    // drizzle's migrator applies every committed migration newer than the last one recorded.
    const pending = journal.filter((j) => j.when > last).length;
    const applied = rows.length;
    const journalMode = String(sqlite.pragma('journal_mode', { simple: true }));
    const data = { path: file, exists: true, committed, applied, pending, latest, journalMode };
    if (applied > committed) return { name: 'database', status: 'warn', detail: `${file}: ${applied} migrations applied but only ${committed} committed here (made by a newer alignflow?)`, data };
    if (pending > 0) return { name: 'database', status: 'warn', detail: `${file}: ${applied}/${committed} migrations applied, ${pending} pending (applied automatically on next use)`, data };
    return { name: 'database', status: 'ok', detail: `${file}: ${applied}/${committed} migrations applied (latest ${latest}), ${journalMode}`, data };
  } catch (err) {
    return { name: 'database', status: 'fail', detail: `cannot open ${file}: ${(err as Error).message}`, data: { path: file } };
  } finally {
    sqlite?.close();
  }
}

/** Connects with a short timeout and never retries, so an absent Redis costs at most ~2 s. */
export async function checkRedis(url = process.env.ALIGNFLOW_REDIS_URL, timeoutMs = 2000): Promise<Check> {
  if (!url) return { name: 'redis', status: 'ok', detail: 'not configured (ALIGNFLOW_REDIS_URL unset; the inline executor needs no Redis)', data: { configured: false } };
  const redacted = url.replace(/\/\/([^@/]*)@/, '//***@');
  const { oneShotRedis } = await import('../../orchestrator/executors/bullmq.js');
  let client;
  try {
    client = oneShotRedis(url, timeoutMs);
  } catch (err) {
    // ALIGNFLOW_REDIS_CA unreadable or not PEM
    return { name: 'redis', status: 'fail', detail: (err as Error).message, data: { configured: true, reachable: false } };
  }
  client.on('error', () => undefined); // reported below; never an unhandled 'error' event
  try {
    await withTimeout(client.connect(), timeoutMs + 500);
    const info = await withTimeout(client.info('server'), timeoutMs);
    const version = /redis_version:([^\r\n]+)/.exec(info)?.[1] ?? 'unknown';
    return { name: 'redis', status: 'ok', detail: `reachable at ${redacted} (Redis ${version})`, data: { configured: true, reachable: true, version } };
  } catch (err) {
    return { name: 'redis', status: 'fail', detail: `not reachable at ${redacted}: ${(err as Error).message || String(err)}`, data: { configured: true, reachable: false } };
  } finally {
    client.disconnect();
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new Error(`timed out after ${ms} ms`)), ms)))]).finally(() => clearTimeout(timer));
}

export async function checkBackend(): Promise<Check> {
  try {
    const { describeBackends } = await import('../../ml/backend.js');
    const d = await describeBackends();
    const list = d.candidates.map((c) => `${c.name}: ${c.available ? 'available' : 'unavailable'}${c.reason ? ` (${c.reason})` : ''}`).join('; ');
    const anyAvailable = d.candidates.some((c) => c.available);
    const extra = d.native ? ` (${d.native.threads} threads, ${d.native.blas}, ${d.native.matmul} matmul)` : '';
    const enable = d.enableNative ? `. To enable native: ${d.enableNative}` : '';
    return { name: 'tfjs', status: anyAvailable ? 'ok' : 'fail', detail: `active backend ${d.active}${extra}. ${list}${enable}`, data: d };
  } catch (err) {
    return { name: 'tfjs', status: 'fail', detail: `no TensorFlow.js backend could be initialised: ${(err as Error).message}` };
  }
}

export async function runDoctor(): Promise<Check[]> {
  const home = alignflowHome();
  return [checkNode(), checkHome(home), checkDatabase(databasePath(home)), await checkRedis(), await checkBackend()];
}

export function register(program: Command): void {
  program
    .command('doctor')
    .description('check Node, the state directory, database migrations, Redis and the TensorFlow.js backend')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const checks = await runDoctor();
      const ok = checks.every((c) => c.status !== 'fail');
      if (opts.json) printJson({ ok, version: ALIGNFLOW_VERSION, engine: ENGINE_VERSION, checks });
      else {
        process.stdout.write(`alignflow ${ALIGNFLOW_VERSION} (${ENGINE_VERSION})\n`);
        const w = Math.max(...checks.map((c) => c.name.length));
        for (const c of checks) process.stdout.write(`${c.status.padEnd(4)}  ${c.name.padEnd(w)}  ${c.detail}\n`);
      }
      if (!ok) process.exitCode = 1;
    });
}
