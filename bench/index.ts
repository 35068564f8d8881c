// `npm run bench`: runs every benchmark module in turn; each prints one JSON line per figure.
// To add a module: export `run(emit)` from bench/<name>.ts and append it to MODULES.
import { initBackend } from '../src/ml/backend.js';

export interface Figure {
  bench: string;
  name: string;
  value: number;
  unit: string;
  [extra: string]: unknown;
}
export type Emit = (f: Figure) => void;

const MODULES: { name: string; load: () => Promise<{ run: (emit: Emit, argv: string[]) => Promise<void> }> }[] = [
  { name: 'engine', load: () => import('./engine.js') },
  { name: 'preference', load: () => import('./preference.js') },
  { name: 'labeling', load: () => import('./labeling.js') },
  { name: 'dispatch', load: () => import('./dispatch.js') },
  { name: 'rl', load: () => import('./rl.js') },
  { name: 'remote', load: () => import('./remote-worker.js') },
];

// module names, then options for them (--threads N sets ALIGNFLOW_THREADS before the backend starts)
const args = process.argv.slice(2);
const firstFlag = args.findIndex((a) => a.startsWith('--'));
const only = firstFlag < 0 ? args : args.slice(0, firstFlag);
const opts = firstFlag < 0 ? [] : args.slice(firstFlag);
const threadsAt = opts.indexOf('--threads');
if (threadsAt >= 0) process.env.ALIGNFLOW_THREADS = opts[threadsAt + 1];
const info = await initBackend();
const emit: Emit = (f) => process.stdout.write(JSON.stringify({ ...f, backend: info.name }) + '\n');
for (const m of MODULES) {
  if (only.length && !only.includes(m.name)) continue;
  const t0 = performance.now();
  await (await m.load()).run(emit, opts);
  process.stderr.write(`bench ${m.name}: ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
}
