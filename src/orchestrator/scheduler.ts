// The scheduler: one synchronous pass over a run's stages inside an immediate transaction, so two
// processes advancing runs at once (two drivers, many BullMQ workers) serialize on SQLite and
// never both queue the same work.
//
// For each pending stage whose dependencies are done it resolves the input artifact ids and the
// cache key, then:
//   - a stage with the same key already succeeded (any run) → `cached`, reusing its outputs;
//   - a stage with the same key is queued/running/waiting elsewhere → stay pending and wait for
//     it (in-flight dedupe: submitting one spec twice computes each stage once);
//   - otherwise → `queued`.
// `--force NAME` skips both checks for that stage.
import { and, eq, inArray, ne } from 'drizzle-orm';
import { immediate, type Db } from '../store/db.js';
import { runEvents, runs, stageOutputs, stages, type StageState } from '../store/schema.js';
import type { StageSpec } from '../config/spec.js';
import { AlignflowError } from '../errors.js';
import { stageCacheKey, stageSeed } from './cache-key.js';
import { DONE_STAGE_STATES, deriveRunStatus, moveStage, setRunStatus } from './state.js';
import type { StoredSpec } from './runs.js';

type StageRow = typeof stages.$inferSelect;

/** What the stage's progress column keeps besides the live progress. */
export interface StageProgress {
  step?: number;
  total?: number;
  message?: string;
  metrics?: Record<string, number>;
  /** Main output role and all outputs, set on success (and copied when cached). */
  main?: string;
  outputs?: Record<string, string>;
  /** For a waiting stage: when to ask the handler again, and how far it is. */
  retryAt?: number;
  done?: number;
  heartbeatAt?: number;
  [k: string]: unknown;
}

export function progressOf(row: { progress: unknown }): StageProgress {
  return (row.progress ?? {}) as StageProgress;
}

/** Outputs of a finished stage: role → artifact id. */
export function stageOutputMap(tx: Db, stageId: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const r of tx.select().from(stageOutputs).where(eq(stageOutputs.stageId, stageId)).all()) out[r.role] = r.artifactId;
  return out;
}

/** Input artifact ids of a stage whose dependencies are done. */
export function resolveInputs(tx: Db, spec: StoredSpec, s: StageSpec, byName: Map<string, StageRow>): Record<string, string> {
  const ids: Record<string, string> = {};
  for (const [role, ref] of Object.entries(s.inputs)) {
    if (ref.type === 'model') {
      if (!spec.model) throw new AlignflowError('input', `stage ${s.name}: input "${role}" names the base model, but the run has none`);
      ids[role] = spec.model.artifact;
    } else if (ref.type === 'dataset') {
      const d = spec.datasets[ref.name];
      if (!d) throw new AlignflowError('input', `stage ${s.name}: no dataset "${ref.name}"`);
      ids[role] = d.artifact;
    } else {
      const dep = byName.get(ref.stage);
      if (!dep) throw new AlignflowError('input', `stage ${s.name}: no stage "${ref.stage}"`);
      const outs = stageOutputMap(tx, dep.id);
      const want = ref.role ?? progressOf(dep).main ?? Object.keys(outs)[0];
      const id = want !== undefined ? outs[want] : undefined;
      if (!id) {
        throw new AlignflowError('input', `stage ${s.name}: stage ${ref.stage} has no output "${want ?? '(main)'}" (it has: ${Object.keys(outs).join(', ') || 'none'})`);
      }
      ids[role] = id;
    }
  }
  return ids;
}

export interface AdvanceResult {
  status: string;
  /** Stages moved to `queued` by this pass. */
  queued: string[];
  /** Stages of this run that are queued (new or not). */
  runnable: StageRow[];
}

export function advanceRun(db: Db, runId: string): AdvanceResult {
  return immediate(db, (tx) => advanceIn(tx, runId));
}

function advanceIn(tx: Db, runId: string): AdvanceResult {
  const run = tx.select().from(runs).where(eq(runs.id, runId)).get();
  if (!run) throw new AlignflowError('not_found', `no run with id ${runId}`);
  const spec = run.spec as StoredSpec;
  const rows = tx.select().from(stages).where(eq(stages.runId, runId)).all();
  const byName = new Map(rows.map((r) => [r.name, r]));
  const queued: string[] = [];
  const now = Date.now();
  const log = (stageId: string | null, message: string, level: 'info' | 'warn' | 'error' = 'info') =>
    tx.insert(runEvents).values({ runId, stageId, level, message, createdAt: Date.now() }).run();

  if (run.status !== 'cancelled') {
    for (const s of spec.stages) {
      const row = byName.get(s.name);
      if (!row || row.state !== 'pending') continue;
      const deps = row.dependsOn.map((d) => byName.get(d)!);
      if (!deps.every((d) => DONE_STAGE_STATES.includes(d.state))) continue;
      let inputs: Record<string, string>;
      try {
        inputs = resolveInputs(tx, spec, s, byName);
      } catch (err) {
        const msg = err instanceof Error ? err.message : String(err);
        moveStage(tx, row.id, ['pending'], 'failed', { error: msg, errorKind: 'input', finishedAt: now });
        row.state = 'failed';
        log(row.id, msg, 'error');
        continue;
      }
      const key = stageCacheKey(row.kind, row.config, inputs, stageSeed(spec.seed, row.name));
      const forced = spec.options.force.includes(s.name) && row.attempts === 0;
      if (!forced) {
        const hit = tx
          .select()
          .from(stages)
          .where(and(eq(stages.cacheKey, key), inArray(stages.state, ['succeeded', 'cached']), ne(stages.id, row.id)))
          .limit(1)
          .get();
        if (hit) {
          const source = hit.cachedFromStageId ?? hit.id;
          const outs = stageOutputMap(tx, hit.id);
          for (const [role, artifactId] of Object.entries(outs)) {
            tx.insert(stageOutputs).values({ stageId: row.id, role, artifactId }).onConflictDoUpdate({ target: [stageOutputs.stageId, stageOutputs.role], set: { artifactId } }).run();
          }
          const p = progressOf(hit);
          moveStage(tx, row.id, ['pending'], 'cached', {
            cacheKey: key,
            cachedFromStageId: source,
            finishedAt: now,
            progress: { main: p.main, outputs: outs, message: `cached (from ${source})` },
          });
          row.state = 'cached';
          log(row.id, `stage ${s.name}: cached, reusing stage ${source}`);
          continue;
        }
        const inflight = tx
          .select()
          .from(stages)
          .where(and(eq(stages.cacheKey, key), inArray(stages.state, ['queued', 'running', 'waiting']), ne(stages.id, row.id)))
          .limit(1)
          .get();
        if (inflight) {
          const message = `waiting for identical stage ${inflight.id}`;
          if (row.cacheKey !== key || progressOf(row).message !== message) {
            tx.update(stages).set({ cacheKey: key, progress: { message } }).where(eq(stages.id, row.id)).run();
            log(row.id, `stage ${s.name}: an identical stage (${inflight.id}) is in flight; waiting for it`);
          }
          continue;
        }
      }
      moveStage(tx, row.id, ['pending'], 'queued', { cacheKey: key, queuedAt: now, progress: forced ? { message: 'forced' } : null });
      row.state = 'queued';
      queued.push(row.id);
    }
  }

  // Run status from the stages. A pending stage is blocked when a dependency can no longer finish.
  const state = (name: string) => byName.get(name)?.state as StageState;
  const blocked = (r: StageRow, seen = new Set<string>()): boolean =>
    r.dependsOn.some((d) => {
      const st = state(d);
      if (st === 'failed' || st === 'cancelled') return true;
      if (st !== 'pending' || seen.has(d)) return false;
      seen.add(d);
      return blocked(byName.get(d)!, seen);
    });
  const status = deriveRunStatus(rows.map((r) => ({ state: r.state, blocked: r.state === 'pending' && blocked(r) })));
  const failed = rows.filter((r) => r.state === 'failed').map((r) => `${r.name}: ${r.error ?? 'failed'}`);
  if (status !== run.status && run.status !== 'cancelled') {
    setRunStatus(tx, runId, status, status === 'failed' ? failed.join('; ') : undefined);
    if (status === 'succeeded' || status === 'failed') log(null, `run ${status}`, status === 'failed' ? 'error' : 'info');
  }
  return { status: run.status === 'cancelled' ? 'cancelled' : status, queued, runnable: rows.filter((r) => r.state === 'queued') };
}

/** Runs that may need a scheduling pass: anything not finished. */
export function activeRunIds(db: Db): string[] {
  return db.select({ id: runs.id }).from(runs).where(inArray(runs.status, ['pending', 'running', 'waiting'])).all().map((r) => r.id);
}
