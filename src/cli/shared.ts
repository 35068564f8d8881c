// What every command shares: opening the state, printing (--json), and turning errors into one
// clear sentence with the right exit code.
import fs from 'node:fs';
import { Command, CommanderError } from 'commander';
import { AlignflowError, exitCodeFor, formatIssue, inputError } from '../errors.js';
import { alignflowHome, databasePath } from '../config/paths.js';
import { stateFileReason } from '../config/input-paths.js';
import { openDb, type Db } from '../store/db.js';

let cachedDb: Db | undefined;

/** The database of $ALIGNFLOW_HOME, opened (and migrated) on first use. */
export function cliDb(): Db {
  cachedDb ??= openDb(databasePath(alignflowHome()));
  return cachedDb;
}

export function closeCliDb(): void {
  cachedDb?.$client.close();
  cachedDb = undefined;
}

/**
 * Refuses a file or directory a command-line flag names when it is alignflow's own state (the
 * database and its -wal/-shm files, the blobs, the scratch folder): opening the database with an
 * ordinary file handle and closing it drops this process's SQLite locks (issue 12, item 1). The
 * same rule as `datasets import`; specs are held to the stricter one (all of ALIGNFLOW_HOME).
 */
export function checkCliInput(file: string, flag: string): void {
  const refused = stateFileReason(file, alignflowHome());
  if (refused) throw inputError(`${flag}: ${refused}`);
}

/** A text file a flag names, read after checkCliInput. */
export function readCliInput(file: string, flag: string): string {
  checkCliInput(file, flag);
  return fs.readFileSync(file, 'utf8');
}

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

/** Prints rows as an aligned plain-text table. */
export function printTable(rows: Record<string, unknown>[], columns?: string[]): void {
  if (rows.length === 0) {
    process.stdout.write('(none)\n');
    return;
  }
  const cols = columns ?? Object.keys(rows[0]!);
  const cell = (v: unknown) => (v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v));
  const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (vals: string[]) => vals.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd();
  process.stdout.write(line(cols) + '\n');
  for (const r of rows) process.stdout.write(line(cols.map((c) => cell(r[c]))) + '\n');
}

export function isVerbose(argv: string[] = process.argv): boolean {
  return argv.includes('--verbose');
}

export async function runCli(program: Command, argv: string[]): Promise<void> {
  // `alignflow runs show RUN | head -1`: a reader that stops early is not an error. Output stops,
  // the command goes on (an `alignflow run` piped into head keeps driving its pipeline).
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') throw e;
    process.stdout.write = (() => true) as typeof process.stdout.write;
  });
  // Subcommands copy these settings only when created, so apply them to the whole tree here:
  // otherwise a subcommand's usage error calls process.exit(1) instead of exiting 2.
  const json = wantsJson(argv);
  const configure = (c: Command) => {
    c.exitOverride();
    // With --json a script reads errors too: commander's usage errors become JSON like ours.
    c.configureOutput({ outputError: (str, write) => write(json ? JSON.stringify({ error: { kind: 'usage', message: str.replace(/^error: /, '').trim() } }) + '\n' : str) });
    // Mark required options in --help (commander lists them like any other).
    for (const o of c.options) if (o.mandatory && o.description && !o.description.startsWith('(required)')) o.description = `(required) ${o.description}`;
    c.commands.forEach(configure);
  };
  configure(program);
  try {
    await program.parseAsync(argv);
    closeCliDb();
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end here with exit code 0
      process.exitCode = err.exitCode === 0 ? 0 : 2;
      return;
    }
    reportError(err);
    process.exitCode = exitCodeFor(err);
  }
}

/** True when the command line asks for JSON output (errors then go to stderr as one JSON object). */
export function wantsJson(argv: string[] = process.argv): boolean {
  const end = argv.indexOf('--');
  return (end < 0 ? argv : argv.slice(0, end)).includes('--json');
}

/** An error as JSON: {error: {kind, message, exitCode, issues?}}. */
export function errorJson(err: unknown): { error: { kind: string; message: string; exitCode: number; issues?: unknown[] } } {
  if (err instanceof AlignflowError) {
    return { error: { kind: err.kind, message: err.message, exitCode: exitCodeFor(err), ...(err.issues.length ? { issues: err.issues } : {}) } };
  }
  return { error: { kind: 'internal', message: err instanceof Error ? err.message : String(err), exitCode: exitCodeFor(err) } };
}

export function reportError(err: unknown): void {
  if (wantsJson()) {
    process.stderr.write(JSON.stringify(errorJson(err)) + '\n');
    if (isVerbose() && err instanceof Error && err.stack) process.stderr.write(err.stack + '\n');
    return;
  }
  if (err instanceof AlignflowError) {
    process.stderr.write(`error: ${err.message}\n`);
    const shown = err.issues.slice(0, 50);
    for (const i of shown) process.stderr.write(`  ${formatIssue(i)}\n`);
    if (err.issues.length > shown.length) process.stderr.write(`  … and ${err.issues.length - shown.length} more\n`);
  } else {
    const msg = err instanceof Error ? err.message : String(err);
    process.stderr.write(`error: ${msg}\n`);
  }
  if (isVerbose() && err instanceof Error && err.stack) process.stderr.write(err.stack + '\n');
}
