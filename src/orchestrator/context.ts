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

/** What a stage attempt needs to know about its stage: read from SQLite here, or sent by the coordinator to a remote worker. */
export interface StageJob {
  runId: string;
  stageId: string;
  name: string;
  kind: string;
  config: unknown;
  attempts: number;
  seed: number;
  /** Input role → artifact id. */
  inputIds: Record<string, string>;
  keepCheckpoints: number;
}

/**
 * Where a stage's records go: SQLite (localRecorder) or the coordinator over HTTP (a remote
 * worker). progress/metrics/event are fire-and-forget for the handler; close() flushes them.
 */
export interface StageRecorder {
  progress(p: Progress): void;
  metrics(step: number, values: Record<string, number>): void;
  event(level: 'debug' | 'info' | 'warn' | 'error', message: string): void;
  latestCheckpoint(): Promise<{ step: number; artifactId: string } | undefined>;
  recordCheckpoint(step: number, artifactId: string, evalLoss?: number): Promise<void>;
  history?: () => Promise<RunHistory> | RunHistory;
  labeling?: StageContext['labeling'];
  /** Waits until everything sent is recorded. */
  flush?(): Promise<void>;
}

/** The job of `stageId` as its row and its run's spec describe it. */
export function stageJob(db: Db, stageId: string): StageJob {
  const row = db.select().from(stages).where(eq(stages.id, stageId)).get();
  if (!row) throw new AlignflowError('not_found', `no stage ${stageId}`);
  const run = db.select().from(runs).where(eq(runs.id, row.runId)).get()!;
  const spec = run.spec as StoredSpec;
  const stageSpec = spec.stages.find((s) => s.name === row.name);
  if (!stageSpec) throw new AlignflowError('internal', `stage ${row.name} is not in the run's spec`);
  const siblings = new Map(db.select().from(stages).where(eq(stages.runId, row.runId)).all().map((r) => [r.name, r]));
  return {
    runId: row.runId,
    stageId,
    name: row.name,
    kind: row.kind,
    config: row.config,
    attempts: row.attempts,
    seed: stageSeed(spec.seed, row.name),
    inputIds: resolveInputs(db, spec, stageSpec, siblings),
    keepCheckpoints: keepCheckpointsOf(row.config),
  };
}

/** Records into this process's SQLite database. */
export function localRecorder(db: Db, job: StageJob): StageRecorder {
  return {
    progress: (p) => writeStageProgress(db, job.stageId, p),
    metrics: (step, values) => writeStageMetrics(db, job.runId, job.stageId, step, values),
    event: (level, message) => void db.insert(runEvents).values({ runId: job.runId, stageId: job.stageId, level, message, createdAt: Date.now() }).run(),
    latestCheckpoint: async () => latestCheckpointRow(db, job.stageId),
    recordCheckpoint: async (step, artifactId, evalLoss) => recordCheckpoint(db, job.stageId, step, artifactId, job.keepCheckpoints, evalLoss),
    history: () => runHistory(db, job.runId, job.stageId),
    labeling: createLabelingPort(db),
  };
}

export async function buildContext(db: Db, store: ArtifactStore, home: string, stageId: string, signal: AbortSignal, hooks: ContextHooks = {}): Promise<BuiltContext> {
  const job = stageJob(db, stageId);
  return buildStageContext(job, store, home, localRecorder(db, job), signal, hooks);
}

/** The StageContext of `job` over any store and recorder: a handler cannot tell local from remote. */
export async function buildStageContext(job: StageJob, store: ArtifactStore, home: string, rec: StageRecorder, signal: AbortSignal, hooks: ContextHooks = {}): Promise<BuiltContext> {
  const { stageId } = job;
  const inputs: StageContext['inputs'] = {};
  for (const [role, id] of Object.entries(job.inputIds)) inputs[role] = await store.get(id);

  const workDir = path.join(tmpDir(home), `stage-${stageId}-${job.attempts}-${process.pid}`);
  fs.mkdirSync(workDir, { recursive: true });

  const event = (level: 'debug' | 'info' | 'warn' | 'error', message: string) => {
    rec.event(level, message);
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
    rec.progress(p);
    lastWrite = Date.now();
    pending = undefined;
  };

  // Every metric also goes to a TensorBoard event file; a failure to write it (disk full, a
  // read-only home) is reported once and never fails the stage.
  const tensorboard = new TensorboardWriter(tensorboardDir(home, job.runId, job.name));
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
    const c = await rec.latestCheckpoint();
    if (!c) return undefined;
    return { step: c.step, artifact: await store.get(c.artifactId) };
  }

  async function saveCheckpoint(step: number, artifact: PutArtifact, evalLoss?: number): Promise<CheckpointRef> {
    const m = await store.put({ ...artifact, kind: 'checkpoint', metadata: { ...(artifact.metadata ?? {}), step } });
    await rec.recordCheckpoint(step, m.id, evalLoss);
    return { step, artifact: m };
  }

  const ctx: StageContext<unknown> = {
    runId: job.runId,
    stageId,
    stageName: job.name,
    kind: job.kind,
    config: job.config,
    inputs,
    store,
    workDir,
    seed: job.seed,
    latestCheckpoint,
    saveCheckpoint,
    progress(p) {
      hooks.onProgress?.(p);
      if (Date.now() - lastWrite >= PROGRESS_WRITE_MS || p.step >= p.total) writeProgress(p);
      else pending = p;
    },
    metrics(step, values) {
      rec.metrics(step, values);
      toTensorboard(step, values);
    },
    log,
    signal,
    ...(rec.labeling ? { labeling: rec.labeling } : {}),
    ...(rec.history ? { history: rec.history } : {}),
  };
  return {
    ctx,
    async close() {
      if (pending) writeProgress(pending);
      tensorboard.close();
      await rec.flush?.();
      await fs.promises.rm(workDir, { recursive: true, force: true });
    },
  };
}

export type { RunHistory };

// The database side of the context's calls, shared with the coordinator's HTTP endpoints
// (src/server/routes/coordinator.ts), so a remote worker's stage records exactly what a local one does.

export function writeStageProgress(db: Db, stageId: string, p: Progress): void {
  // json_patch keeps the heartbeat and other fields the executor keeps in the same column.
  const patch: StageProgress = { step: p.step, total: p.total, message: p.message ?? null as unknown as undefined, metrics: p.metrics ?? {} };
  db.$client.prepare(`UPDATE stages SET progress = json_patch(coalesce(progress, '{}'), ?) WHERE id = ?`).run(JSON.stringify(patch), stageId);
}

export function writeStageMetrics(db: Db, runId: string, stageId: string, step: number, values: Record<string, number>): void {
  const now = Date.now();
  immediate(db, (tx) => {
    for (const [name, value] of Object.entries(values)) {
      if (!Number.isFinite(value)) continue; // NaN guards are the handler's job; SQLite REAL cannot hold NaN faithfully
      // Upsert by (stage, name, step): a stage resumed from a checkpoint (takeover after a
      // crash, a resumed run) logs again the steps it ran after that checkpoint, and those
      // points replace the first attempt's instead of doubling the curve.
      tx.delete(metrics).where(and(eq(metrics.stageId, stageId), eq(metrics.name, name), eq(metrics.step, step))).run();
      tx.insert(metrics).values({ runId, stageId, step, name, value, createdAt: now }).run();
    }
  });
}

export function latestCheckpointRow(db: Db, stageId: string): { step: number; artifactId: string } | undefined {
  return db.select().from(checkpoints).where(eq(checkpoints.stageId, stageId)).orderBy(desc(checkpoints.step)).limit(1).get();
}

/** Records a checkpoint artifact for `step`; keeps the newest `keep` plus the best by eval loss (the artifacts stay until gc). */
export function recordCheckpoint(db: Db, stageId: string, step: number, artifactId: string, keep: number, evalLoss?: number): void {
  immediate(db, (tx) => {
    tx.insert(checkpoints)
      .values({ stageId, step, artifactId, evalLoss: evalLoss ?? null, createdAt: Date.now() })
      .onConflictDoUpdate({ target: [checkpoints.stageId, checkpoints.step], set: { artifactId, evalLoss: evalLoss ?? null } })
      .run();
    const all = tx.select().from(checkpoints).where(eq(checkpoints.stageId, stageId)).orderBy(desc(checkpoints.step)).all();
    const best = all.filter((c) => c.evalLoss !== null).sort((a, b) => a.evalLoss! - b.evalLoss!)[0];
    for (const c of all.slice(Math.max(1, keep))) {
      if (best && c.step === best.step) continue;
      tx.delete(checkpoints).where(and(eq(checkpoints.stageId, stageId), eq(checkpoints.step, c.step))).run();
    }
  });
}

/** The keep_checkpoints of a stage's config (default DEFAULT_KEEP_CHECKPOINTS). */
export function keepCheckpointsOf(config: unknown): number {
  const c = config as Record<string, unknown> | null;
  return typeof c?.keep_checkpoints === 'number' ? c.keep_checkpoints : DEFAULT_KEEP_CHECKPOINTS;
}

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
