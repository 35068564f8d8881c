// The inline executor: drives one run in this process. Ready stages run in dependency order (up
// to `concurrency` at once); heavy handlers go to a worker thread, so the caller's event loop
// stays free. All state lives in SQLite, so a second driver of the same run (or a crash and a
// later `runs drive`) is harmless: claims are compare-and-set and stale stages are taken over.
import { eq } from 'drizzle-orm';
import type { Progress } from '../../stages/contract.js';
import { runs, stages } from '../../store/schema.js';
import { advanceRun, progressOf } from '../scheduler.js';
import { runStageAttempt, timing, type ExecDeps } from '../execute.js';
import { TERMINAL_RUN, type RunStatus } from '../state.js';

export interface DriveOptions {
  workerId?: string;
  concurrency?: number;
  /** Stop driving (e.g. Ctrl-C): running stages are interrupted and re-queued, not cancelled. */
  signal?: AbortSignal;
  onProgress?: (stageName: string, p: Progress) => void;
  pollMs?: number;
  maxAttempts?: number;
  threads?: boolean;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

/** Runs `runId` until it succeeds, fails, is cancelled, or `signal` aborts. Returns its status. */
export async function driveRun(deps: ExecDeps, runId: string, opts: DriveOptions = {}): Promise<RunStatus> {
  const { db } = deps;
  const workerId = opts.workerId ?? `inline-${process.pid}`;
  const concurrency = Math.max(1, opts.concurrency ?? 1);
  const pollMs = opts.pollMs ?? 200;
  const active = new Map<string, Promise<void>>();
  const notBefore = new Map<string, number>(); // retry backoff per stage

  for (;;) {
    advanceRun(db, runId);
    const runRow = db.select({ status: runs.status }).from(runs).where(eq(runs.id, runId)).get()!;
    const status = runRow.status as RunStatus;
    if (active.size === 0 && (TERMINAL_RUN.includes(status) || opts.signal?.aborted)) return status;

    const now = Date.now();
    let nextWake = now + pollMs;
    if (!opts.signal?.aborted && status !== 'cancelled') {
      const rows = db.select().from(stages).where(eq(stages.runId, runId)).all();
      for (const r of rows) {
        if (active.size >= concurrency) break;
        if (active.has(r.id)) continue;
        const p = progressOf(r);
        let due = false;
        if (r.state === 'queued') due = (notBefore.get(r.id) ?? 0) <= now;
        else if (r.state === 'waiting') due = (p.retryAt ?? 0) <= now;
        else if (r.state === 'running') due = now - (p.heartbeatAt ?? r.startedAt ?? 0) > timing.staleMs; // its driver died
        if (r.state === 'waiting' && !due) nextWake = Math.min(nextWake, p.retryAt ?? nextWake);
        if (!due) continue;
        const job = runStageAttempt(deps, r.id, {
          workerId,
          ...(opts.signal ? { shutdown: opts.signal } : {}),
          onProgress: (pr) => opts.onProgress?.(r.name, pr),
          ...(opts.maxAttempts !== undefined ? { maxAttempts: opts.maxAttempts } : {}),
          ...(opts.threads !== undefined ? { threads: opts.threads } : {}),
        })
          .then((res) => {
            if (res.status === 'retry') notBefore.set(r.id, Date.now() + res.delayMs);
          })
          .catch(() => undefined)
          .finally(() => active.delete(r.id));
        active.set(r.id, job);
      }
    }
    // Wake on the first finished stage, the next due time, or abort.
    const wait = Math.max(5, nextWake - Date.now());
    await Promise.race(opts.signal?.aborted ? [...active.values()] : [sleep(wait, opts.signal), ...active.values()]);
  }
}
