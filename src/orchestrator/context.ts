// Builds the StageContext a handler sees. The same factory runs in the executor's process (light
// handlers) and inside a worker thread (heavy handlers, which open their own DB connection), so a
// handler cannot tell where it runs.
import fs from 'node:fs';
import path from 'node:path';
import { and, desc, eq } from 'drizzle-orm';
import { immediate, type Db } from '../store/db.js';
import { checkpoints, metrics, runEvents, runs, stages } from '../store/schema.js';
import type { ArtifactStore, PutArtifact } from '../store/types.js';
import type { CheckpointRef, Logger, Progress, RunHistory, StageContext } from '../stages/contract.js';
import { createLabelingPort } from '../labeling/port.js';
import { tmpDir } from '../config/paths.js';
import { AlignflowError } from '../errors.js';
import { TensorboardWriter, tensorboardDir } from '../tracking/tensorboard.js';
import { stageSeed } from './cache-key.js';
import { resolveInputs, type StageProgress } from './scheduler.js';
import type { StoredSpec } from './runs.js';

export const DEFAULT_KEEP_CHECKPOINTS = 3;
const PROGRESS_WRITE_MS = 250;

export interface ContextHooks {
  onProgress?: (p: Progress) => void;
  onLog?: (level: string, msg: string) => void;
}

export interface BuiltContext {
  ctx: StageContext<unknown>;
  /** Writes the last progress (throttled writes may have skipped it) and removes workDir. */
  close(): Promise<void>;
}

export async function buildContext(db: Db, store: ArtifactStore, home: string, stageId: string, signal: AbortSignal, hooks: ContextHooks = {}): Promise<BuiltContext> {
  const row = db.select().from(stages).where(eq(stages.id, stageId)).get();
  if (!row) throw new AlignflowError('not_found', `no stage ${stageId}`);
  const run = db.select().from(runs).where(eq(runs.id, row.runId)).get()!;
  const spec = run.spec as StoredSpec;
  const stageSpec = spec.stages.find((s) => s.name === row.name);
  if (!stageSpec) throw new AlignflowError('internal', `stage ${row.name} is not in the run's spec`);
  const siblings = new Map(db.select().from(stages).where(eq(stages.runId, row.runId)).all().map((r) => [r.name, r]));
  const inputIds = resolveInputs(db, spec, stageSpec, siblings);
  const inputs: StageContext['inputs'] = {};
  for (const [role, id] of Object.entries(inputIds)) inputs[role] = await store.get(id);

  const workDir = path.join(tmpDir(home), `stage-${stageId}-${row.attempts}-${process.pid}`);
  fs.mkdirSync(workDir, { recursive: true });
  const config = row.config as Record<string, unknown> | null;
  const keep = typeof config?.keep_checkpoints === 'number' ? config.keep_checkpoints : DEFAULT_KEEP_CHECKPOINTS;

  const event = (level: 'debug' | 'info' | 'warn' | 'error', message: string) => {
    db.insert(runEvents).values({ runId: row.runId, stageId, level, message, createdAt: Date.now() }).run();
    hooks.onLog?.(level, message);
  };
  const log: Logger = {
    debug: (m) => (process.env.ALIGNFLOW_DEBUG ? event('debug', m) : undefined),
    info: (m) => event('info', m),
    warn: (m) => event('warn', m),
    error: (m) => event('error', m),
  };

  let lastWrite = 0;
  let pending: Progress | undefined;
  const writeProgress = (p: Progress) => {
    // json_patch keeps the heartbeat and other fields the executor keeps in the same column.
    const patch: StageProgress = { step: p.step, total: p.total, message: p.message ?? null as unknown as undefined, metrics: p.metrics ?? {} };
    db.$client.prepare(`UPDATE stages SET progress = json_patch(coalesce(progress, '{}'), ?) WHERE id = ?`).run(JSON.stringify(patch), stageId);
    lastWrite = Date.now();
    pending = undefined;
  };

  // Every metric also goes to a TensorBoard event file; a failure to write it (disk full, a
  // read-only home) is reported once and never fails the stage.
  const tensorboard = new TensorboardWriter(tensorboardDir(home, row.runId, row.name));
  let tensorboardFailed = false;
  const toTensorboard = (step: number, values: Record<string, number>) => {
    if (tensorboardFailed) return;
    try {
      tensorboard.scalars(step, values);
    } catch (e) {
      tensorboardFailed = true;
      log.warn(`TensorBoard event file ${tensorboard.file} not written: ${(e as Error).message}`);
    }
  };

  async function latestCheckpoint(): Promise<CheckpointRef | undefined> {
    const c = db.select().from(checkpoints).where(eq(checkpoints.stageId, stageId)).orderBy(desc(checkpoints.step)).limit(1).get();
    if (!c) return undefined;
    return { step: c.step, artifact: await store.get(c.artifactId) };
  }

  async function saveCheckpoint(step: number, artifact: PutArtifact, evalLoss?: number): Promise<CheckpointRef> {
    const m = await store.put({ ...artifact, kind: 'checkpoint', metadata: { ...(artifact.metadata ?? {}), step } });
    immediate(db, (tx) => {
      tx.insert(checkpoints)
        .values({ stageId, step, artifactId: m.id, evalLoss: evalLoss ?? null, createdAt: Date.now() })
        .onConflictDoUpdate({ target: [checkpoints.stageId, checkpoints.step], set: { artifactId: m.id, evalLoss: evalLoss ?? null } })
        .run();
      // Keep the newest `keep` plus the best by eval loss; the artifacts stay until gc.
      const all = tx.select().from(checkpoints).where(eq(checkpoints.stageId, stageId)).orderBy(desc(checkpoints.step)).all();
      const best = all.filter((c) => c.evalLoss !== null).sort((a, b) => a.evalLoss! - b.evalLoss!)[0];
      for (const c of all.slice(Math.max(1, keep))) {
        if (best && c.step === best.step) continue;
        tx.delete(checkpoints).where(and(eq(checkpoints.stageId, stageId), eq(checkpoints.step, c.step))).run();
      }
    });
    return { step, artifact: m };
  }

  const ctx: StageContext<unknown> = {
    runId: row.runId,
    stageId,
    stageName: row.name,
    kind: row.kind,
    config: row.config,
    inputs,
    store,
    workDir,
    seed: stageSeed(spec.seed, row.name),
    latestCheckpoint,
    saveCheckpoint,
    progress(p) {
      hooks.onProgress?.(p);
      if (Date.now() - lastWrite >= PROGRESS_WRITE_MS || p.step >= p.total) writeProgress(p);
      else pending = p;
    },
    metrics(step, values) {
      const now = Date.now();
      immediate(db, (tx) => {
        for (const [name, value] of Object.entries(values)) {
          if (!Number.isFinite(value)) continue; // NaN guards are the handler's job; SQLite REAL cannot hold NaN faithfully
          // Upsert by (stage, name, step): a stage resumed from a checkpoint (takeover after a
          // crash, a resumed run) logs again the steps it ran after that checkpoint, and those
          // points replace the first attempt's instead of doubling the curve.
          tx.delete(metrics).where(and(eq(metrics.stageId, stageId), eq(metrics.name, name), eq(metrics.step, step))).run();
          tx.insert(metrics).values({ runId: row.runId, stageId, step, name, value, createdAt: now }).run();
        }
      });
      toTensorboard(step, values);
    },
    log,
    signal,
    labeling: createLabelingPort(db),
    history: () => runHistory(db, row.runId, stageId),
  };
  return {
    ctx,
    async close() {
      if (pending) writeProgress(pending);
      tensorboard.close();
      await fs.promises.rm(workDir, { recursive: true, force: true });
    },
  };
}

export type { RunHistory };

/** Metrics of the run's other stages as curves (ordered by step), their configs and warnings. */
export function runHistory(db: Db, runId: string, exceptStageId?: string): Required<RunHistory> {
  const rows = db.select().from(stages).where(eq(stages.runId, runId)).all().filter((r) => r.id !== exceptStageId);
  const curves: RunHistory['curves'] = [];
  const stageConfigs: Record<string, unknown> = {};
  const warnings: Required<RunHistory>['warnings'] = [];
  for (const r of rows) {
    stageConfigs[r.name] = r.config;
    // A cached stage's curves are those of the stage it reused.
    const source = r.cachedFromStageId ?? r.id;
    const byMetric = new Map<string, [number, number][]>();
    for (const m of db.select().from(metrics).where(eq(metrics.stageId, source)).orderBy(metrics.step, metrics.id).all()) {
      const list = byMetric.get(m.name) ?? [];
      list.push([m.step, m.value]);
      byMetric.set(m.name, list);
    }
    for (const [metric, points] of byMetric) curves.push({ stage: r.name, kind: r.kind, metric, points });
    for (const e of db.select().from(runEvents).where(and(eq(runEvents.stageId, source), eq(runEvents.level, 'warn'))).all()) {
      if (e.message.startsWith(`stage ${r.name}`)) continue; // the orchestrator's own notes (retries, takeovers)
      warnings.push({ stage: r.name, message: e.message });
    }
  }
  return { curves, stageConfigs, warnings };
}
