// The one place stage and run states change. Every change is a compare-and-set inside an
// immediate transaction: the caller names the states it expects, and a stage that moved on in
// the meantime (cancelled from another process, claimed by another worker) is left alone.
import { and, eq, inArray } from 'drizzle-orm';
import type { Db } from '../store/db.js';
import { runs, stages, type StageState } from '../store/schema.js';
import { AlignflowError } from '../errors.js';

/**
 * Legal stage transitions.
 *   pending  → queued     deps done, no cached result          (scheduler)
 *   pending  → cached     an identical stage already succeeded (scheduler)
 *   pending  → cancelled  run cancelled
 *   pending  → failed     an input cannot be resolved (a dep lacks the named output)
 *   queued   → running    claimed by an executor
 *   queued   → cancelled
 *   queued   → pending    resume/reset before it ran
 *   running  → succeeded | failed | waiting | cancelled
 *   running  → queued     transient failure with attempts left, or worker shutdown (re-run later)
 *   running  → running    takeover: the holder's heartbeat went stale (crashed worker)
 *   waiting  → running    re-invoked after retryAfterMs
 *   waiting  → queued     reconcile / resume
 *   waiting  → cancelled
 *   failed   → pending    resume
 *   cancelled→ pending    resume
 *   succeeded, cached: final.
 */
export const STAGE_TRANSITIONS: Readonly<Record<StageState, readonly StageState[]>> = {
  pending: ['queued', 'cached', 'cancelled', 'failed'],
  queued: ['running', 'cancelled', 'pending'],
  running: ['succeeded', 'failed', 'waiting', 'cancelled', 'queued', 'running'],
  waiting: ['running', 'queued', 'cancelled'],
  failed: ['pending'],
  cancelled: ['pending'],
  succeeded: [],
  cached: [],
};

export type RunStatus = 'pending' | 'running' | 'waiting' | 'succeeded' | 'failed' | 'cancelled';

/** Legal run transitions (the run status is derived from its stages, see deriveRunStatus). */
export const RUN_TRANSITIONS: Readonly<Record<RunStatus, readonly RunStatus[]>> = {
  pending: ['running', 'waiting', 'succeeded', 'failed', 'cancelled'],
  running: ['waiting', 'succeeded', 'failed', 'cancelled'],
  waiting: ['running', 'succeeded', 'failed', 'cancelled'],
  failed: ['running', 'pending'], // resume
  cancelled: ['running', 'pending'], // resume
  succeeded: [],
};

export const ACTIVE_STAGE_STATES: readonly StageState[] = ['queued', 'running', 'waiting'];
export const DONE_STAGE_STATES: readonly StageState[] = ['succeeded', 'cached'];
export const TERMINAL_RUN: readonly RunStatus[] = ['succeeded', 'failed', 'cancelled'];

export function canMoveStage(from: StageState, to: StageState): boolean {
  return STAGE_TRANSITIONS[from].includes(to);
}

type StagePatch = Partial<Omit<typeof stages.$inferInsert, 'id' | 'runId' | 'state'>>;

/**
 * Moves a stage to `to` if its current state is one of `from` (and the move is legal).
 * Returns false, changing nothing, when the stage is elsewhere. Call inside immediate().
 */
export function moveStage(tx: Db, stageId: string, from: readonly StageState[], to: StageState, patch: StagePatch = {}): boolean {
  for (const f of from) if (!canMoveStage(f, to)) throw new AlignflowError('internal', `illegal stage transition ${f} → ${to}`);
  const res = tx.update(stages).set({ ...patch, state: to }).where(and(eq(stages.id, stageId), inArray(stages.state, [...from]))).run();
  return res.changes === 1;
}

/**
 * What a run's status is, given its stages' states and which pending stages can still progress
 * (all deps done or active). A failed stage does not stop independent branches: the run is
 * `failed` once nothing else can move.
 */
export function deriveRunStatus(st: { state: StageState; blocked: boolean }[]): RunStatus {
  if (st.every((s) => DONE_STAGE_STATES.includes(s.state))) return 'succeeded';
  if (st.some((s) => s.state === 'queued' || s.state === 'running')) return 'running';
  // Waiting (for labels) wins over stages that are pending behind it.
  if (st.some((s) => s.state === 'waiting')) return 'waiting';
  if (st.some((s) => s.state === 'pending' && !s.blocked)) return 'running'; // e.g. waiting for an identical in-flight stage
  if (st.some((s) => s.state === 'failed')) return 'failed';
  if (st.some((s) => s.state === 'cancelled')) return 'cancelled';
  return 'pending';
}

/** Sets a run's status if the transition is legal (no-op when unchanged). */
export function setRunStatus(tx: Db, runId: string, to: RunStatus, error?: string | null): void {
  const row = tx.select({ status: runs.status, startedAt: runs.startedAt }).from(runs).where(eq(runs.id, runId)).get();
  if (!row || row.status === to) return;
  if (!RUN_TRANSITIONS[row.status].includes(to)) return; // e.g. a cancelled run stays cancelled until resumed
  const now = Date.now();
  tx.update(runs)
    .set({
      status: to,
      ...(row.startedAt === null && to !== 'pending' ? { startedAt: now } : {}),
      finishedAt: TERMINAL_RUN.includes(to) ? now : null,
      ...(error !== undefined ? { error } : {}),
    })
    .where(eq(runs.id, runId))
    .run();
}
