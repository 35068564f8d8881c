// One attempt at one stage, the same for both executors:
//   claim (CAS queued|waiting → running, or take over a running stage whose heartbeat is stale)
//   → heartbeat + cancel watch → handler (in a worker thread when heavy) → record the outcome.
// The heartbeat doubles as the cancellation channel: `runs cancel` (any process) flips the row
// to `cancelled`, the next heartbeat notices it no longer owns the stage and aborts ctx.signal.
import { eq } from 'drizzle-orm';
import { immediate, type Db } from '../store/db.js';
import { runEvents, runs, stageOutputs, stages } from '../store/schema.js';
import type { ArtifactStore } from '../store/types.js';
import type { Progress } from '../stages/contract.js';
import { getStage, loadStages } from '../stages/index.js';
import { moveStage } from './state.js';
import { progressOf } from './scheduler.js';
import { runHandler, type PlainOutcome } from './handler-run.js';
import { runHandlerInThread } from './thread.js';
import { trackLocal } from './local-aborts.js';
import { timing } from './timing.js';

export { timing };

export interface ExecDeps {
  db: Db;
  store: ArtifactStore;
  home: string;
}

export interface AttemptOptions {
  workerId: string;
  /** Worker shutdown (SIGTERM): the handler stops at its next step and the stage is re-queued. */
  shutdown?: AbortSignal;
  onProgress?: (p: Progress) => void;
  /** Attempts (claims) after which a retryable error fails the stage. Default 3. */
  maxAttempts?: number;
  /** Run heavy handlers in a worker thread (default true). */
  threads?: boolean;
}

export type AttemptResult =
  | { status: 'succeeded' }
  | { status: 'waiting'; retryAt: number }
  | { status: 'retry'; error: string; delayMs: number }
  | { status: 'failed'; error: string }
  | { status: 'cancelled' }
  | { status: 'requeued' } // worker shutdown: someone should run it again
  | { status: 'busy' } // another live worker holds it
  | { status: 'skipped'; state: string }; // nothing to do (finished, cancelled, not due)

/** Exponential backoff with jitter: ~1 s, 2 s, 4 s … capped at 60 s, each ±50%. */
export function backoffMs(attempt: number, baseMs = 1000): number {
  const d = Math.min(60_000, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(d * (0.5 + Math.random()));
}

const errorKindFor = (k: string): 'config' | 'input' | 'transient' | 'numeric' | 'cancelled' | 'internal' => {
  if (k === 'config' || k === 'usage') return 'config';
  if (k === 'input' || k === 'not_found') return 'input';
  if (k === 'transient' || k === 'numeric' || k === 'cancelled') return k;
  return 'internal';
};
const retryableKind = (k: string) => k === 'transient' || k === 'internal' || k === 'unknown';

export type Claim = { ok: true; kind: string; attempts: number; runId: string; name: string } | { ok: false; result: AttemptResult };

export function claim(db: Db, stageId: string, workerId: string, now = Date.now()): Claim {
  return immediate(db, (tx) => {
    const row = tx.select().from(stages).where(eq(stages.id, stageId)).get();
    if (!row) return { ok: false, result: { status: 'skipped', state: 'missing' } };
    const run = tx.select({ status: runs.status }).from(runs).where(eq(runs.id, row.runId)).get();
    if (run?.status === 'cancelled') return { ok: false, result: { status: 'skipped', state: 'cancelled' } };
    const p = progressOf(row);
    let from: 'queued' | 'waiting' | 'running';
    if (row.state === 'queued') from = 'queued';
    else if (row.state === 'waiting') {
      if ((p.retryAt ?? 0) > now) return { ok: false, result: { status: 'skipped', state: 'waiting' } };
      from = 'waiting';
    } else if (row.state === 'running') {
      const beat = p.heartbeatAt ?? row.startedAt ?? 0;
      if (now - beat <= timing.staleMs) return { ok: false, result: { status: 'busy' } };
      from = 'running';
      tx.insert(runEvents).values({ runId: row.runId, stageId, level: 'warn', message: `stage ${row.name}: ${row.worker ?? 'its worker'} stopped answering; ${workerId} takes over`, createdAt: now }).run();
    } else return { ok: false, result: { status: 'skipped', state: row.state } };
    const progress = { ...p, heartbeatAt: now, retryAt: undefined, message: p.done !== undefined ? p.message : undefined };
    if (!moveStage(tx, stageId, [from], 'running', { attempts: row.attempts + 1, worker: workerId, startedAt: row.startedAt ?? now, error: null, errorKind: null, progress: JSON.parse(JSON.stringify(progress)) })) {
      return { ok: false, result: { status: 'busy' } };
    }
    // A new attempt produces its outputs afresh.
    tx.delete(stageOutputs).where(eq(stageOutputs.stageId, stageId)).run();
    tx.insert(runEvents).values({ runId: row.runId, stageId, level: 'info', message: `stage ${row.name} started (attempt ${row.attempts + 1}, ${workerId})`, createdAt: now }).run();
    return { ok: true, kind: row.kind, attempts: row.attempts + 1, runId: row.runId, name: row.name };
  });
}

export async function runStageAttempt(deps: ExecDeps, stageId: string, opts: AttemptOptions): Promise<AttemptResult> {
  const { db } = deps;
  const c = claim(db, stageId, opts.workerId);
  if (!c.ok) return c.result;
  const abort = new AbortController();
  const untrack = trackLocal(stageId, abort);
  let lostOwnership = false;
  const onShutdown = () => abort.abort(new Error('worker shutting down'));
  if (opts.shutdown?.aborted) onShutdown();
  opts.shutdown?.addEventListener('abort', onShutdown, { once: true });
  const beatStmt = db.$client.prepare(`UPDATE stages SET progress = json_set(coalesce(progress, '{}'), '$.heartbeatAt', ?) WHERE id = ? AND state = 'running' AND worker = ?`);
  const beat = setInterval(() => {
    try {
      if (beatStmt.run(Date.now(), stageId, opts.workerId).changes === 0 && !abort.signal.aborted) {
        lostOwnership = true; // cancelled, or taken over by another worker
        abort.abort(new Error('stage cancelled'));
      }
    } catch {
      // a busy database: try again at the next beat
    }
  }, timing.heartbeatMs);

  let outcome: PlainOutcome;
  try {
    await loadStages([c.kind]).catch(() => undefined); // a missing handler is reported by runHandler
    const handler = getStage(c.kind);
    const hooks = { onProgress: opts.onProgress };
    if (handler?.heavy && opts.threads !== false) {
      outcome = await runHandlerInThread({ dbFile: db.$client.name, home: deps.home, stageId, kind: c.kind }, abort.signal, hooks);
    } else {
      outcome = await runHandler(db, deps.store, deps.home, stageId, c.kind, abort.signal, hooks);
    }
  } finally {
    clearInterval(beat);
    untrack();
    opts.shutdown?.removeEventListener('abort', onShutdown);
  }
  return record(db, stageId, c, opts, outcome, { lostOwnership, shutdown: !!opts.shutdown?.aborted });
}

export function record(
  db: Db,
  stageId: string,
  c: Claim & { ok: true },
  opts: AttemptOptions,
  outcome: PlainOutcome,
  why: { lostOwnership: boolean; shutdown: boolean },
): AttemptResult {
  const now = Date.now();
  return immediate(db, (tx) => {
    const row = tx.select().from(stages).where(eq(stages.id, stageId)).get();
    // Someone else owns the row now (user cancel, or a takeover): record nothing.
    if (!row || row.state !== 'running' || row.worker !== opts.workerId) {
      return row?.state === 'cancelled' ? { status: 'cancelled' } : { status: 'skipped', state: row?.state ?? 'missing' };
    }
    const log = (level: 'info' | 'warn' | 'error', message: string) =>
      tx.insert(runEvents).values({ runId: c.runId, stageId, level, message, createdAt: now }).run();
    const p = progressOf(row);
    if (outcome.status === 'done') {
      for (const [role, artifactId] of Object.entries(outcome.outputs)) {
        tx.insert(stageOutputs).values({ stageId, role, artifactId }).onConflictDoUpdate({ target: [stageOutputs.stageId, stageOutputs.role], set: { artifactId } }).run();
      }
      const progress = { ...p, heartbeatAt: undefined, main: outcome.main, outputs: outcome.outputs, ...(outcome.summary ? { summary: outcome.summary } : {}) };
      moveStage(tx, stageId, ['running'], 'succeeded', { finishedAt: now, progress: JSON.parse(JSON.stringify(progress)) });
      log('info', `stage ${c.name} succeeded: ${Object.entries(outcome.outputs).map(([r, id]) => `${r}=${id}`).join(', ')}`);
      return { status: 'succeeded' };
    }
    if (outcome.status === 'waiting') {
      const retryAt = now + outcome.retryAfterMs;
      const progress = { ...p, heartbeatAt: undefined, message: outcome.message, done: outcome.done, total: outcome.total, step: outcome.done, retryAt };
      // Waiting does not count as an attempt: it is not a failure.
      moveStage(tx, stageId, ['running'], 'waiting', { attempts: Math.max(0, row.attempts - 1), worker: null, progress: JSON.parse(JSON.stringify(progress)) });
      if (p.message !== outcome.message) log('info', `stage ${c.name}: ${outcome.message} (${outcome.done}/${outcome.total})`);
      return { status: 'waiting', retryAt };
    }
    if (why.shutdown) {
      moveStage(tx, stageId, ['running'], 'queued', { worker: null, queuedAt: now, attempts: Math.max(0, row.attempts - 1) });
      log('warn', `stage ${c.name}: interrupted by worker shutdown; re-queued (checkpoints kept)`);
      return { status: 'requeued' };
    }
    const kind = outcome.kind;
    const max = opts.maxAttempts ?? 3;
    if (retryableKind(kind) && row.attempts < max) {
      const delayMs = backoffMs(row.attempts);
      moveStage(tx, stageId, ['running'], 'queued', { worker: null, queuedAt: now, error: outcome.message, errorKind: errorKindFor(kind) });
      log('warn', `stage ${c.name}: attempt ${row.attempts} failed (${outcome.message}); retrying in ${delayMs} ms`);
      return { status: 'retry', error: outcome.message, delayMs };
    }
    if (kind === 'cancelled') {
      moveStage(tx, stageId, ['running'], 'cancelled', { worker: null, finishedAt: now, error: outcome.message, errorKind: 'cancelled' });
      log('warn', `stage ${c.name} cancelled`);
      return { status: 'cancelled' };
    }
    moveStage(tx, stageId, ['running'], 'failed', { worker: null, finishedAt: now, error: outcome.message, errorKind: errorKindFor(kind) });
    log('error', `stage ${c.name} failed (${kind}): ${outcome.message}`);
    if (process.env.ALIGNFLOW_DEBUG && outcome.stack) log('error', outcome.stack);
    return { status: 'failed', error: outcome.message };
  });
}
