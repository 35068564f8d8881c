import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { drizzle, type BetterSQLite3Database } from 'drizzle-orm/better-sqlite3';
import { migrate } from 'drizzle-orm/better-sqlite3/migrator';
import * as schema from './schema.js';

export type Db = BetterSQLite3Database<typeof schema> & { $client: Database.Database };

/** The committed drizzle-kit migrations: ../../drizzle from both src/store and dist/store. */
export const migrationsFolder = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../drizzle');

export interface OpenOptions {
  /** Skip migrations (only `doctor` uses this, to report the state without changing it). */
  migrate?: boolean;
}

/**
 * Opens (creating if needed) the SQLite database at `file` with WAL, a busy timeout and foreign
 * keys, and applies pending migrations. Read-then-write work must go through `immediate()`:
 * measured here, deferred transactions hit SQLITE_BUSY under concurrent writers even with a timeout.
 */
export function openDb(file: string, opts: OpenOptions = {}): Db {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const sqlite = new Database(file);
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('busy_timeout = 10000');
  sqlite.pragma('foreign_keys = ON');
  sqlite.pragma('synchronous = NORMAL');
  const db = drizzle(sqlite, { schema }) as Db;
  if (opts.migrate !== false) migrate(db, { migrationsFolder });
  return db;
}

/** Runs `fn` in a BEGIN IMMEDIATE transaction. `fn` must be synchronous (better-sqlite3). */
export function immediate<T>(db: Db, fn: (tx: Db) => T): T {
  return db.transaction((tx) => fn(tx as unknown as Db), { behavior: 'immediate' });
}
