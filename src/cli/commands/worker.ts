// `alignflow worker`: a BullMQ worker process. Run any number of them, on any hosts that share
// the SQLite file and the blob store ($ALIGNFLOW_HOME) and reach the same Redis.
import type { Command } from 'commander';
import { cliDb } from '../shared.js';
import { alignflowHome } from '../../config/paths.js';
import { createLocalStore } from '../../store/artifacts.js';
import { loadStages, stageKinds } from '../../stages/index.js';
import { usageError } from '../../errors.js';
import { startWorkers } from '../../orchestrator/executors/bullmq.js';

export function register(program: Command): void {
  program
    .command('worker')
    .description('process pipeline stages from Redis (BullMQ) until SIGTERM/SIGINT')
    .option('--stages <kinds>', 'comma-separated stage kinds to take (default: all registered)')
    .option('--concurrency <n>', 'jobs at once per stage kind', '1')
    .option('--redis <url>', 'Redis URL (default: $ALIGNFLOW_REDIS_URL)')
    .option('--reconcile-ms <ms>', 'how often to rebuild lost queue state from SQLite (0: never)')
    .option('--grace-ms <ms>', 'on SIGTERM/SIGINT, how long to wait for active steps to checkpoint and for Redis to acknowledge before exiting (default: $ALIGNFLOW_SHUTDOWN_GRACE_MS, else 10000)')
    .action(async (o: { stages?: string; concurrency: string; redis?: string; reconcileMs?: string; graceMs?: string }) => {
      await loadStages([]); // the plugin modules of ALIGNFLOW_STAGE_MODULES; built-ins below, as needed
      const url = o.redis ?? process.env.ALIGNFLOW_REDIS_URL;
      if (!url) throw usageError('worker needs --redis URL or ALIGNFLOW_REDIS_URL');
      const known = stageKinds();
      const kinds = o.stages ? o.stages.split(',').map((s) => s.trim()).filter(Boolean) : known;
      for (const k of kinds) if (!known.includes(k)) throw usageError(`unknown stage kind "${k}" (known: ${known.join(', ')})`);
      await loadStages(kinds);
      const concurrency = Number(o.concurrency);
      if (!Number.isInteger(concurrency) || concurrency < 1) throw usageError('--concurrency must be a positive integer');
      const graceMs = o.graceMs === undefined ? undefined : Number(o.graceMs);
      if (graceMs !== undefined && !(Number.isFinite(graceMs) && graceMs >= 0)) throw usageError('--grace-ms must be a number of milliseconds ≥ 0');
      const db = cliDb();
      const home = alignflowHome();
      const w = await startWorkers({ db, home, store: createLocalStore(db, home) }, url, {
        kinds,
        concurrency,
        ...(o.reconcileMs !== undefined ? { reconcileMs: Number(o.reconcileMs) } : {}),
        ...(graceMs !== undefined ? { graceMs } : {}),
        onEvent: (m) => process.stdout.write(`${new Date().toISOString()} ${m}\n`),
      });
      process.stdout.write(`worker ${process.pid} ready: ${kinds.join(', ')} (concurrency ${concurrency})\n`);
      await new Promise<void>((resolve) => {
        const stop = async (sig: string) => {
          process.stdout.write(`${sig}: stopping (active steps checkpoint and re-queue)…\n`);
          await w.shutdown();
          process.stdout.write(`worker ${process.pid} stopped\n`);
          // Everything is recorded and closed; a client library's stray timer must not keep the process alive.
          setTimeout(() => process.exit(process.exitCode ?? 0), 2000).unref();
          resolve();
        };
        process.once('SIGTERM', () => void stop('SIGTERM'));
        process.once('SIGINT', () => void stop('SIGINT'));
      });
    });
}
