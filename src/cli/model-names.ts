// Models by name, as datasets resolve by name: the newest model (or checkpoint) artifact imported
// or produced under that name. Light on purpose (no engine imports): `run` uses it to validate a spec.
import { and, desc, eq, inArray } from 'drizzle-orm';
import type { Db } from '../store/db.js';
import { artifacts } from '../store/schema.js';

export function modelIdByName(db: Db, name: string): string | undefined {
  return db
    .select({ id: artifacts.id })
    .from(artifacts)
    .where(and(eq(artifacts.name, name), inArray(artifacts.kind, ['model', 'checkpoint'])))
    .orderBy(desc(artifacts.createdAt), desc(artifacts.id))
    .get()?.id;
}
