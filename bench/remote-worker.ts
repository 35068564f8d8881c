// Overhead of a worker on another host against a local one, on a real stage: the SFT stage of
// pipelines/tiny.yaml (fresh micro GPT-2, 20 steps, a checkpoint every 10), run alternately
//   local   runStageAttempt: SQLite and blobs in this process's home;
//   remote  runRemoteAttempt: through a coordinator (buildServer, real HTTP on loopback) with an
//           empty blob cache each time, so the input download and every upload are counted.
// Both run the handler in a worker thread. Wall time of the attempt, `rounds` of each, interleaved.
//   npm run bench -- remote
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Emit } from './index.js';

export async function run(emit: Emit, argv: string[] = []): Promise<void> {
  const roundsAt = argv.indexOf('--rounds');
  const rounds = roundsAt >= 0 ? Number(argv[roundsAt + 1]) : 3;
  const [{ openDb }, { createLocalStore }, { databasePath }, { loadSpecFile }, { getStage, loadStages }, { createRun, runStages }, { advanceRun }, { runStageAttempt }, { runRemoteAttempt }, { buildServer }, { addUser }] = await Promise.all([
    import('../src/store/db.js'),
    import('../src/store/artifacts.js'),
    import('../src/config/paths.js'),
    import('../src/config/spec.js'),
    import('../src/stages/index.js'),
    import('../src/orchestrator/runs.js'),
    import('../src/orchestrator/scheduler.js'),
    import('../src/orchestrator/execute.js'),
    import('../src/orchestrator/remote/attempt.js'),
    import('../src/server/index.js'),
    import('../src/labeling/users.js'),
  ]);
  await loadStages(['model_init', 'sft']);
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'alignflow-bench-remote-'));
  const db = openDb(databasePath(home));
  const store = createLocalStore(db, home);
  const app = await buildServer({ db, home, store });
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  const token = addUser(db, 'bench', 'worker').token;
  const specFile = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../pipelines/tiny.yaml');
  const times: Record<'local' | 'remote', number[]> = { local: [], remote: [] };
  try {
    for (let r = 0; r < rounds; r++) {
      for (const mode of ['local', 'remote'] as const) {
        const spec = loadSpecFile(specFile, { lookup: getStage, sets: [] });
        const runId = await createRun(db, store, spec, { executor: 'bullmq', specPath: specFile, force: ['sft'] });
        advanceRun(db, runId);
        const model = runStages(db, runId).find((s) => s.name === 'model')!;
        if (model.state === 'queued') await runStageAttempt({ db, store, home }, model.id, { workerId: 'bench-local' }); // first round only (then cached)
        advanceRun(db, runId);
        const sft = runStages(db, runId).find((s) => s.name === 'sft')!;
        if (sft.state !== 'queued') throw new Error(`sft is ${sft.state}`);
        const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'alignflow-bench-worker-'));
        const t0 = performance.now();
        const res = mode === 'local' ? await runStageAttempt({ db, store, home }, sft.id, { workerId: 'bench-local' }) : await runRemoteAttempt({ url, token, worker: 'bench', home: cache }, sft.id);
        const ms = performance.now() - t0;
        if (res.status !== 'succeeded') throw new Error(`${mode}: ${JSON.stringify(res)}`);
        times[mode].push(ms);
        fs.rmSync(cache, { recursive: true, force: true });
      }
    }
  } finally {
    await app.close();
    db.$client.close();
    fs.rmSync(home, { recursive: true, force: true });
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const load = fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  emit({ bench: 'remote', name: 'sft_local_median', value: Math.round(median(times.local)), unit: 'ms', rounds, all: times.local.map(Math.round), loadavg: load });
  emit({ bench: 'remote', name: 'sft_remote_median', value: Math.round(median(times.remote)), unit: 'ms', rounds, all: times.remote.map(Math.round), loadavg: load });
  emit({ bench: 'remote', name: 'remote_over_local', value: +(median(times.remote) / median(times.local)).toFixed(3), unit: 'ratio', rounds, loadavg: load });
}
