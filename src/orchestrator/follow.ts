// Reading a run's state for people: snapshots for `runs show`, one-line stage summaries for the
// live display (`stage 12/100 loss 2.31 ETA 1m20s`, `waiting for labels (37/200)`).
import { eq } from 'drizzle-orm';
import type { Db } from '../store/db.js';
import { stages } from '../store/schema.js';
import { getRun, runStages } from './runs.js';
import { progressOf } from './scheduler.js';
import { finalMetrics } from './metrics.js';

export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '?';
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

type StageRow = ReturnType<typeof runStages>[number];

/** One line about a stage: state, step/total, loss, ETA, or what it waits for. */
export function stageLine(s: StageRow, now = Date.now()): string {
  const p = progressOf(s);
  const parts = [s.name.padEnd(12), s.state.padEnd(9)];
  if (s.state === 'waiting') parts.push(waitingText(p.message, p.done ?? p.step, p.total));
  else if (s.state === 'cached') parts.push(`from ${s.cachedFromStageId}`);
  else if (s.state === 'pending' && p.message) parts.push(p.message);
  else if ((s.state === 'running' || s.state === 'succeeded') && p.total) {
    parts.push(`${p.step ?? 0}/${p.total}`);
    const loss = p.metrics?.loss;
    if (typeof loss === 'number') parts.push(`loss ${loss.toFixed(4)}`);
    if (s.state === 'running' && s.startedAt && p.step) parts.push(`ETA ${formatDuration(((now - s.startedAt) / p.step) * (p.total - p.step))}`);
  }
  if (s.state === 'failed' && s.error) parts.push(s.error);
  return parts.join('  ').trimEnd();
}

/** The run's headline: status plus, when waiting, what for. */
export function runLine(db: Db, runId: string): string {
  const run = getRun(db, runId);
  const st = runStages(db, runId);
  const done = st.filter((s) => s.state === 'succeeded' || s.state === 'cached').length;
  const waiting = st.find((s) => s.state === 'waiting');
  const w = waiting ? `: ${waitingText(progressOf(waiting).message, progressOf(waiting).done, progressOf(waiting).total)}` : '';
  return `run ${run.id} (${run.name}) ${run.status}${w}, ${done}/${st.length} stages done`;
}

export function runSnapshot(db: Db, runId: string) {
  const run = getRun(db, runId);
  const st = runStages(db, runId).map((s) => {
    const p = progressOf(s);
    // A cached stage did no work of its own: its summary and metrics are its source stage's.
    const source = s.cachedFromStageId ? db.select().from(stages).where(eq(stages.id, s.cachedFromStageId)).get() : undefined;
    const summary = (source ? progressOf(source) : p).summary as Record<string, unknown> | undefined;
    const timed = source ?? s;
    const fm = finalMetrics(db, s);
    return {
      id: s.id,
      name: s.name,
      kind: s.kind,
      state: s.state,
      attempts: s.attempts,
      step: p.step ?? null,
      total: p.total ?? null,
      message: p.message ?? null,
      metrics: p.metrics ?? null,
      outputs: p.outputs ?? null,
      cacheKey: s.cacheKey,
      cachedFrom: s.cachedFromStageId,
      worker: s.worker,
      error: s.error,
      errorKind: s.errorKind,
      startedAt: s.startedAt,
      finishedAt: s.finishedAt,
      /** Wall time of the attempt that produced the outputs (the source stage's, when cached). */
      seconds: timed.startedAt && timed.finishedAt ? (timed.finishedAt - timed.startedAt) / 1000 : null,
      backend: typeof summary?.backend === 'string' ? summary.backend : null,
      finalMetrics: fm.final,
      evalMetrics: fm.eval,
      summary: summary ?? null,
    };
  });
  return { id: run.id, name: run.name, status: run.status, executor: run.executor, specPath: run.specPath, error: run.error, createdAt: run.createdAt, startedAt: run.startedAt, finishedAt: run.finishedAt, stages: st };
}

/** "waiting for labels (37/200)": handlers' messages usually carry the count already; add it only when not. */
export function waitingText(message: string | undefined, done: number | undefined, total: number | undefined): string {
  const msg = message ?? 'waiting';
  return /\(\d+\/\d+\)\s*$/.test(msg) ? msg : `${msg} (${done ?? 0}/${total ?? '?'})`;
}

/**
 * Progress lines for a log or a pipe (stdout not a TTY): one line per running stage every
 * `everyMs` (default 10 s) or each time it passes another `fraction` (default 10%) of its
 * steps, whichever comes first. Rates are measured from the first observation, so a resumed
 * stage's ETA counts only the steps this process saw. Tokens/s when the stage's metrics carry
 * a cumulative token count (`num_tokens`, TRL's name), steps/s otherwise.
 */
export function progressLines(opts: { everyMs?: number; fraction?: number } = {}) {
  const everyMs = opts.everyMs ?? 10_000;
  const fraction = opts.fraction ?? 0.1;
  const seen = new Map<string, { at: number; step: number; tokens?: number; lastAt: number; bucket: number }>();
  return (s: StageRow, now = Date.now()): string | undefined => {
    const p = progressOf(s);
    if (s.state !== 'running' || !p.total || p.step === undefined) return undefined;
    const step = p.step;
    const bucket = Math.floor(step / p.total / fraction);
    const tokens = typeof p.metrics?.num_tokens === 'number' ? p.metrics.num_tokens : undefined;
    const st = seen.get(s.id);
    if (!st) {
      seen.set(s.id, { at: now, step, ...(tokens !== undefined ? { tokens } : {}), lastAt: now, bucket });
      return undefined; // nothing to measure a rate from yet
    }
    if (now - st.lastAt < everyMs && bucket <= st.bucket) return undefined;
    st.lastAt = now;
    st.bucket = bucket;
    const secs = (now - st.at) / 1000;
    const stepRate = secs > 0 ? (step - st.step) / secs : 0;
    const parts = [`${s.name}: step ${step}/${p.total} (${Math.floor((100 * step) / p.total)}%)`];
    const loss = p.metrics?.loss;
    if (typeof loss === 'number') parts.push(`loss ${loss.toFixed(4)}`);
    if (tokens !== undefined && st.tokens !== undefined && secs > 0) parts.push(`${Math.round((tokens - st.tokens) / secs)} tokens/s`);
    else parts.push(`${stepRate.toFixed(2)} steps/s`);
    parts.push(`ETA ${stepRate > 0 ? formatDuration(((p.total - step) / stepRate) * 1000) : '?'}`);
    if (p.message) parts.push(p.message);
    return parts.join('  ');
  };
}
