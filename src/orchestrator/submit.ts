// Submitting a run, written once for the CLI (`alignflow run`), the demo and the server: the run's
// inputs imported and its rows written (createRun), then handed to BullMQ when that executor is
// chosen. Driving an inline run is left to the caller (in the foreground with a display, in a
// detached driver, or in the server's background), since that is where they differ.
import type { Db } from '../store/db.js';
import type { ArtifactStore } from '../store/types.js';
import type { PipelineSpec } from '../config/spec.js';
import { usageError } from '../errors.js';
import { createRun, type ExecutorName } from './runs.js';

export interface SubmitOptions {
  /** Default: bullmq when a Redis URL is given, else inline. */
  executor?: ExecutorName;
  redisUrl?: string;
  specPath?: string;
  force?: string[];
}

export async function submitRun(deps: { db: Db; store: ArtifactStore }, spec: PipelineSpec, o: SubmitOptions = {}): Promise<{ runId: string; executor: ExecutorName }> {
  const executor = o.executor ?? (o.redisUrl ? 'bullmq' : 'inline');
  if (executor === 'bullmq' && !o.redisUrl) throw usageError('the bullmq executor needs a Redis URL (--redis URL or ALIGNFLOW_REDIS_URL)');
  // An untrusted rediss:// certificate is refused before any row is written.
  if (executor === 'bullmq') await (await import('./executors/bullmq.js')).checkRedisTls(o.redisUrl!);
  const runId = await createRun(deps.db, deps.store, spec, { executor, force: o.force ?? [], ...(o.specPath ? { specPath: o.specPath } : {}) });
  if (executor === 'bullmq') {
    const { Dispatcher } = await import('./executors/bullmq.js');
    const d = new Dispatcher(o.redisUrl!);
    try {
      await d.dispatchRun(deps.db, runId);
    } finally {
      await d.close();
    }
  }
  return { runId, executor };
}
