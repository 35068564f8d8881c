// `alignflow worker`: a BullMQ worker process. Run any number of them. Without --coordinator they
// share this host's SQLite file and blob store ($ALIGNFLOW_HOME); with --coordinator URL (a
// `worker` token) they run on any host, keep only a blob cache in their own home and talk to the
// coordinator (`alignflow serve --redis`) over HTTP, never opening a database (docs/deployment.md);
// every stage kind runs there, the labeling ones included (their labeling database calls go to
// the coordinator too).
import type { Command } from 'commander';
import { cliDb } from '../shared.js';
import { alignflowHome } from '../../config/paths.js';
import { createLocalStore } from '../../store/artifacts.js';
import { loadStages, stageKinds } from '../../stages/index.js';
import { usageError } from '../../errors.js';
import { checkRedisTls, startWorkers } from '../../orchestrator/executors/bullmq.js';
import { remoteDeps } from '../../orchestrator/remote/attempt.js';
import { CoordinatorClient } from '../../orchestrator/remote/client.js';

export function register(program: Command): void {
  program
    .command('worker')
    .description('process pipeline stages from Redis (BullMQ) until SIGTERM/SIGINT')
    .option('--stages <kinds>', 'comma-separated stage kinds to take (default: all registered)')
    .option('--concurrency <n>', 'jobs at once per stage kind', '1')
    .option('--redis <url>', 'Redis URL (default: $ALIGNFLOW_REDIS_URL)')
    .option('--reconcile-ms <ms>', 'how often to rebuild lost queue state from SQLite (0: never)')
    .option('--coordinator <url>', 'run on another host: stage state and artifacts go through this `alignflow serve --redis` (default: $ALIGNFLOW_COORDINATOR_URL)')
    .option('--token <token>', 'with --coordinator: a token of a `worker` user (default: $ALIGNFLOW_WORKER_TOKEN)')
    .option('--grace-ms <ms>', 'on SIGTERM/SIGINT, how long to wait for active steps to checkpoint and for Redis to acknowledge before exiting (default: $ALIGNFLOW_SHUTDOWN_GRACE_MS, else 10000)')
    .action(async (o: { stages?: string; concurrency: string; redis?: string; reconcileMs?: string; graceMs?: string; coordinator?: string; token?: string }) => {
      await loadStages([]); // the plugin modules of ALIGNFLOW_STAGE_MODULES; built-ins below, as needed
      const url = o.redis ?? process.env.ALIGNFLOW_REDIS_URL;
      if (!url) throw usageError('worker needs --redis URL or ALIGNFLOW_REDIS_URL');
      const coordinator = o.coordinator ?? (process.env.ALIGNFLOW_COORDINATOR_URL || undefined);
      const token = o.token ?? (process.env.ALIGNFLOW_WORKER_TOKEN || undefined);
      if (token && !coordinator) throw usageError('--token is for --coordinator');
      if (coordinator && !token) throw usageError('--coordinator needs --token (a `worker` user: alignflow users add NAME --role worker, on the coordinator) or ALIGNFLOW_WORKER_TOKEN');
      const known = stageKinds();
      const kinds = o.stages ? o.stages.split(',').map((s) => s.trim()).filter(Boolean) : known;
      for (const k of kinds) if (!known.includes(k)) throw usageError(`unknown stage kind "${k}" (known: ${known.join(', ')})`);
      await loadStages(kinds);
      const concurrency = Number(o.concurrency);
      if (!Number.isInteger(concurrency) || concurrency < 1) throw usageError('--concurrency must be a positive integer');
      const graceMs = o.graceMs === undefined ? undefined : Number(o.graceMs);
      if (graceMs !== undefined && !(Number.isFinite(graceMs) && graceMs >= 0)) throw usageError('--grace-ms must be a number of milliseconds ≥ 0');
      const home = alignflowHome();
      const say = (m: string) => process.stdout.write(`${new Date().toISOString()} ${m}\n`);
      let deps: Parameters<typeof startWorkers>[0];
      if (coordinator) {
        new CoordinatorClient(coordinator, token!, 'check'); // refuses a malformed URL now, not at the first job
        deps = remoteDeps({ url: coordinator, token: token!, home }, say);
      } else {
        const db = cliDb();
        deps = { db, home, store: createLocalStore(db, home) };
      }
      await checkRedisTls(url); // an untrusted certificate is an error now, not a silent retry loop
      const w = await startWorkers(deps, url, {
        kinds,
        concurrency,
        ...(o.reconcileMs !== undefined ? { reconcileMs: Number(o.reconcileMs) } : {}),
        ...(graceMs !== undefined ? { graceMs } : {}),
        onEvent: say,
      });
      process.stdout.write(`worker ${process.pid} ready: ${kinds.join(', ')} (concurrency ${concurrency})${coordinator ? ` via coordinator ${coordinator}` : ''}\n`);
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
