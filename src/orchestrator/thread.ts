// Runs a heavy handler in a node:worker_threads thread so the process's event loop stays free:
// the CLI keeps drawing, the server keeps answering, and a BullMQ worker keeps renewing its job
// lock (an event loop blocked by training loses the lock and the job runs twice: measured.md).
import { Worker } from 'node:worker_threads';
import { stageModules } from '../stages/index.js';
import type { Progress } from '../stages/contract.js';
import type { PlainOutcome } from './handler-run.js';
import type { StageJob } from './context.js';

/** A remote worker's thread talks to the coordinator itself (see ./remote/attempt.ts). */
export interface RemoteThreadConfig {
  url: string;
  token: string;
  worker: string;
  home: string;
  job: StageJob;
}

const fromTs = import.meta.url.endsWith('.ts');

export function runHandlerInThread(
  args: { dbFile?: string; home: string; stageId: string; kind: string; remote?: RemoteThreadConfig },
  signal: AbortSignal,
  hooks: { onProgress?: (p: Progress) => void; onLog?: (level: string, msg: string) => void } = {},
): Promise<PlainOutcome> {
  // Under tsx (tests, dev) the thread must load TypeScript too; from dist/ it is plain JS.
  // (`execArgv: ['--import', 'tsx']` does not reach a thread's entry on Node 20, so a tiny eval'd
  // bootstrap registers tsx's loader first, then imports the TypeScript entry.)
  const entry = new URL(fromTs ? './thread-entry.ts' : './thread-entry.js', import.meta.url);
  const workerData = { ...args, modules: stageModules() };
  const worker = fromTs
    ? new Worker(
        `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((m) => { m.register(); return import(${JSON.stringify(entry.href)}); });`,
        { eval: true, workerData },
      )
    : new Worker(entry, { workerData });
  return new Promise<PlainOutcome>((resolve) => {
    let outcome: PlainOutcome | undefined;
    const onAbort = () => worker.postMessage({ type: 'abort' });
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    worker.on('message', (m: { type: string; progress?: Progress; level?: string; message?: string; outcome?: PlainOutcome }) => {
      if (m.type === 'progress' && m.progress) hooks.onProgress?.(m.progress);
      else if (m.type === 'log') hooks.onLog?.(m.level!, m.message!);
      else if (m.type === 'result') outcome = m.outcome;
    });
    worker.on('error', (err) => {
      outcome ??= { status: 'error', kind: 'internal', message: `stage thread crashed: ${err.message}` };
    });
    worker.on('exit', (code) => {
      signal.removeEventListener('abort', onAbort);
      resolve(outcome ?? { status: 'error', kind: 'internal', message: `stage thread exited with code ${code} before finishing` });
    });
  });
}
