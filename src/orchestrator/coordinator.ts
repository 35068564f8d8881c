// The coordinator's side of remote workers: what `alignflow serve` does, over its own SQLite
// database, for a worker on another host (the HTTP layer is src/server/routes/coordinator.ts).
// The state changes are the very ones a local worker makes (claim, heartbeat, record in
// ./execute.ts; progress, metrics, checkpoints in ./context.ts), so a stage cannot tell where it ran.
//
// Least privilege: a worker token reads only what a stage it currently holds needs: that stage's
// inputs, its checkpoints and outputs (and the content-keyed reference log-prob caches).
import { and, eq, inArray } from 'drizzle-orm';
import type { Db } from '../store/db.js';
import { artifactFiles, artifacts, checkpoints, stages } from '../store/schema.js';
import { progressOf } from './scheduler.js';
import { claim, record, type AttemptResult } from './execute.js';
import { stageJob, type StageJob } from './context.js';
import type { PlainOutcome } from './handler-run.js';

/** The worker id the coordinator records: the token's user name, then the id the worker gave. */
export const workerIdOf = (userName: string, given: string) => `${userName}/${given}`;

/** Kinds of derived, content-keyed caches any worker holding a stage may look up and read. */
export const SHARED_CACHE_KINDS = ['ref-logprobs'] as const;

/** Stages of this user's workers that are running now. */
function heldStageIds(db: Db, userName: string): string[] {
  const prefix = `${userName}/`;
  return db
    .select({ id: stages.id, worker: stages.worker })
    .from(stages)
    .where(eq(stages.state, 'running'))
    .all()
    .filter((r) => r.worker?.startsWith(prefix))
    .map((r) => r.id);
}

/** True when one of this user's workers currently holds a running stage. */
export function holdsAnyStage(db: Db, userName: string): boolean {
  return heldStageIds(db, userName).length > 0;
}

/** Artifact ids this user's workers may read now. */
export function readableArtifactIds(db: Db, userName: string): Set<string> {
  const ids = new Set<string>();
  const held = heldStageIds(db, userName);
  for (const stageId of held) {
    try {
      for (const id of Object.values(stageJob(db, stageId).inputIds)) ids.add(id);
    } catch {
      // a stage whose inputs no longer resolve reads nothing
    }
  }
  if (held.length > 0) {
    for (const c of db.select({ id: checkpoints.artifactId }).from(checkpoints).where(inArray(checkpoints.stageId, held)).all()) ids.add(c.id);
    for (const a of db.select({ id: artifacts.id }).from(artifacts).where(inArray(artifacts.producerStageId, held)).all()) ids.add(a.id);
  }
  return ids;
}

export function mayReadArtifact(db: Db, userName: string, artifactId: string): boolean {
  const row = db.select({ kind: artifacts.kind }).from(artifacts).where(eq(artifacts.id, artifactId)).get();
  if (!row) return false;
  if ((SHARED_CACHE_KINDS as readonly string[]).includes(row.kind)) return holdsAnyStage(db, userName);
  return readableArtifactIds(db, userName).has(artifactId);
}

export function mayReadBlob(db: Db, userName: string, sha256: string): boolean {
  const owners = db.select({ id: artifactFiles.artifactId }).from(artifactFiles).where(eq(artifactFiles.sha256, sha256)).all();
  if (owners.length === 0) return false;
  const readable = readableArtifactIds(db, userName);
  if (owners.some((o) => readable.has(o.id))) return true;
  const kinds = db.select({ kind: artifacts.kind }).from(artifacts).where(inArray(artifacts.id, owners.map((o) => o.id))).all();
  return kinds.some((k) => (SHARED_CACHE_KINDS as readonly string[]).includes(k.kind)) && holdsAnyStage(db, userName);
}

/** The stage row when `worker` holds it (running, its worker column), else undefined. */
export function heldStage(db: Db, stageId: string, worker: string) {
  const row = db.select().from(stages).where(and(eq(stages.id, stageId), eq(stages.state, 'running'))).get();
  return row && row.worker === worker ? row : undefined;
}

export type RemoteClaim = { ok: true; job: StageJob } | { ok: false; result: AttemptResult };

/** Claims the stage for `worker` (the same compare-and-set as a local worker's claim) and describes its job. */
export function claimForWorker(db: Db, stageId: string, worker: string): RemoteClaim {
  const c = claim(db, stageId, worker);
  if (!c.ok) return c;
  return { ok: true, job: stageJob(db, stageId) };
}

/** Beats the stage's heartbeat; false when `worker` no longer holds it (cancelled, or taken over): the worker must stop. */
export function beat(db: Db, stageId: string, worker: string, now = Date.now()): boolean {
  return db.$client.prepare(`UPDATE stages SET progress = json_set(coalesce(progress, '{}'), '$.heartbeatAt', ?) WHERE id = ? AND state = 'running' AND worker = ?`).run(now, stageId, worker).changes === 1;
}

/** Records a remote attempt's outcome exactly as a local worker records its own. */
export function completeForWorker(db: Db, stageId: string, worker: string, outcome: PlainOutcome, shutdown: boolean, maxAttempts?: number): AttemptResult {
  const row = db.select().from(stages).where(eq(stages.id, stageId)).get();
  if (!row) return { status: 'skipped', state: 'missing' };
  const c = { ok: true as const, kind: row.kind, attempts: row.attempts, runId: row.runId, name: row.name };
  return record(db, stageId, c, { workerId: worker, ...(maxAttempts !== undefined ? { maxAttempts } : {}) }, outcome, { lostOwnership: false, shutdown });
}

/** When the stage's heartbeat was last beaten (for tests and status). */
export function heartbeatAt(db: Db, stageId: string): number | undefined {
  const row = db.select().from(stages).where(eq(stages.id, stageId)).get();
  return row ? progressOf(row).heartbeatAt : undefined;
}

/**
 * The labeling API's scope (src/server/routes/coordinator-labeling.ts): 'forbidden' unless one of
 * this user's workers holds the running stage now; 'stale' when another worker process of the
 * same user holds it (this attempt was taken over: its writes must not land); else the row.
 */
export function labelingHolder(db: Db, stageId: string, userName: string, worker: string): { row: typeof stages.$inferSelect } | 'forbidden' | 'stale' {
  const row = db.select().from(stages).where(and(eq(stages.id, stageId), eq(stages.state, 'running'))).get();
  if (!row || !row.worker?.startsWith(`${userName}/`)) return 'forbidden';
  return row.worker === worker ? { row } : 'stale';
}

/** True when the label batch was made by this stage (ensureBatch names its stage). */
export function isBatchOfStage(db: Db, batchId: string, stageId: string): boolean {
  return !!db.$client.prepare('SELECT 1 FROM label_batches WHERE id = ? AND stage_id = ?').get(batchId, stageId);
}

/** True when the response is an answer of a pair in one of this stage's label batches (what a labeler scores). */
export function isResponseOfStage(db: Db, responseId: string, stageId: string): boolean {
  return !!db.$client
    .prepare(
      `SELECT 1 FROM pairs p JOIN label_batches b ON b.id = p.batch_id
       WHERE b.stage_id = @stageId AND (p.response_a_id = @responseId OR p.response_b_id = @responseId OR EXISTS (SELECT 1 FROM json_each(coalesce(p.response_ids, '[]')) WHERE value = @responseId)) LIMIT 1`,
    )
    .get({ stageId, responseId });
}
