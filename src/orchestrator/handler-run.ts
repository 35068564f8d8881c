// Runs one handler attempt to its outcome, in this thread: build the context, call the handler,
// reduce the outcome to plain data (artifact ids), clean up. Shared by the in-process path and the
// worker-thread entry, so both behave the same.
import type { Db } from '../store/db.js';
import type { ArtifactStore } from '../store/types.js';
import { loadStages, requireStage } from '../stages/index.js';
import { AlignflowError, type ErrorKind } from '../errors.js';
import { buildContext, type BuiltContext, type ContextHooks } from './context.js';
import type { StageKind } from '../stages/contract.js';

export type PlainOutcome =
  | { status: 'done'; outputs: Record<string, string>; main: string; summary?: Record<string, unknown> }
  | { status: 'waiting'; message: string; done: number; total: number; retryAfterMs: number }
  | { status: 'error'; kind: ErrorKind | 'unknown'; message: string; stack?: string };

export async function runHandler(db: Db, store: ArtifactStore, home: string, stageId: string, kind: StageKind, signal: AbortSignal, hooks: ContextHooks): Promise<PlainOutcome> {
  return runHandlerWith(kind, signal, () => buildContext(db, store, home, stageId, signal, hooks));
}

/** runHandler over any context builder (a remote worker's builds its context from the coordinator's job). */
export async function runHandlerWith(kind: StageKind, signal: AbortSignal, build: () => Promise<BuiltContext>): Promise<PlainOutcome> {
  let close: (() => Promise<void>) | undefined;
  try {
    await loadStages([kind]);
    const handler = requireStage(kind);
    const built = await build();
    close = built.close;
    const out = await handler.run(built.ctx);
    if (out.status === 'waiting') {
      return { status: 'waiting', message: out.message, done: out.done, total: out.total, retryAfterMs: Math.max(50, out.retryAfterMs) };
    }
    const roles = Object.keys(out.outputs);
    if (roles.length === 0) throw new AlignflowError('internal', `stage handler ${kind} finished without outputs`);
    const outputs: Record<string, string> = {};
    for (const r of roles) outputs[r] = out.outputs[r]!.id;
    const backend = tensorBackendInUse();
    const summary = out.summary || backend ? { ...(backend ? { backend } : {}), ...(out.summary ?? {}) } : undefined;
    return { status: 'done', outputs, main: roles[0]!, ...(summary ? { summary } : {}) };
  } catch (err) {
    if (signal.aborted && !(err instanceof AlignflowError && err.kind !== 'cancelled')) {
      return { status: 'error', kind: 'cancelled', message: 'stopped: the stage was cancelled or its worker is shutting down' };
    }
    return toPlainError(err);
  } finally {
    await close?.().catch(() => undefined);
  }
}

export function toPlainError(err: unknown): PlainOutcome & { status: 'error' } {
  if (err instanceof AlignflowError) return { status: 'error', kind: err.kind, message: err.message, ...(err.stack ? { stack: err.stack } : {}) };
  const e = err instanceof Error ? err : new Error(String(err));
  return { status: 'error', kind: 'unknown', message: e.message, ...(e.stack ? { stack: e.stack } : {}) };
}

/**
 * The TensorFlow.js backend this thread computed on, for the stage summary (`runs show --json`),
 * or undefined when the handler never loaded tfjs. Read from the engine tfjs-core keeps on the
 * global object, so a light handler does not pay seconds to import tfjs just to answer "none".
 */
function tensorBackendInUse(): string | undefined {
  const engine = (globalThis as { _tfengine?: { backendName?: string | null } })._tfengine;
  return engine?.backendName ?? undefined;
}
