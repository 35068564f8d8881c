// Dispatch overhead of the orchestrator: the latency from one stage's handler returning to the
// next stage's handler starting, with no training in between, for
//   inline  (light handler on the caller's thread; heavy handler in a fresh worker thread)
//   bullmq  (a real redis-server on a free port, one in-process worker).
// A chain of 10 no-op stages; each records its handler's entry/exit time as metrics.
//   npm run bench -- dispatch
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { and, eq } from 'drizzle-orm';
import type { Emit } from './index.js';
import type { StageHandler } from '../src/stages/contract.js';

const noop = (kind: string, heavy: boolean): StageHandler<{ i: number }> => ({
  kind,
  heavy,
  configSchema: z.strictObject({ i: z.number().int() }),
  async run(ctx) {
    const start = Date.now();
    const out = await ctx.store.put({ kind: 'other', name: `noop-${ctx.config.i}`, files: [{ path: 'ids.txt', data: Buffer.from(`${ctx.seed}|${ctx.config.i}|${Object.values(ctx.inputs).map((m) => m.id).join(',')}`) }] });
    ctx.metrics(0, { bench_start: start, bench_end: Date.now() });
    return { status: 'done', outputs: { out } };
  },
});
// Exported so worker threads (registerStageModule) find them too.
export const noopLight = noop('bench_noop', false);
export const noopHeavy = noop('bench_noop_heavy', true);

const N = 10;
const chainSpec = (kind: string) =>
  `name: dispatch\nstages:\n` + Array.from({ length: N }, (_, i) => `  s${i}: { kind: ${kind}, ${i ? `inputs: { prev: s${i - 1} }, ` : ''}config: { i: ${i} } }\n`).join('');

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};

async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = net.createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => res(p));
    });
  });
}

export async function run(emit: Emit): Promise<void> {
  const [{ openDb }, { createLocalStore }, { registerStageModule, getStage }, { parseSpec }, { createRun, runStages }, { driveRun }, bull, { metrics }] = await Promise.all([
    import('../src/store/db.js'),
    import('../src/store/artifacts.js'),
    import('../src/stages/index.js'),
    import('../src/config/spec.js'),
    import('../src/orchestrator/runs.js'),
    import('../src/orchestrator/executors/inline.js'),
    import('../src/orchestrator/executors/bullmq.js'),
    import('../src/store/schema.js'),
  ]);
  await registerStageModule(fileURLToPath(import.meta.url));
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'alignflow-bench-dispatch-'));
  const db = openDb(path.join(home, 'alignflow.db'));
  const store = createLocalStore(db, home);
  const deps = { db, store, home };

  const gaps = (runId: string) => {
    const st = runStages(db, runId);
    const t = st.map((s) => {
      const m = db.select().from(metrics).where(and(eq(metrics.stageId, s.id))).all();
      return { start: m.find((x) => x.name === 'bench_start')!.value, end: m.find((x) => x.name === 'bench_end')!.value };
    });
    return t.slice(1).map((x, i) => x.start - t[i]!.end);
  };
  const report = (mode: string, g: number[]) => {
    emit({ bench: 'dispatch', name: `${mode}_p50`, value: pct(g, 50), unit: 'ms', stages: N });
    emit({ bench: 'dispatch', name: `${mode}_max`, value: Math.max(...g), unit: 'ms', stages: N });
  };
  // Each mode gets a distinct seed so nothing is served from the cache.
  let seed = 0;
  const submit = (kind: string, executor: 'inline' | 'bullmq') =>
    createRun(db, store, parseSpec(chainSpec(kind).replace('name: dispatch\n', `name: dispatch\nseed: ${++seed}\n`), { lookup: getStage }), { executor });

  try {
    const r1 = await submit('bench_noop', 'inline');
    await driveRun(deps, r1);
    report('inline_light', gaps(r1));
    const r2 = await submit('bench_noop_heavy', 'inline');
    await driveRun(deps, r2);
    report('inline_heavy_thread', gaps(r2));

    let url = process.env.ALIGNFLOW_BENCH_REDIS_URL;
    let redis: ReturnType<typeof spawn> | undefined;
    if (!url) {
      const port = await freePort();
      redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
      redis.on('error', () => undefined);
      url = `redis://127.0.0.1:${port}`;
      await new Promise((r) => setTimeout(r, 300));
    }
    try {
      const w = await bull.startWorkers(deps, url, { kinds: ['bench_noop', 'bench_noop_heavy'], reconcileMs: 0 });
      try {
        for (const [kind, mode] of [['bench_noop', 'bullmq_light'], ['bench_noop_heavy', 'bullmq_heavy_thread']] as const) {
          const id = await submit(kind, 'bullmq');
          await w.dispatcher.dispatchRun(db, id);
          const end = Date.now() + 60_000;
          while (!['succeeded', 'failed'].includes(runStatus(id)) && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
          if (runStatus(id) !== 'succeeded') throw new Error(`bullmq dispatch run ${id} did not finish`);
          report(mode, gaps(id));
        }
      } finally {
        await w.shutdown();
      }
    } catch (err) {
      process.stderr.write(`dispatch bench: bullmq part skipped: ${(err as Error).message}\n`);
    } finally {
      redis?.kill('SIGKILL');
    }
  } finally {
    db.$client.close();
    fs.rmSync(home, { recursive: true, force: true });
  }

  function runStatus(id: string): string {
    return (db.$client.prepare('SELECT status FROM runs WHERE id = ?').get(id) as { status: string }).status;
  }
}
