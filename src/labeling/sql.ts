import type { Statement } from 'better-sqlite3';
import type { Db } from '../store/db.js';

const cache = new WeakMap<object, Map<string, Statement>>();

/** A prepared statement, cached per connection (the labeling hot path runs these on every request). */
export function stmt(db: Db, sql: string): Statement {
  let m = cache.get(db.$client);
  if (!m) cache.set(db.$client, (m = new Map()));
  let s = m.get(sql);
  if (!s) m.set(sql, (s = db.$client.prepare(sql)));
  return s;
}
