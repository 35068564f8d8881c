// The BullMQ executor. SQLite stays the system of record; Redis only carries "run this stage now"
// messages, so everything in Redis can be rebuilt from SQLite (reconcile()).
//
// Shape (and why not one FlowProducer tree per run): a flow is a tree, where a parent runs after
// its children. Our pipelines are DAGs (`dpo` needs `sft` as policy AND as reference; `eval`
// needs several models), stages can be cached, wait for labels, or be resumed, and a Redis
// restart loses every flow. So the scheduler decides in SQLite which stages are ready, and each
// ready stage becomes one job on its kind's queue, with a deterministic job id derived from its
// SQLite dispatch state: enqueueing twice is a no-op, and reconcile can re-add exactly what Redis
// lost. The worker that finishes a stage schedules its successors (and any run waiting on the
// same cache key) before it acks the job. (FlowProducer is deliberately not used: a flow tree
// cannot express a node with two parents, and its parent/child bookkeeping in Redis is exactly
// the state a Redis restart loses and that we would then have to rebuild anyway.)
//
// Retries: SQLite counts attempts; a transient failure re-enqueues a delayed job (exponential
// backoff with jitter, see backoffMs); a config/input error fails the job with UnrecoverableError
// (no retry). BullMQ's own attempts/backoff only cover infrastructure errors, and its stalled-job
// check (bounded by maxStalledCount) re-delivers jobs of a worker that died (kill -9); the new
// worker takes the stage over once the dead worker's SQLite heartbeat is stale.
import { Redis, type RedisOptions } from 'ioredis';
import { Queue, QueueEvents, UnrecoverableError, Worker, type Job } from 'bullmq';
import { and, eq, inArray } from 'drizzle-orm';
import fs from 'node:fs';
import os from 'node:os';
import { configError } from '../../errors.js';
import type { Db } from '../../store/db.js';
import { stages } from '../../store/schema.js';
import type { Progress } from '../../stages/contract.js';
import { activeRunIds, advanceRun, progressOf } from '../scheduler.js';
import { runStageAttempt, timing, type AttemptResult, type ExecDeps } from '../execute.js';

export const QUEUE_PREFIX = 'alignflow';
export const queueNameFor = (kind: string) => `stage-${kind}`;

/**
 * Reconnect delays: 0.5 s, 1 s, 2 s, 4 s … capped at `maxMs` (ALIGNFLOW_REDIS_RETRY_MAX_MS,
 * default 30 s). ioredis's default (50 ms steps up to 2 s) on a dozen connections is what made a
 * worker without Redis log ten errors a second.
 */
export function redisRetryDelay(times: number, maxMs = Number(process.env.ALIGNFLOW_REDIS_RETRY_MAX_MS ?? 30_000)): number {
  return Math.min(maxMs, 500 * 2 ** Math.min(30, Math.max(0, times - 1)));
}

const CONNECTION_ERROR = /ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENOTFOUND|EHOSTUNREACH|ENETUNREACH|EAI_AGAIN|EPIPE|Connection is closed|connect ETIMEDOUT/;
export const isConnectionError = (err: unknown) => CONNECTION_ERROR.test(`${(err as NodeJS.ErrnoException)?.code ?? ''} ${(err as Error)?.message ?? ''}`);

/**
 * Turns the connection errors of all of a process's Redis connections into one line per
 * interval ("Redis … is unreachable …; next attempt in 4 s") and one line when it is back.
 * Every connection it is given reconnects with redisRetryDelay's backoff.
 */
export class RedisOutage {
  private down = false;
  private lastSaid = -Infinity;
  private nextAttemptAt = 0;
  private readonly where: string;
  constructor(
    url: string,
    private readonly say: (msg: string) => void,
    private readonly everyMs = Number(process.env.ALIGNFLOW_REDIS_REPORT_MS ?? 10_000),
    private readonly now: () => number = Date.now,
  ) {
    this.where = redisWhere(url);
  }

  /** The ioredis retryStrategy: backoff, and when the next attempt is (for the message). */
  readonly retryStrategy = (times: number): number => {
    const d = redisRetryDelay(times);
    this.nextAttemptAt = Math.max(this.nextAttemptAt, this.now() + d);
    return d;
  };

  /** Handles an error event; returns false when it is not a connection error (the caller reports it). */
  error(err: unknown): boolean {
    // A certificate failure after start (the server's certificate changed) is reported the same
    // rate-limited way; checkRedisTls refuses it at start.
    if (!isConnectionError(err) && !isTlsError(err)) return false;
    const t = this.now();
    this.down = true;
    if (t - this.lastSaid >= this.everyMs) {
      this.lastSaid = t;
      // ioredis asks retryStrategy for the next delay just after it emits the error: say it then.
      setTimeout(() => {
        const next = Math.max(0, Math.round((this.nextAttemptAt - this.now()) / 1000));
        if (this.down) this.say(`Redis at ${this.where} is unreachable (${(err as Error).message}); retrying with backoff, next attempt in ${next} s (said at most every ${Math.round(this.everyMs / 1000)} s)`);
      }, 100).unref();
    }
    return true;
  }

  ready(): void {
    if (!this.down) return;
    this.down = false;
    this.lastSaid = -Infinity;
    this.nextAttemptAt = 0;
    this.say(`Redis at ${this.where} is reachable again`);
  }

  /** A connection using this backoff, reporting through this object. */
  connect(url: string): Redis {
    const c = redisConnection(url, { retryStrategy: this.retryStrategy });
    c.on('error', (err) => void this.error(err));
    c.on('ready', () => this.ready());
    return c;
  }
}

/** A Redis URL without its password, for messages and logs. */
export const redisWhere = (url: string) => url.replace(/\/\/[^@/]*@/, '//');

/**
 * A client for one bounded check (connect within `timeoutMs`, never retry, no offline queue), as
 * `doctor` and checkRedisTls use: an absent Redis fails fast instead of being waited for.
 */
export function oneShotRedis(url: string, timeoutMs: number): Redis {
  return new Redis(url, { ...redisTlsOptions(url), lazyConnect: true, connectTimeout: timeoutMs, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
}

export function redisConnection(url: string, extra: RedisOptions = {}): Redis {
  // maxRetriesPerRequest: null is required by BullMQ workers, and lets every command wait out a
  // Redis restart instead of failing after 20 retries.
  return new Redis(url, { maxRetriesPerRequest: null, enableReadyCheck: true, ...redisTlsOptions(url), ...extra });
}

let caFile: { path: string; ca: Buffer } | undefined;

/**
 * TLS options for a rediss:// URL: ALIGNFLOW_REDIS_CA names a PEM file of the CA(s) to trust
 * (a private CA; without it Node's public roots apply). Read once per path, since a process opens
 * a dozen connections. A redis:// URL gets nothing: the variable never turns TLS on by itself.
 */
export function redisTlsOptions(url: string): RedisOptions {
  const file = process.env.ALIGNFLOW_REDIS_CA;
  if (!file || !/^rediss:/i.test(url)) return {};
  if (caFile?.path !== file) {
    let ca: Buffer;
    try {
      ca = fs.readFileSync(file);
    } catch (err) {
      throw configError(`ALIGNFLOW_REDIS_CA=${file}: cannot read the CA file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
    if (!ca.includes('-----BEGIN CERTIFICATE-----')) throw configError(`ALIGNFLOW_REDIS_CA=${file}: not a PEM certificate file (no "-----BEGIN CERTIFICATE-----" line)`);
    caFile = { path: file, ca };
  }
  return { tls: { ca: caFile.ca } };
}

const TLS_ERROR = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|ERR_TLS|ERR_SSL|EPROTO/;
/** A TLS handshake or certificate failure: retrying with the same trust store fails the same way. */
export const isTlsError = (err: unknown) => TLS_ERROR.test(`${(err as NodeJS.ErrnoException)?.code ?? ''}`);

/**
 * For a rediss:// URL, one bounded connection attempt before a process starts its long-lived,
 * forever-retrying connections: an untrusted certificate would otherwise look like an outage and
 * be retried silently for ever. A certificate or handshake failure throws a config error naming
 * the cause and ALIGNFLOW_REDIS_CA; anything else (Redis down, slow) is left to the usual
 * outage handling, so a worker may still start before its Redis.
 */
export async function checkRedisTls(url: string, timeoutMs = 10_000): Promise<void> {
  if (!/^rediss:/i.test(url)) return;
  const where = redisWhere(url);
  const c = oneShotRedis(url, timeoutMs);
  let tlsErr: unknown;
  c.on('error', (err) => void (isTlsError(err) && (tlsErr ??= err)));
  let t: NodeJS.Timeout | undefined;
  try {
    await Promise.race([c.connect().then(() => c.ping()), new Promise((r) => (t = setTimeout(r, timeoutMs + 1000)))]);
  } catch (err) {
    if (isTlsError(err)) tlsErr ??= err;
  } finally {
    clearTimeout(t);
    c.disconnect();
  }
  if (tlsErr) {
    const e = tlsErr as NodeJS.ErrnoException;
    const ca = process.env.ALIGNFLOW_REDIS_CA;
    throw configError(
      `Redis at ${where}: TLS failed (${e.code}: ${e.message}); ` +
        (ca ? `the server's certificate is not signed by a CA in ALIGNFLOW_REDIS_CA=${ca}` : `if the server's certificate is signed by a private CA, set ALIGNFLOW_REDIS_CA=/path/to/ca.pem`),
    );
  }
}

type StageRow = typeof stages.$inferSelect;

export interface StageJobData {
  stageId: string;
  runId: string;
}

/** The job id of a stage's current dispatch (no ':'): same SQLite state → same id. */
export function jobIdFor(s: StageRow): { id: string; delay: number } | undefined {
  const p = progressOf(s);
  const now = Date.now();
  if (s.state === 'queued') return { id: `${s.id}-q${s.queuedAt ?? 0}`, delay: 0 };
  if (s.state === 'waiting') return { id: `${s.id}-w${p.retryAt ?? 0}`, delay: Math.max(0, (p.retryAt ?? now) - now) };
  if (s.state === 'running') {
    const beat = p.heartbeatAt ?? s.startedAt ?? 0;
    if (now - beat > timing.staleMs) return { id: `${s.id}-t${beat}`, delay: 0 }; // holder presumed dead
  }
  return undefined;
}

const jobOpts = {
  attempts: 5,
  backoff: { type: 'exponential', delay: 1000, jitter: 0.5 },
  removeOnComplete: { age: 24 * 3600, count: 5000 },
  removeOnFail: { age: 7 * 24 * 3600 },
} as const;

export class Dispatcher {
  readonly connection: Redis;
  private queues = new Map<string, Queue>();
  constructor(
    readonly url: string,
    connection?: Redis,
  ) {
    this.connection = connection ?? redisConnection(url);
  }

  queue(kind: string): Queue {
    let q = this.queues.get(kind);
    if (!q) {
      q = new Queue(queueNameFor(kind), { connection: this.connection, prefix: QUEUE_PREFIX });
      this.queues.set(kind, q);
    }
    return q;
  }

  /** Adds a job for each stage that needs one (idempotent: an existing job id is left alone). */
  async enqueue(rows: StageRow[], opts: { delayMs?: number } = {}): Promise<number> {
    const byKind = new Map<string, { name: string; data: StageJobData; opts: Record<string, unknown> }[]>();
    for (const s of rows) {
      const j = jobIdFor(s);
      if (!j) continue;
      const delay = Math.max(j.delay, opts.delayMs ?? 0);
      const list = byKind.get(s.kind) ?? [];
      list.push({ name: s.name, data: { stageId: s.id, runId: s.runId }, opts: { ...jobOpts, jobId: j.id, delay } });
      byKind.set(s.kind, list);
    }
    let n = 0;
    for (const [kind, jobs] of byKind) {
      await this.queue(kind).addBulk(jobs);
      n += jobs.length;
    }
    return n;
  }

  /** Schedules a run and enqueues every stage of it that is queued, due or orphaned. */
  async dispatchRun(db: Db, runId: string): Promise<number> {
    advanceRun(db, runId);
    const rows = db.select().from(stages).where(and(eq(stages.runId, runId), inArray(stages.state, ['queued', 'waiting', 'running']))).all();
    return this.enqueue(rows);
  }

  /**
   * Rebuilds the queue from SQLite: every active run is scheduled and each of its queued,
   * waiting or orphaned running stages gets its job back if Redis lost it (a restart without
   * persistence, a flushed database). Safe to run from any number of processes at once.
   */
  async reconcile(db: Db): Promise<{ runs: number; jobs: number }> {
    let jobs = 0;
    const ids = activeRunIds(db);
    for (const id of ids) {
      const before = await this.missing(db, id);
      jobs += before;
      await this.dispatchRun(db, id);
    }
    return { runs: ids.length, jobs };
  }

  /** Count of this run's stages whose current job Redis does not know (for reporting). */
  private async missing(db: Db, runId: string): Promise<number> {
    let n = 0;
    for (const s of db.select().from(stages).where(and(eq(stages.runId, runId), inArray(stages.state, ['queued', 'waiting', 'running']))).all()) {
      const j = jobIdFor(s);
      if (j && !(await this.queue(s.kind).getJob(j.id))) n++;
    }
    return n;
  }

  async close(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => q.close()));
    this.connection.disconnect();
  }
}

export interface WorkerOptions {
  kinds: string[];
  concurrency?: number;
  workerId?: string;
  /** Reconcile SQLite → Redis this often (ms); 0 disables. */
  reconcileMs?: number;
  /**
   * How long shutdown() waits for active steps to checkpoint and for Redis to acknowledge
   * (ALIGNFLOW_SHUTDOWN_GRACE_MS, default 10 s); then it closes regardless. Nothing is lost: the
   * SQLite state is recorded first, and a job Redis did not hear about is re-delivered.
   */
  graceMs?: number;
  onEvent?: (msg: string) => void;
}

export interface RunningWorkers {
  workers: Worker[];
  dispatcher: Dispatcher;
  /** Aborts active steps (they checkpoint and re-queue), then closes the workers. */
  shutdown(): Promise<void>;
}

/**
 * After an attempt is recorded: schedules the run's successors (and runs waiting on the same cache
 * key), a waiting stage's re-invocation, or a retry's delayed job. Run by the worker that recorded
 * the attempt, or by the coordinator for a remote worker.
 */
export async function afterAttempt(dispatcher: Dispatcher, db: Db, runId: string, stageId: string, res: AttemptResult): Promise<void> {
  switch (res.status) {
    case 'succeeded':
    case 'cancelled':
    case 'failed': {
      await dispatcher.dispatchRun(db, runId);
      // Runs whose stage waits for this one's cache key (in-flight dedupe) can move on now.
      const row = db.select({ key: stages.cacheKey }).from(stages).where(eq(stages.id, stageId)).get();
      if (row?.key) {
        const waiters = db.select({ runId: stages.runId }).from(stages).where(and(eq(stages.cacheKey, row.key), eq(stages.state, 'pending'))).all();
        for (const w of new Set(waiters.map((x) => x.runId))) await dispatcher.dispatchRun(db, w);
      }
      return;
    }
    case 'waiting':
    case 'requeued':
      await dispatcher.dispatchRun(db, runId);
      return;
    case 'retry': {
      const row = db.select().from(stages).where(eq(stages.id, stageId)).get();
      if (row) await dispatcher.enqueue([row], { delayMs: res.delayMs });
      return;
    }
    default:
      return;
  }
}

/** A worker on another host: its attempts go through the coordinator (src/orchestrator/remote/). */
export interface RemoteDeps {
  remote: { attempt(stageId: string, o: { workerId: string; shutdown: AbortSignal; onProgress: (p: Progress) => void }): Promise<AttemptResult> };
}

/** Starts one BullMQ Worker per stage kind (queue), all sharing one processor (SQLite-backed, or remote). */
export async function startWorkers(deps: ExecDeps | RemoteDeps, url: string, opts: WorkerOptions): Promise<RunningWorkers> {
  const shutdown = new AbortController();
  const workerId = opts.workerId ?? `${os.hostname()}-${process.pid}`;
  const say = opts.onEvent ?? (() => undefined);
  const outage = new RedisOutage(url, say);
  const dispatcher = new Dispatcher(url, outage.connect(url));
  /** Attempts in progress: shutdown waits for them (they record in SQLite, which needs no Redis). */
  const attempts = new Set<Promise<unknown>>();

  const processor = async (job: Job<StageJobData>) => {
    const { stageId, runId } = job.data;
    const o = {
      workerId,
      shutdown: shutdown.signal,
      onProgress: (p: Progress) => void job.updateProgress({ stageId, ...p }).catch(() => undefined),
    };
    // A remote worker's coordinator records the outcome and schedules what follows; a local one does both here.
    const attempt = 'remote' in deps ? deps.remote.attempt(stageId, o) : runStageAttempt(deps, stageId, o);
    attempts.add(attempt);
    const res = await attempt.finally(() => attempts.delete(attempt));
    // (After the attempt left `attempts`: shutdown closes the workers as soon as the attempts are
    // recorded, so a worker that is stopping does not pick up the job this dispatch adds.)
    if (!('remote' in deps)) await afterAttempt(dispatcher, deps.db, runId, stageId, res);
    say(`${stageId}: ${res.status}`);
    if (res.status === 'failed') throw new UnrecoverableError(res.error);
    return res; // busy / skipped: another worker has it, or nothing is due
  };

  const lockDuration = Number(process.env.ALIGNFLOW_LOCK_MS ?? 30_000);
  const stalledInterval = Number(process.env.ALIGNFLOW_STALLED_MS ?? 30_000);
  // BullMQ does not close connections it was given: keep them to close on shutdown.
  const connections: Redis[] = [];
  const workers = opts.kinds.map(
    (kind) =>
      new Worker<StageJobData>(queueNameFor(kind), processor, {
        connection: (connections.push(outage.connect(url)), connections[connections.length - 1]!),
        prefix: QUEUE_PREFIX,
        concurrency: opts.concurrency ?? 1,
        lockDuration,
        stalledInterval,
        maxStalledCount: 3,
        name: workerId,
      }),
  );
  // The same error again (BullMQ retries a lock renewal every lockDuration/2) is said once per
  // report interval, not each time.
  const reportMs = Number(process.env.ALIGNFLOW_REDIS_REPORT_MS ?? 10_000);
  const saidAt = new Map<string, number>();
  const workerError = (err: Error) => {
    if (outage.error(err)) return;
    const t = Date.now();
    if (t - (saidAt.get(err.message) ?? -Infinity) < reportMs) return;
    if (saidAt.size > 100) saidAt.clear();
    saidAt.set(err.message, t);
    // A job Redis no longer has (FLUSHALL, a restart without persistence) can neither keep its
    // lock nor be completed; the stage's claim and outcome live in SQLite, so nothing is lost.
    const lost = /could not renew lock|Missing lock|Missing key/i.test(err.message) ? ' (Redis lost this job: flushed or restarted empty; the stage state is in SQLite, nothing is lost)' : '';
    say(`worker error: ${err.message}${lost}`);
  };
  for (const w of workers) w.on('error', workerError);

  let timer: NodeJS.Timeout | undefined;
  // Only a process holding the database reconciles (a remote worker's coordinator does it for it).
  const reconcileMs = 'remote' in deps ? 0 : opts.reconcileMs ?? Number(process.env.ALIGNFLOW_RECONCILE_MS ?? 5000);
  let reconciling = false;
  const tick = async () => {
    if (reconciling || shutdown.signal.aborted) return;
    reconciling = true;
    try {
      const r = await dispatcher.reconcile((deps as ExecDeps).db);
      if (r.jobs > 0) say(`reconcile: re-enqueued ${r.jobs} job(s) Redis had lost`);
    } catch (err) {
      if (!outage.error(err)) say(`reconcile failed: ${(err as Error).message}`);
    } finally {
      reconciling = false;
    }
  };
  if (reconcileMs > 0) {
    timer = setInterval(() => void tick(), reconcileMs);
    void tick();
    // After a reconnect (Redis restarted, maybe empty) reconcile at once.
    dispatcher.connection.on('ready', () => void tick());
  }

  return {
    workers,
    dispatcher,
    async shutdown() {
      if (timer) clearInterval(timer);
      shutdown.abort();
      const graceMs = opts.graceMs ?? Number(process.env.ALIGNFLOW_SHUTDOWN_GRACE_MS ?? 10_000);
      const deadline = Date.now() + graceMs;
      const until = (p: Promise<unknown>) => {
        let t: NodeJS.Timeout | undefined;
        return Promise.race([p.then(() => true), new Promise<boolean>((r) => (t = setTimeout(() => r(false), Math.max(0, deadline - Date.now()))))]).finally(() => clearTimeout(t));
      };
      // Active steps stop at their next step, checkpoint and record themselves as re-queued in SQLite.
      if (!(await until(Promise.allSettled([...attempts])))) say(`shutdown: a step did not stop within ${Math.round(graceMs / 1000)} s; its stage will be taken over once its heartbeat is stale`);
      // Closing the workers needs Redis (they release their locks); without it, stop waiting at the deadline.
      if (!(await until(Promise.all(workers.map((w) => w.close())).then(() => dispatcher.close())))) {
        say(`shutdown: Redis did not answer within ${Math.round(graceMs / 1000)} s; exiting without it (queued jobs stay in Redis, and reconcile rebuilds any it lost)`);
        let t: NodeJS.Timeout | undefined;
        await Promise.race([Promise.all(workers.map((w) => w.close(true))).catch(() => undefined), new Promise((r) => (t = setTimeout(r, 2000)))]);
        clearTimeout(t);
      }
      dispatcher.connection.disconnect();
      for (const c of connections) c.disconnect();
    },
  };
}

/** Streams job progress of the given kinds' queues (for `alignflow run --redis`'s live display). */
export function watchProgress(url: string, kinds: string[], onProgress: (stageId: string, p: Progress) => void): { close(): Promise<void> } {
  const conns: Redis[] = [];
  const events = kinds.map((k) => {
    const connection = redisConnection(url);
    conns.push(connection);
    const qe = new QueueEvents(queueNameFor(k), { connection, prefix: QUEUE_PREFIX });
    qe.on('progress', ({ data }) => {
      const d = data as unknown as { stageId?: string } & Progress;
      if (d && typeof d === 'object' && d.stageId) onProgress(d.stageId, d);
    });
    return qe;
  });
  return {
    close: async () => {
      await Promise.all(events.map((e) => e.close()));
      for (const c of conns) c.disconnect();
    },
  };
}
