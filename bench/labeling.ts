// Labeling service latency under 20 concurrent labelers: real HTTP on loopback against a real
// SQLite file (WAL). Each labeler loops "fetch next assignment" → "submit label" until the batch
// is done or the time bound passes. Prints p50/p95/p99 of both requests, one JSON line per figure.
//   npx tsx bench/labeling.ts        (or through npm run bench)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { AddressInfo } from 'node:net';
import { openDb } from '../src/store/db.js';
import { buildServer } from '../src/server/index.js';
import { addUser } from '../src/labeling/users.js';
import { addPairs, createBatch } from '../src/labeling/batches.js';
import { Worker } from 'node:worker_threads';
import type { Emit } from './index.js';

const CLIENT = `
const { parentPort, workerData } = require('node:worker_threads');
const { base, batchId, tokens, deadline } = workerData;
const next = [], submit = [];
Promise.all(tokens.map(async (token, li) => {
  const h = { authorization: 'Bearer ' + token };
  while (Date.now() < deadline) {
    let t = performance.now();
    const r = await fetch(base + '/api/labeling/batches/' + batchId + '/next', { method: 'POST', headers: h });
    const body = await r.json();
    next.push(performance.now() - t);
    if (!body.assignment) return;
    t = performance.now();
    const s = await fetch(base + '/api/labeling/assignments/' + body.assignment.assignmentId + '/label', {
      method: 'POST', headers: { ...h, 'content-type': 'application/json' },
      body: JSON.stringify({ choice: li % 2 ? 'left' : 'right', durationMs: 1000 }),
    });
    await s.arrayBuffer();
    if (s.status !== 200) throw new Error('submit answered ' + s.status);
    submit.push(performance.now() - t);
  }
})).then(() => parentPort.postMessage({ next, submit }), (e) => { throw e; });
`;

const LABELERS = 20;
const PAIRS = 400;
const QUOTA = 3;
const MAX_SECONDS = 60;

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]!;
}

export async function run(emit: Emit): Promise<void> {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'alignflow-bench-labeling-'));
  const db = openDb(path.join(home, 'alignflow.db'));
  const app = await buildServer({ db, home });
  try {
    await app.listen({ port: 0, host: '127.0.0.1' });
    const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    const batch = createBatch(db, { name: 'bench', quota: QUOTA });
    const text = (i: number, s: string) => `Response ${s} to prompt ${i}. `.repeat(20);
    addPairs(db, batch.id, Array.from({ length: PAIRS }, (_, i) => ({ prompt: `Prompt ${i}: explain something in a few sentences.`, a: { text: text(i, 'A') }, b: { text: text(i, 'B') } })));
    const tokens = Array.from({ length: LABELERS }, (_, i) => addUser(db, `bench${i}`, 'labeler').token);
    // The labelers run in a worker thread, so the clients' own work does not sit on the server's
    // event loop (as it would not with real browsers).
    const t0 = performance.now();
    const { next, submit } = await new Promise<{ next: number[]; submit: number[] }>((resolve, reject) => {
      const w = new Worker(CLIENT, { eval: true, workerData: { base, batchId: batch.id, tokens, deadline: Date.now() + MAX_SECONDS * 1000 } });
      w.once('message', resolve);
      w.once('error', reject);
    });
    const wall = (performance.now() - t0) / 1000;
    const common = { labelers: LABELERS, pairs: PAIRS, quota: QUOTA, transport: 'http-loopback', db: 'sqlite-wal', cpus: os.cpus().length, loadavg1: Number(os.loadavg()[0]!.toFixed(2)) };
    for (const [name, xs] of [['next_assignment', next], ['submit_label', submit]] as const) {
      for (const q of [0.5, 0.95, 0.99] as const) emit({ bench: 'labeling', name: `${name}_p${Math.round(q * 100)}`, value: Number(quantile(xs, q).toFixed(2)), unit: 'ms', requests: xs.length, ...common });
    }
    emit({ bench: 'labeling', name: 'labels_per_second', value: Number((submit.length / wall).toFixed(1)), unit: 'labels/s', ...common });
  } finally {
    await app.close();
    db.$client.close();
    fs.rmSync(home, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await run((f) => process.stdout.write(JSON.stringify(f) + '\n'));
}
