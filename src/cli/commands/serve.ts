// `alignflow serve`: the JSON API and the web UI in one process. Runs submitted through the API
// are driven in this process (inline executor) or dispatched to BullMQ workers (--redis).
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { cliDb } from '../shared.js';
import { alignflowHome } from '../../config/paths.js';
import { realpathLoose } from '../../config/input-paths.js';
import { usageError } from '../../errors.js';
import { buildServer } from '../../server/index.js';
import { createOrchestratorPort } from '../../server/orchestrator.js';
import { createLocalStore } from '../../store/artifacts.js';
import type { Db } from '../../store/db.js';
import type { CoordinatorHooks } from '../../server/routes/coordinator.js';

interface ServeOpts {
  port: string;
  host: string;
  redis?: string;
  log?: boolean;
  dataDir: string[];
  judgesDir: string[];
}

const collect = (v: string, prev: string[]) => [...prev, v];

/** A --data-dir/--judges-dir value: an existing directory outside ALIGNFLOW_HOME, as its realpath. */
function inputDir(flag: string, dir: string, home: string): string {
  let real: string;
  try {
    real = fs.realpathSync(dir);
  } catch {
    throw usageError(`${flag} ${dir} does not exist`);
  }
  if (!fs.statSync(real).isDirectory()) throw usageError(`${flag} ${dir} is not a directory`);
  const h = realpathLoose(home);
  // (A folder that holds ALIGNFLOW_HOME is allowed: files under the home are refused one by one.)
  if (real === h || real.startsWith(h + path.sep)) throw usageError(`${flag} ${dir} is inside ALIGNFLOW_HOME (${home}); alignflow never reads its own state as input`);
  return real;
}

/** The coordinator's Redis side: dispatch after remote attempts, and a periodic reconcile. */
async function startCoordinator(db: Db, url: string): Promise<{ hooks: CoordinatorHooks; close(): Promise<void> }> {
  const { Dispatcher, RedisOutage, afterAttempt, checkRedisTls } = await import('../../orchestrator/executors/bullmq.js');
  await checkRedisTls(url);
  const say = (m: string) => process.stdout.write(`${new Date().toISOString()} ${m}\n`);
  const outage = new RedisOutage(url, say);
  const dispatcher = new Dispatcher(url, outage.connect(url));
  let busy = false;
  const tick = async () => {
    if (busy) return;
    busy = true;
    try {
      const r = await dispatcher.reconcile(db);
      if (r.jobs > 0) say(`reconcile: re-enqueued ${r.jobs} job(s) Redis had lost`);
    } catch (err) {
      if (!outage.error(err)) say(`reconcile failed: ${(err as Error).message}`);
    } finally {
      busy = false;
    }
  };
  const ms = Number(process.env.ALIGNFLOW_RECONCILE_MS ?? 5000);
  const timer = ms > 0 ? setInterval(() => void tick(), ms) : undefined;
  dispatcher.connection.on('ready', () => void tick());
  return {
    hooks: { afterAttempt: (runId, stageId, res) => afterAttempt(dispatcher, db, runId, stageId, res).catch((err) => void (outage.error(err) || say(`dispatch after ${stageId} failed: ${(err as Error).message} (reconcile retries)`))) },
    async close() {
      if (timer) clearInterval(timer);
      await dispatcher.close().catch(() => undefined);
    },
  };
}

export function register(program: Command): void {
  program
    .command('serve')
    .description('serve the JSON API (/api, /openapi.json) and the labeling web UI (/)')
    .option('--port <n>', 'port to listen on', '8765')
    .option('--host <addr>', 'address to bind (0.0.0.0 for every interface)', '127.0.0.1')
    .option('--redis <url>', 'dispatch runs submitted through the API to BullMQ (default: $ALIGNFLOW_REDIS_URL, else inline)')
    .option('--data-dir <dir>', 'a folder whose files (datasets, models, gold and label files) specs sent through the API may name (repeatable; default: none, only artifact ids and dataset names)', collect, [])
    .option('--judges-dir <dir>', 'a folder whose judge modules specs sent through the API may name (repeatable; default: none)', collect, [])
    .option('--log', 'log every request (internal errors are always logged to stderr)')
    .action(async (o: ServeOpts) => {
      const port = Number(o.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw usageError(`--port must be 0..65535, got "${o.port}"`);
      const db = cliDb();
      const home = alignflowHome();
      const store = createLocalStore(db, home);
      const redis = o.redis ?? (process.env.ALIGNFLOW_REDIS_URL || undefined);
      const dirs = { dataDirs: o.dataDir.map((d) => inputDir('--data-dir', d, home)), judgesDirs: o.judgesDir.map((d) => inputDir('--judges-dir', d, home)) };
      // With Redis this is also the coordinator of remote workers (`worker --coordinator`): it
      // records their attempts, dispatches what follows, and rebuilds lost queue state from SQLite.
      const coord = redis ? await startCoordinator(db, redis) : undefined;
      const app = await buildServer({ db, home, store, orchestrator: await createOrchestratorPort(db, home, store, redis, dirs), logger: !!o.log, ...(coord ? { coordinator: coord.hooks } : {}) });
      const address = await app.listen({ port, host: o.host });
      const users = (db.$client.prepare('SELECT count(*) AS n FROM users WHERE disabled = 0').get() as { n: number }).n;
      process.stdout.write(`alignflow serving ${address}  (API: ${address}/api, OpenAPI: ${address}/openapi.json)\n`);
      if (users === 0) process.stdout.write('no users yet: create one with `alignflow users add NAME --role admin` and sign in with its token\n');
      await new Promise<void>((resolve) => {
        const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
        const stop = (sig: string) => {
          for (const s of signals) process.off(s, stop);
          process.stdout.write(`${sig}: closing the server (requests in flight finish first)…\n`);
          void app.close().then(async () => {
            await coord?.close();
            process.stdout.write('alignflow server stopped\n');
            resolve();
          });
        };
        for (const s of signals) process.on(s, stop);
      });
    });
}
