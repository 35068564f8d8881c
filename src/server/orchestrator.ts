// The orchestrator as the server sees it (OrchestratorPort): submit and cancel runs.
import YAML from 'yaml';
import { usageError } from '../errors.js';
import type { Db } from '../store/db.js';
import type { ArtifactStore } from '../store/types.js';
import type { OrchestratorPort } from './index.js';

/** The directories files named by API-submitted specs may come from (`serve --data-dir/--judges-dir`). */
export interface ServerInputDirs {
  dataDirs: readonly string[];
  judgesDirs: readonly string[];
}

/**
 * Runs submitted through the API: the spec (JSON) is validated like a spec file, except that it
 * may name files only inside `dirs` (never inside `home`), the run created, then driven in this
 * process (inline executor, in the background) or dispatched to BullMQ.
 */
export async function createOrchestratorPort(db: Db, home: string, store: ArtifactStore, redis?: string, dirs: ServerInputDirs = { dataDirs: [], judgesDirs: [] }): Promise<OrchestratorPort> {
  const [{ loadStages, getStage }, { parseSpec }, runs, { resolveDataset }, { submitRun }] = await Promise.all([
    import('../stages/index.js'),
    import('../config/spec.js'),
    import('../orchestrator/runs.js'),
    import('../data/datasets.js'),
    import('../orchestrator/submit.js'),
  ]);
  const findDataset = (name: string): string | undefined => {
    try {
      return resolveDataset(db, name).artifactId;
    } catch {
      return undefined;
    }
  };
  return {
    async submit(input) {
      await loadStages();
      // The API takes the spec as JSON; the spec parser reads YAML (a superset of JSON) with line numbers.
      const spec = parseSpec(YAML.stringify(input.spec), { lookup: getStage, sets: [], paths: { home, restricted: dirs }, findDataset });
      if (input.executor === 'bullmq' && !redis) throw usageError('executor bullmq needs `alignflow serve --redis URL`');
      const { runId, executor } = await submitRun({ db, store }, spec, { ...(input.executor ? { executor: input.executor } : {}), ...(redis ? { redisUrl: redis } : {}), force: input.force ?? [] });
      if (executor === 'inline') {
        const { driveRun } = await import('../orchestrator/executors/inline.js');
        driveRun({ db, store, home }, runId).catch((err: unknown) => process.stderr.write(`run ${runId}: ${err instanceof Error ? err.message : String(err)}\n`));
      }
      return { runId };
    },
    async cancel(runId, stage) {
      return { cancelled: runs.cancelRun(db, runId, stage) };
    },
  };
}

