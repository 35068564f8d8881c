// Creating runs and acting on them (cancel, resume, retry). Run-level inputs (datasets given by
// path, a model directory) become artifacts BEFORE any row is written, so a refused or crashed
// submission leaves no run behind; the run and all its stage rows then go in one transaction.
import { and, asc, desc, eq, inArray, sql } from 'drizzle-orm';
import { immediate, type Db } from '../store/db.js';
import { runEvents, runs, stages, type DatasetKind } from '../store/schema.js';
import type { ArtifactStore } from '../store/types.js';
import type { LocalArtifactStore } from '../store/artifacts.js';
import { importDataset } from '../data/datasets.js';
import { canonicalHash } from '../store/canonical-json.js';
import { AlignflowError, notFound } from '../errors.js';
import { stageDeps, type PipelineSpec, type StageSpec } from '../config/spec.js';
import { newRunId, stageIdFor } from './ids.js';
import { moveStage, setRunStatus, type RunStatus } from './state.js';
import { advanceRun, progressOf } from './scheduler.js';
import { timing } from './timing.js';
import { abortLocal } from './local-aborts.js';

/** The spec as stored with a run: every dataset and the base model are artifact ids. */
export interface StoredSpec {
  name: string;
  seed: number;
  model?: { artifact: string };
  datasets: Record<string, { artifact: string; kind?: DatasetKind }>;
  stages: StageSpec[];
  options: { force: string[] };
}

export type ExecutorName = 'inline' | 'bullmq';

export interface CreateRunOptions {
  executor: ExecutorName;
  specPath?: string;
  /** Stage names to run even when a cached result exists. */
  force?: string[];
  /** Imports a dataset file; defaults to storing the file as-is (see importDatasetFile). */
  importDataset?: (store: ArtifactStore, name: string, file: string, kind?: DatasetKind) => Promise<string>;
  importModel?: (store: ArtifactStore, dir: string) => Promise<string>;
}

/**
 * Default dataset import: the foundation's validating importer (TRL formats, a `datasets` row,
 * deduplicated by content), so a run's datasets are the same artifacts `datasets import` makes. A
 * spec's dataset key names the dataset; a changed file becomes that name's newest version.
 */
export function datasetImporter(db: Db) {
  return async (store: ArtifactStore, name: string, file: string, kind?: DatasetKind): Promise<string> => {
    const r = await importDataset(db, store as LocalArtifactStore, file, { name, newVersion: true, ...(kind ? { kind } : {}) });
    return r.artifact.id;
  };
}

/**
 * Default model import: validates a Hugging Face model directory and stores it as a 'model'
 * artifact. The engine is loaded only here, since importing TensorFlow.js costs seconds.
 */
async function importModelDirectory(store: ArtifactStore, dir: string): Promise<string> {
  const [{ initBackend }, { importModelDir }] = await Promise.all([import('../ml/backend.js'), import('../ml/models/store.js')]);
  await initBackend();
  return (await importModelDir(store, dir)).id;
}

export async function resolveRunInputs(db: Db, store: ArtifactStore, spec: PipelineSpec, opts: CreateRunOptions): Promise<StoredSpec> {
  const datasets: StoredSpec['datasets'] = {};
  for (const [name, d] of Object.entries(spec.datasets)) {
    let id: string;
    if (d.artifact) {
      await store.get(d.artifact); // throws not_found
      id = d.artifact;
    } else {
      id = await (opts.importDataset ?? datasetImporter(db))(store, name, d.path!, d.kind);
    }
    datasets[name] = { artifact: id, ...(d.kind ? { kind: d.kind } : {}) };
  }
  let model: StoredSpec['model'];
  if (spec.model?.type === 'artifact') {
    await store.get(spec.model.id);
    model = { artifact: spec.model.id };
  } else if (spec.model?.type === 'path') {
    model = { artifact: await (opts.importModel ?? importModelDirectory)(store, spec.model.path) };
  }
  const force = opts.force ?? [];
  for (const f of force) {
    if (!spec.stages.some((s) => s.name === f)) throw new AlignflowError('usage', `--force ${f}: the pipeline has no stage named "${f}"`);
  }
  return { name: spec.name, seed: spec.seed, ...(model ? { model } : {}), datasets, stages: spec.stages, options: { force } };
}

/** Imports the run's inputs, writes the run and its stages (pending) and schedules what is ready. */
export async function createRun(db: Db, store: ArtifactStore, spec: PipelineSpec, opts: CreateRunOptions): Promise<string> {
  const stored = await resolveRunInputs(db, store, spec, opts);
  const runId = newRunId();
  const now = Date.now();
  immediate(db, (tx) => {
    tx.insert(runs)
      .values({
        id: runId,
        name: stored.name,
        specPath: opts.specPath ?? null,
        spec: stored,
        specHash: canonicalHash({ ...stored, options: undefined }),
        status: 'pending',
        executor: opts.executor,
        createdAt: now,
      })
      .run();
    for (const s of stored.stages) {
      tx.insert(stages)
        .values({ id: stageIdFor(runId, s.name), runId, name: s.name, kind: s.kind, config: s.config ?? {}, dependsOn: stageDeps(s), state: 'pending' })
        .run();
    }
    tx.insert(runEvents).values({ runId, level: 'info', message: `run created from ${opts.specPath ?? 'a spec'} (${opts.executor} executor)`, createdAt: now }).run();
  });
  advanceRun(db, runId);
  return runId;
}

export function getRun(db: Db, runId: string) {
  const run = db.select().from(runs).where(eq(runs.id, runId)).get();
  if (!run) throw notFound(`no run with id ${runId}`);
  return run;
}

export function runStages(db: Db, runId: string) {
  return db.select().from(stages).where(eq(stages.runId, runId)).orderBy(sql`rowid`).all();
}

/** Runs, newest first (the CLI's `runs ls` and the API's GET /api/runs). */
export function listRuns(db: Db, limit = 50, opts: { status?: RunStatus } = {}) {
  return db
    .select()
    .from(runs)
    .where(opts.status ? eq(runs.status, opts.status) : undefined)
    .orderBy(desc(runs.createdAt))
    .limit(limit)
    .all();
}

export function runLogs(db: Db, runId: string, afterId = 0) {
  getRun(db, runId);
  return db
    .select()
    .from(runEvents)
    .where(eq(runEvents.runId, runId))
    .orderBy(asc(runEvents.id))
    .all()
    .filter((e) => e.id > afterId);
}

/**
 * Cancels a whole run, or one stage of it. Pending/queued/waiting stages become `cancelled` at
 * once; a running stage is marked `cancelled` too and its executor, which polls its own row
 * with the heartbeat, aborts ctx.signal (the handler stops within one step and keeps its
 * checkpoints).
 */
export function cancelRun(db: Db, runId: string, stageName?: string): number {
  getRun(db, runId);
  let n = 0;
  const hit: string[] = [];
  immediate(db, (tx) => {
    const rows = tx.select().from(stages).where(eq(stages.runId, runId)).all();
    const targets = stageName ? rows.filter((s) => s.name === stageName) : rows;
    if (stageName && targets.length === 0) throw notFound(`run ${runId} has no stage named "${stageName}"`);
    for (const s of targets) {
      if (moveStage(tx, s.id, ['pending', 'queued', 'running', 'waiting'], 'cancelled', { finishedAt: Date.now(), error: 'cancelled by user', errorKind: 'cancelled' })) {
        n++;
        hit.push(s.id);
      }
    }
    tx.insert(runEvents).values({ runId, level: 'warn', message: stageName ? `stage ${stageName} cancelled` : 'run cancelled', createdAt: Date.now() }).run();
    if (!stageName) {
      // Stages that were blocked stay pending but can no longer run: the run is cancelled.
      for (const s of rows) moveStage(tx, s.id, ['pending'], 'cancelled', { finishedAt: Date.now(), errorKind: 'cancelled', error: 'run cancelled' });
      setRunStatus(tx, runId, 'cancelled');
    }
  });
  // Running here: abort now. Running in another process: its heartbeat sees the row and aborts.
  abortLocal(hit);
  if (stageName) advanceRun(db, runId);
  return n;
}

/**
 * Resume: the failed and cancelled stages of a run go back to pending (keeping their checkpoints
 * and attempt count), and the run is scheduled again. Succeeded and cached stages are kept.
 *
 * A run that is still `running` (or waiting) can be resumed only when nothing is driving it: its
 * driver or worker was killed (`kill -9`, a crash, a reboot) and no running stage has beaten its
 * heartbeat for `timing.staleMs`. The caller then drives it (inline) or re-dispatches it (BullMQ),
 * and the stale stages are taken over from their last checkpoint. While a heartbeat is fresh the
 * run is refused with the command that would take it over once it goes stale.
 */
export function resumeRun(db: Db, runId: string, now = Date.now()): string[] {
  const run = getRun(db, runId);
  if (run.status === 'succeeded') throw new AlignflowError('usage', `run ${runId} succeeded; nothing to resume (\`alignflow runs retry ${runId}\` starts a new run from its spec)`);
  const takeover = !['failed', 'cancelled'].includes(run.status);
  if (takeover) {
    const live = runStages(db, runId)
      .filter((s) => s.state === 'running')
      .map((s) => ({ s, age: now - (progressOf(s).heartbeatAt ?? s.startedAt ?? 0) }))
      .filter((x) => x.age <= timing.staleMs);
    if (live.length > 0) {
      const { s, age } = live[0]!;
      const waitS = Math.ceil((timing.staleMs - age) / 1000);
      // A BullMQ run is taken over by re-dispatching it to workers (`runs drive` is the inline driver).
      const how =
        run.executor === 'bullmq'
          ? `\`alignflow runs resume ${runId} --redis URL\` (with a worker running)`
          : `\`alignflow runs resume ${runId}\` (or \`alignflow runs drive ${runId}\`)`;
      throw new AlignflowError(
        'usage',
        `run ${runId} is ${run.status}: stage ${s.name} is held by ${s.worker ?? 'a worker'} (heartbeat ${Math.round(age / 1000)} s ago). ` +
          `If that process is gone, its heartbeat goes stale in ${waitS} s; then ${how} takes the run over from its last checkpoints`,
      );
    }
  }
  const reset: string[] = [];
  immediate(db, (tx) => {
    for (const s of tx.select().from(stages).where(and(eq(stages.runId, runId), inArray(stages.state, ['failed', 'cancelled']))).all()) {
      if (moveStage(tx, s.id, ['failed', 'cancelled'], 'pending', { error: null, errorKind: null, finishedAt: null, worker: null })) reset.push(s.name);
    }
    if (takeover) {
      // Stale running stages stay `running`: the next driver's claim takes them over (CAS on the
      // stale heartbeat), so a driver that comes back to life cannot race this one.
      for (const s of tx.select().from(stages).where(and(eq(stages.runId, runId), eq(stages.state, 'running'))).all()) reset.push(s.name);
    }
    tx.update(runs).set({ status: 'running' satisfies RunStatus, error: null, finishedAt: null }).where(eq(runs.id, runId)).run();
    const what = reset.join(', ') || 'nothing to re-run';
    tx.insert(runEvents).values({ runId, level: 'info', message: takeover ? `resumed (its driver had stopped): taking over ${what}` : `resumed: ${what}`, createdAt: Date.now() }).run();
  });
  advanceRun(db, runId);
  return reset;
}

/** Retry: a NEW run from the stored spec of an old one (finished stages come back as cached). */
export function retryRun(db: Db, runId: string, opts: { force?: string[]; executor?: ExecutorName } = {}): string {
  const old = getRun(db, runId);
  const spec = old.spec as StoredSpec;
  const newId = newRunId();
  const stored: StoredSpec = { ...spec, options: { force: opts.force ?? [] } };
  immediate(db, (tx) => {
    tx.insert(runs)
      .values({ id: newId, name: old.name, specPath: old.specPath, spec: stored, specHash: old.specHash, status: 'pending', executor: opts.executor ?? old.executor, createdAt: Date.now() })
      .run();
    for (const s of spec.stages) {
      tx.insert(stages).values({ id: stageIdFor(newId, s.name), runId: newId, name: s.name, kind: s.kind, config: s.config ?? {}, dependsOn: stageDeps(s), state: 'pending' }).run();
    }
    tx.insert(runEvents).values({ runId: newId, level: 'info', message: `retry of run ${runId}`, createdAt: Date.now() }).run();
  });
  advanceRun(db, newId);
  return newId;
}
