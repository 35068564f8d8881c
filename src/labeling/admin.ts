// Batch administration beyond create/fill/close: pause and resume, the labelers a batch is
// assigned to, and the per-labeler label quota. The queue (queue.ts) enforces all three.
import { eq } from 'drizzle-orm';
import { inputError, notFound } from '../errors.js';
import { immediate, type Db } from '../store/db.js';
import { labelBatches, labelBatchMembers, users } from '../store/schema.js';
import { ConflictError } from './errors.js';
import type { Batch } from './batches.js';

/** Pauses (no new assignments; live leases may still be submitted) or resumes an open batch. */
export function setBatchPaused(db: Db, batchId: string, paused: boolean): Batch {
  return immediate(db, (tx) => {
    const b = tx.select().from(labelBatches).where(eq(labelBatches.id, batchId)).get();
    if (!b) throw notFound(`no label batch "${batchId}"`);
    if (b.status === 'closed') throw new ConflictError(`label batch "${b.name}" is closed; it cannot be ${paused ? 'paused' : 'resumed'}`);
    const status = paused ? 'paused' : 'open';
    tx.update(labelBatches).set({ status }).where(eq(labelBatches.id, batchId)).run();
    return { ...b, status };
  });
}

/** The ids of the labelers a batch is assigned to; empty: every labeler may work on it. */
export function batchLabelers(db: Db, batchId: string): string[] {
  return db.select({ u: labelBatchMembers.userId }).from(labelBatchMembers).where(eq(labelBatchMembers.batchId, batchId)).all().map((r) => r.u).sort();
}

/** User ids for names or ids; every one must be an active labeler or admin (viewers do not label). */
export function resolveLabelers(db: Db, who: string[]): string[] {
  const all = db.select().from(users).all();
  const issues: { field: string; reason: string }[] = [];
  const ids = new Set<string>();
  who.forEach((w, i) => {
    const u = all.find((x) => x.id === w || x.name === w);
    if (!u) issues.push({ field: `labelers[${i}]`, reason: `no user "${w}"` });
    else if (u.disabled) issues.push({ field: `labelers[${i}]`, reason: `user "${u.name}" is disabled` });
    else if (u.role === 'viewer') issues.push({ field: `labelers[${i}]`, reason: `user "${u.name}" is a viewer; viewers do not label` });
    else ids.add(u.id);
  });
  if (issues.length) throw inputError('invalid labelers', issues);
  return [...ids].sort();
}

/** Replaces a batch's labelers (user ids or names) in one transaction; empty opens it to everyone. */
export function setBatchLabelers(db: Db, batchId: string, who: string[]): string[] {
  const ids = resolveLabelers(db, who);
  immediate(db, (tx) => {
    const b = tx.select().from(labelBatches).where(eq(labelBatches.id, batchId)).get();
    if (!b) throw notFound(`no label batch "${batchId}"`);
    tx.delete(labelBatchMembers).where(eq(labelBatchMembers.batchId, batchId)).run();
    for (const userId of ids) tx.insert(labelBatchMembers).values({ batchId, userId }).run();
  });
  return ids;
}

/** Whether a user may take work from a batch: it has no labeler list, or they are on it. */
export function mayLabel(db: Db, batchId: string, userId: string): boolean {
  const rows = db.$client.prepare('SELECT user_id AS u FROM label_batch_members WHERE batch_id = ?').all(batchId) as { u: string }[];
  return rows.length === 0 || rows.some((r) => r.u === userId);
}
