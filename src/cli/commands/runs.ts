// `alignflow run|submit SPEC` and `alignflow runs ls|show|logs|cancel|resume|retry|drive|reconcile`.
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { Option, type Command } from 'commander';
import { cliDb, printJson, printTable } from '../shared.js';
import { modelIdByName } from '../model-names.js';
import { alignflowHome } from '../../config/paths.js';
import { loadSpecFile, specKinds } from '../../config/spec.js';
import { createLocalStore } from '../../store/artifacts.js';
import { getStage, loadStages } from '../../stages/index.js';
import { usageError } from '../../errors.js';
import type { Progress } from '../../stages/contract.js';
import {
  cancelRun,
  getRun,
  listRuns,
  resumeRun,
  retryRun,
  runLogs,
  runStages,
  type ExecutorName,
} from '../../orchestrator/runs.js';
import { driveRun } from '../../orchestrator/executors/inline.js';
import { Dispatcher, watchProgress } from '../../orchestrator/executors/bullmq.js';
import { submitRun } from '../../orchestrator/submit.js';
import { progressLines, runLine, runSnapshot, stageLine } from '../../orchestrator/follow.js';
import { metricsCsv, runMetrics } from '../../orchestrator/metrics.js';
import { TERMINAL_RUN, type RunStatus } from '../../orchestrator/state.js';

const collect = (v: string, prev: string[]) => [...prev, v];

function env() {
  const db = cliDb();
  const home = alignflowHome();
  return { db, home, store: createLocalStore(db, home) };
}

function redisUrl(opt?: string): string | undefined {
  return opt ?? (process.env.ALIGNFLOW_REDIS_URL || undefined);
}

const exitFor = (s: RunStatus) => (s === 'succeeded' ? 0 : 1);

interface SubmitOpts {
  set: string[];
  force: string[];
  redis?: string;
  json?: boolean;
  concurrency?: string;
}

/** `--concurrency N`: independent stages run at once under the inline executor (checked before anything is written). */
function concurrencyOf(o: { concurrency?: string; redis?: string }): number | undefined {
  if (o.concurrency === undefined) return undefined;
  const n = Number(o.concurrency);
  if (!Number.isInteger(n) || n < 1 || n > 16) throw usageError(`--concurrency: bad value "${o.concurrency}" (a whole number from 1 to 16)`);
  if (redisUrl(o.redis)) throw usageError('--concurrency applies to the inline executor; with Redis, start more workers');
  return n;
}

async function createFromSpec(specFile: string, o: SubmitOpts): Promise<{ runId: string; executor: ExecutorName; url?: string }> {
  await loadStages(specKinds(specFile, o.set));
  const spec = loadSpecFile(specFile, { sets: o.set, lookup: getStage, resolveModel: (name) => modelIdByName(cliDb(), name) });
  const url = redisUrl(o.redis);
  const { runId, executor } = await submitRun(env(), spec, { ...(url ? { redisUrl: url } : {}), specPath: path.resolve(specFile), force: o.force });
  return { runId, executor, ...(url ? { url } : {}) };
}

/** Starts `alignflow runs drive RUN` detached, logging to $ALIGNFLOW_HOME/logs/RUN.log. */
function spawnDriver(runId: string): string {
  const logDir = path.join(alignflowHome(), 'logs');
  fs.mkdirSync(logDir, { recursive: true });
  const logFile = path.join(logDir, `${runId}.log`);
  const out = fs.openSync(logFile, 'a');
  const child = spawn(process.execPath, [...process.execArgv, process.argv[1]!, 'runs', 'drive', runId], {
    detached: true,
    stdio: ['ignore', out, out],
    env: process.env,
  });
  child.unref();
  fs.closeSync(out);
  return logFile;
}

/** ALIGNFLOW_PROGRESS_MS: the pace of progress lines when stdout is not a TTY (default 10 s). */
const progressPace = () => ({ everyMs: Number(process.env.ALIGNFLOW_PROGRESS_MS ?? 10_000) });

/**
 * Follows a run until it ends: drives it here (inline) or watches SQLite + QueueEvents (bullmq),
 * redrawing one line per stage. Ctrl-C cancels the run (checkpoints are kept: `runs resume`).
 */
async function follow(runId: string, opts: { executor: ExecutorName; url?: string; json?: boolean; drive: boolean; concurrency?: number }): Promise<RunStatus> {
  const e = env();
  const tty = process.stdout.isTTY && !opts.json;
  const live = new Map<string, Progress>();
  let drawn = 0;
  const lastState = new Map<string, string>();
  const draw = () => {
    if (opts.json) return;
    const st = runStages(e.db, runId);
    if (tty) {
      const lines = [runLine(e.db, runId), ...st.map((s) => '  ' + stageLine(liveRow(s)))];
      if (drawn) process.stdout.write(`\x1b[${drawn}A`);
      for (const l of lines) process.stdout.write('\x1b[2K' + l + '\n');
      drawn = lines.length;
    } else {
      for (const s of st) {
        if (lastState.get(s.id) !== s.state) {
          lastState.set(s.id, s.state);
          process.stdout.write(stageLine(s) + '\n');
        }
        const line = progress(liveRow(s));
        if (line) process.stdout.write(line + '\n');
      }
    }
  };
  const progress = progressLines(progressPace());
  // Progress that arrived by event (postMessage / QueueEvents) is fresher than the row.
  const liveRow = (s: ReturnType<typeof runStages>[number]) => {
    const p = live.get(s.id);
    return p && s.state === 'running' ? { ...s, progress: { ...((s.progress as object) ?? {}), ...p } } : s;
  };
  const stop = new AbortController();
  let cancelled = false;
  const onSigint = () => {
    if (cancelled) process.exit(130);
    cancelled = true;
    process.stderr.write('\ncancelling run (Ctrl-C again to quit at once)…\n');
    cancelRun(e.db, runId);
  };
  process.on('SIGINT', onSigint);
  const timer = setInterval(draw, tty ? 300 : 1000);
  let watcher: { close(): Promise<void> } | undefined;
  try {
    if (opts.drive) {
      return await driveRun(e, runId, { signal: stop.signal, ...(opts.concurrency ? { concurrency: opts.concurrency } : {}), onProgress: (name, p) => live.set(`${runId}-${name}`, p) });
    }
    if (opts.url) {
      const kinds = [...new Set(runStages(e.db, runId).map((s) => s.kind))];
      watcher = watchProgress(opts.url, kinds, (stageId, p) => live.set(stageId, p));
    }
    for (;;) {
      const s = getRun(e.db, runId).status as RunStatus;
      if (TERMINAL_RUN.includes(s)) return s;
      await new Promise((r) => setTimeout(r, 300));
    }
  } finally {
    clearInterval(timer);
    draw();
    process.off('SIGINT', onSigint);
    await watcher?.close();
  }
}

export function register(program: Command): void {
  program
    .command('run')
    .argument('<spec>', 'pipeline spec file (YAML, see pipelines/)')
    .description('submit a pipeline and follow it to the end (exit 0 succeeded, 1 failed/cancelled, 2 invalid spec)')
    .option('--set <key=value>', 'override a spec field, e.g. stages.dpo.beta=0.2 (repeatable)', collect, [])
    .option('--force <stage>', 'run this stage even if a cached result exists (repeatable)', collect, [])
    .option('--redis <url>', 'use the BullMQ executor (default: $ALIGNFLOW_REDIS_URL, else inline)')
    .option('--concurrency <n>', 'inline executor: independent stages run at once, at most N (default 1)')
    .option('--json', 'print the final run as JSON instead of a live display')
    .action(async (specFile: string, o: SubmitOpts) => {
      const concurrency = concurrencyOf(o);
      const { runId, executor, url } = await createFromSpec(specFile, o);
      if (!o.json) process.stdout.write(`run ${runId} (${executor})\n`);
      const status = await follow(runId, { executor, ...(url ? { url } : {}), json: !!o.json, drive: executor === 'inline', ...(concurrency ? { concurrency } : {}) });
      if (o.json) printJson(runSnapshot(cliDb(), runId));
      else process.stdout.write(runLine(cliDb(), runId) + '\n');
      process.exitCode = exitFor(status);
    });

  program
    .command('submit')
    .argument('<spec>', 'pipeline spec file (YAML, see pipelines/)')
    .description('submit a pipeline and return its run id at once (inline: a detached `runs drive` process runs it)')
    .option('--set <key=value>', 'override a spec field (repeatable)', collect, [])
    .option('--force <stage>', 'ignore the cache for this stage (repeatable)', collect, [])
    .option('--redis <url>', 'use the BullMQ executor (default: $ALIGNFLOW_REDIS_URL, else inline)')
    .option('--json', 'print {id, executor, log} as JSON')
    .action(async (specFile: string, o: SubmitOpts) => {
      const { runId, executor } = await createFromSpec(specFile, o);
      const log = executor === 'inline' ? spawnDriver(runId) : undefined;
      if (o.json) printJson({ id: runId, executor, ...(log ? { log } : {}) });
      else process.stdout.write(runId + '\n');
    });

  const runs = program.command('runs').description('list, inspect, cancel, resume and retry runs');

  runs
    .command('ls')
    .description('list runs, newest first')
    .option('--limit <n>', 'how many (newest first)', '50')
    .option('--json', 'JSON output')
    .action((o: { limit: string; json?: boolean }) => {
      const rows = listRuns(cliDb(), Number(o.limit)).map((r) => ({ id: r.id, name: r.name, status: r.status, executor: r.executor, created: new Date(r.createdAt).toISOString(), error: r.error }));
      if (o.json) printJson(rows);
      else printTable(rows, ['id', 'name', 'status', 'executor', 'created', 'error']);
    });

  runs
    .command('show')
    .description('show a run and its stages (--json: with each stage\'s time, backend, summary, final and eval metrics)')
    .argument('<run>', 'run id (r-…)')
    .option('--json', 'JSON output')
    .action((id: string, o: { json?: boolean }) => {
      const db = cliDb();
      const snap = runSnapshot(db, id);
      if (o.json) return printJson(snap);
      process.stdout.write(runLine(db, id) + '\n');
      for (const s of runStages(db, id)) process.stdout.write('  ' + stageLine(s) + '\n');
      if (snap.error) process.stdout.write(`error: ${snap.error}\n`);
    });

  runs
    .command('metrics')
    .description('print the training metrics a run logged, per stage and step (loss, rewards/accuracies, eval_…)')
    .argument('<run>', 'run id (r-…)')
    .option('--stage <name>', 'only this stage')
    .addOption(new Option('--json', 'print a JSON list of {stage, step, name, value}').conflicts('csv'))
    .option('--csv', 'print CSV: stage,step,name,value')
    .action((id: string, o: { stage?: string; json?: boolean; csv?: boolean }) => {
      const db = cliDb();
      getRun(db, id);
      const points = runMetrics(db, id, o.stage !== undefined ? { stage: o.stage } : {});
      if (o.json) return printJson(points);
      if (o.csv) return void process.stdout.write(metricsCsv(points));
      // Table: one row per (stage, step), one column per metric name.
      const names = [...new Set(points.map((p) => p.name))];
      const rows = new Map<string, Record<string, unknown>>();
      for (const p of points) {
        const k = `${p.stage}\u0000${p.step}`;
        const r = rows.get(k) ?? { stage: p.stage, step: p.step };
        r[p.name] = Number(p.value.toPrecision(6));
        rows.set(k, r);
      }
      printTable([...rows.values()], ['stage', 'step', ...names]);
    });

  runs
    .command('logs')
    .description('print a run\'s event log (stage starts, retries, warnings, takeovers)')
    .argument('<run>', 'run id (r-…)')
    .option('--follow', 'keep printing until the run ends')
    .option('--json', 'JSON lines')
    .action(async (id: string, o: { follow?: boolean; json?: boolean }) => {
      const db = cliDb();
      let last = 0;
      for (;;) {
        for (const ev of runLogs(db, id, last)) {
          last = ev.id;
          if (o.json) process.stdout.write(JSON.stringify(ev) + '\n');
          else process.stdout.write(`${new Date(ev.createdAt).toISOString()} ${ev.level.padEnd(5)} ${ev.message}\n`);
        }
        if (!o.follow || TERMINAL_RUN.includes(getRun(db, id).status as RunStatus)) break;
        await new Promise((r) => setTimeout(r, 500));
      }
    });

  runs
    .command('cancel')
    .description('cancel a run or one of its stages (checkpoints are kept: `runs resume` continues)')
    .argument('<run>', 'run id (r-…)')
    .option('--stage <name>', 'cancel only this stage')
    .action((id: string, o: { stage?: string }) => {
      const n = cancelRun(cliDb(), id, o.stage);
      process.stdout.write(`cancelled ${n} stage(s) of ${id}\n`);
    });

  const resumeLike = async (runId: string, o: { redis?: string; detach?: boolean; json?: boolean }) => {
    const url = redisUrl(o.redis);
    const db = cliDb();
    if (url) {
      const d = new Dispatcher(url);
      try {
        await d.dispatchRun(db, runId);
      } finally {
        await d.close();
      }
      if (o.detach) return void process.stdout.write(runId + '\n');
      process.exitCode = exitFor(await follow(runId, { executor: 'bullmq', url, json: !!o.json, drive: false }));
    } else {
      if (o.detach) return void process.stdout.write(`${runId} (log: ${spawnDriver(runId)})\n`);
      process.exitCode = exitFor(await follow(runId, { executor: 'inline', json: !!o.json, drive: true }));
    }
    if (o.json) printJson(runSnapshot(db, runId));
  };

  runs
    .command('resume')
    .argument('<run>', 'run id (r-…)')
    .description('re-run what did not finish in a failed or cancelled run, or take over a run whose driver or worker is gone (stale heartbeats); training continues from its last checkpoint')
    .option('--redis <url>', 'dispatch to BullMQ workers instead of running here')
    .option('--detach', 'return at once (inline: a detached driver process)')
    .option('--json', 'print the final run as JSON')
    .action(async (id: string, o: { redis?: string; detach?: boolean; json?: boolean }) => {
      await loadStages([]);
      const reset = resumeRun(cliDb(), id);
      if (!o.json) process.stdout.write(`resuming ${id}: ${reset.join(', ') || 'nothing to re-run'}\n`);
      await resumeLike(id, o);
    });

  runs
    .command('retry')
    .argument('<run>', 'run id (r-…)')
    .description('start a new run from the stored spec of RUN (finished stages come back as cached)')
    .option('--force <stage>', 'ignore the cache for this stage (repeatable)', collect, [])
    .option('--redis <url>', 'dispatch to BullMQ workers')
    .option('--detach', 'return at once')
    .option('--json', 'print the final run as JSON')
    .action(async (id: string, o: { force: string[]; redis?: string; detach?: boolean; json?: boolean }) => {
      await loadStages([]);
      const url = redisUrl(o.redis);
      const newId = retryRun(cliDb(), id, { force: o.force, executor: url ? 'bullmq' : 'inline' });
      if (!o.json) process.stdout.write(`run ${newId} (retry of ${id})\n`);
      await resumeLike(newId, o);
    });

  runs
    .command('drive')
    .argument('<run>', 'run id (r-…)')
    .description('run an inline run in this process until it ends (what `submit` starts detached)')
    .action(async (id: string) => {
      await loadStages([]);
      const e = env();
      getRun(e.db, id);
      const stop = new AbortController();
      // SIGTERM: running stages stop at their next step and go back to queued (not cancelled).
      process.once('SIGTERM', () => stop.abort());
      // The detached driver's stdout is its log file: progress lines at the same pace as `run`.
      const progress = progressLines(progressPace());
      const timer = setInterval(() => {
        for (const s of runStages(e.db, id)) {
          const line = progress(s);
          if (line) process.stdout.write(`${new Date().toISOString()} ${line}\n`);
        }
      }, 1000);
      const status = await driveRun(e, id, { signal: stop.signal }).finally(() => clearInterval(timer));
      process.stdout.write(`run ${id} ${status}\n`);
      process.exitCode = exitFor(status);
    });

  runs
    .command('reconcile')
    .description('re-enqueue in Redis every stage SQLite says is queued, waiting or orphaned (after a Redis restart)')
    .option('--redis <url>', 'Redis URL (default: $ALIGNFLOW_REDIS_URL)')
    .action(async (o: { redis?: string }) => {
      const url = redisUrl(o.redis);
      if (!url) throw usageError('reconcile needs --redis URL or ALIGNFLOW_REDIS_URL');
      const d = new Dispatcher(url);
      try {
        const r = await d.reconcile(cliDb());
        process.stdout.write(`reconciled ${r.runs} active run(s); ${r.jobs} job(s) were missing from Redis\n`);
      } finally {
        await d.close();
      }
    });
}
