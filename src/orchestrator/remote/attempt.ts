// One stage attempt on a worker on another host: the same steps as ../execute.ts (claim →
// heartbeat + cancel watch → handler, in a thread when heavy → record), each one an HTTP call to
// the coordinator, which changes SQLite exactly as a local worker would and then dispatches what
// follows. The handler gets the same StageContext as everywhere (buildStageContext), over a
// RemoteStore and a recorder that batches progress, metrics and log lines; the labeling service
// (collect, label, human judges) goes over the same API (./labeling.ts).
import os from 'node:os';
import type { Progress, RunHistory } from '../../stages/contract.js';
import { getStage, loadStages } from '../../stages/index.js';
import { buildStageContext, type BuiltContext, type ContextHooks, type StageJob, type StageRecorder } from '../context.js';
import { runHandlerWith, toPlainError, type PlainOutcome } from '../handler-run.js';
import { runHandlerInThread } from '../thread.js';
import { timing } from '../timing.js';
import type { AttemptResult } from '../execute.js';
import type { RemoteDeps } from '../executors/bullmq.js';
import { CoordinatorClient } from './client.js';
import { RemoteStore } from './store.js';
import { remoteLabeling } from './labeling.js';
import type { LabelingService } from '../../labeling/port.js';

const SEND_EVERY_MS = 250;

/** Progress, metrics and log lines go to the coordinator in batches, in order; flush() waits for all. */
export class RemoteRecorder implements StageRecorder {
  private batch: { progress?: Progress; metrics: { step: number; values: Record<string, number> }[]; events: { level: string; message: string }[] } = { metrics: [], events: [] };
  private chain: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private failed: unknown;
  readonly labeling: LabelingService;
  constructor(
    readonly client: CoordinatorClient,
    readonly stageId: string,
    runId: string,
  ) {
    this.labeling = remoteLabeling(client, { runId, stageId });
  }

  private schedule() {
    this.timer ??= setTimeout(() => void this.send(), SEND_EVERY_MS);
  }

  private send(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const b = this.batch;
    if (!b.progress && !b.metrics.length && !b.events.length) return this.chain;
    this.batch = { metrics: [], events: [] };
    const body = {
      ...(b.progress ? { progress: { step: b.progress.step, total: b.progress.total, ...(b.progress.message !== undefined ? { message: b.progress.message } : {}), ...(b.progress.metrics ? { metrics: finiteOnly(b.progress.metrics) } : {}) } } : {}),
      ...(b.metrics.length ? { metrics: b.metrics.map((m) => ({ step: m.step, values: finiteOnly(m.values) })) } : {}),
      ...(b.events.length ? { events: b.events } : {}),
    };
    this.chain = this.chain.then(() => this.client.json('POST', `/stages/${this.stageId}/records`, body).then(() => undefined, (err) => void (this.failed ??= err)));
    return this.chain;
  }

  progress(p: Progress) {
    this.batch.progress = p;
    this.schedule();
  }
  metrics(step: number, values: Record<string, number>) {
    this.batch.metrics.push({ step, values });
    this.schedule();
  }
  event(level: 'debug' | 'info' | 'warn' | 'error', message: string) {
    this.batch.events.push({ level, message: message.slice(0, 20_000) });
    this.schedule();
  }
  async latestCheckpoint() {
    await this.send();
    const r = await this.client.json<{ checkpoint: { step: number; artifactId: string } | null }>('GET', `/stages/${this.stageId}/checkpoints/latest`);
    return r.checkpoint ?? undefined;
  }
  async recordCheckpoint(step: number, artifactId: string, evalLoss?: number) {
    await this.send();
    await this.client.json('POST', `/stages/${this.stageId}/checkpoints`, { step, artifactId, ...(evalLoss !== undefined && Number.isFinite(evalLoss) ? { evalLoss } : {}) });
  }
  history = () => this.client.json<RunHistory>('GET', `/stages/${this.stageId}/history`);
  async flush() {
    await this.send();
    if (this.failed) throw this.failed;
  }
}

const finiteOnly = (v: Record<string, number>) => Object.fromEntries(Object.entries(v).filter(([, x]) => Number.isFinite(x)));

export interface RemoteWorkerConfig {
  url: string;
  token: string;
  /** This process's worker name (default host-pid). */
  worker: string;
  /** The worker's own home: blob cache, temp files, TensorBoard files. Never a database. */
  home: string;
}

/** The stage context of a claimed job, over the coordinator (runs in the worker thread for heavy handlers). */
export function buildRemoteContext(cfg: RemoteWorkerConfig, job: StageJob, signal: AbortSignal, hooks: ContextHooks = {}): Promise<BuiltContext> {
  const client = new CoordinatorClient(cfg.url, cfg.token, cfg.worker);
  return buildStageContext(job, new RemoteStore(client, cfg.home, job.stageId), cfg.home, new RemoteRecorder(client, job.stageId, job.runId), signal, hooks);
}

type Claimed = { ok: true; job: StageJob } | { ok: false; result: AttemptResult };

export interface RemoteAttemptOptions {
  workerId?: string;
  shutdown?: AbortSignal;
  onProgress?: (p: Progress) => void;
  threads?: boolean;
  onEvent?: (msg: string) => void;
}

let attemptSeq = 0;

export async function runRemoteAttempt(cfgIn: RemoteWorkerConfig, stageId: string, opts: RemoteAttemptOptions = {}): Promise<AttemptResult> {
  // Each attempt has its own worker id: a takeover of this very stage by this same process (its
  // heartbeat went stale while the coordinator was down) must not look like the old attempt.
  const cfg = { ...cfgIn, worker: `${cfgIn.worker}.${++attemptSeq}` };
  const client = new CoordinatorClient(cfg.url, cfg.token, cfg.worker);
  const c = await client.json<Claimed>('POST', `/stages/${stageId}/claim`);
  if (!c.ok) return c.result;
  const { job } = c;
  const abort = new AbortController();
  const onShutdown = () => abort.abort(new Error('worker shutting down'));
  if (opts.shutdown?.aborted) onShutdown();
  opts.shutdown?.addEventListener('abort', onShutdown, { once: true });
  // The heartbeat doubles as the cancel channel. While the coordinator is unreachable the stage
  // goes on (nobody can take it over while the coordinator is down; and on a cut link, its
  // uploads fail and every write is refused once another worker holds it); the first answer
  // after that says whether this attempt still holds the stage.
  let lastAnswer = Date.now();
  let said = false;
  let beating = false;
  const beat = setInterval(() => {
    if (beating) return;
    beating = true;
    client
      .json<{ cancel: boolean }>('POST', `/stages/${stageId}/heartbeat`, undefined, { retryMs: 0 })
      .then((r) => {
        lastAnswer = Date.now();
        said = false;
        if (r.cancel && !abort.signal.aborted) abort.abort(new Error('stage cancelled'));
      })
      .catch(() => {
        if (Date.now() - lastAnswer > timing.staleMs && !said) {
          said = true;
          opts.onEvent?.(`${stageId}: no heartbeat answer from the coordinator for ${Math.round((Date.now() - lastAnswer) / 1000)} s; the stage goes on, and stops if another worker took it over meanwhile`);
        }
      })
      .finally(() => (beating = false));
  }, timing.heartbeatMs);

  let outcome: PlainOutcome;
  try {
    await loadStages([job.kind]).catch(() => undefined);
    const handler = getStage(job.kind);
    const hooks = { ...(opts.onProgress ? { onProgress: opts.onProgress } : {}) };
    if (handler?.heavy && opts.threads !== false) {
      outcome = await runHandlerInThread({ home: cfg.home, stageId, kind: job.kind, remote: { ...cfg, job } }, abort.signal, hooks);
    } else {
      outcome = await runHandlerWith(job.kind, abort.signal, () => buildRemoteContext(cfg, job, abort.signal, hooks));
    }
  } catch (err) {
    outcome = toPlainError(err);
  } finally {
    clearInterval(beat);
    opts.shutdown?.removeEventListener('abort', onShutdown);
  }
  try {
    return await client.json<AttemptResult>('POST', `/stages/${stageId}/complete`, { outcome: trimOutcome(outcome), shutdown: !!opts.shutdown?.aborted });
  } catch (err) {
    // Unrecorded: the stage stays `running` under this worker until its heartbeat is stale, then
    // the coordinator's reconcile hands it to another worker.
    opts.onEvent?.(`${stageId}: outcome not recorded (${(err as Error).message}); the stage will be taken over`);
    return { status: 'skipped', state: 'unrecorded' };
  }
}

function trimOutcome(o: PlainOutcome): PlainOutcome {
  if (o.status !== 'error') return o;
  return { status: 'error', kind: o.kind, message: o.message.slice(0, 100_000), ...(o.stack ? { stack: o.stack.slice(0, 100_000) } : {}) };
}

/** The BullMQ processor's attempts for `alignflow worker --coordinator`. */
export function remoteDeps(cfg: Omit<RemoteWorkerConfig, 'worker'> & { worker?: string }, onEvent?: (msg: string) => void): RemoteDeps & { cfg: RemoteWorkerConfig } {
  const full: RemoteWorkerConfig = { ...cfg, worker: cfg.worker ?? `${os.hostname()}-${process.pid}` };
  return {
    cfg: full,
    remote: { attempt: (stageId, o) => runRemoteAttempt(full, stageId, { ...o, ...(onEvent ? { onEvent } : {}) }) },
  };
}
