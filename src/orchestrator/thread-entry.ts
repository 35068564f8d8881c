// Entry of the worker thread that runs a heavy stage handler. It opens its own SQLite connection
// and artifact store (connections cannot cross threads), registers the same extra stage modules
// as its parent, and reports progress and the outcome by postMessage. The parent aborts it with
// {type: 'abort'}.
import { parentPort, workerData } from 'node:worker_threads';
import { openDb } from '../store/db.js';
import { createLocalStore } from '../store/artifacts.js';
import { registerStageModule } from '../stages/index.js';
import { runHandler, toPlainError } from './handler-run.js';

interface Data {
  dbFile: string;
  home: string;
  stageId: string;
  kind: string;
  modules: string[];
}

const data = workerData as Data;
const port = parentPort!;
const controller = new AbortController();
port.on('message', (m: { type: string }) => {
  if (m.type === 'abort') controller.abort(new Error('aborted by parent'));
});

try {
  for (const m of data.modules) await registerStageModule(m);
  const db = openDb(data.dbFile);
  const store = createLocalStore(db, data.home);
  const outcome = await runHandler(db, store, data.home, data.stageId, data.kind, controller.signal, {
    onProgress: (p) => port.postMessage({ type: 'progress', progress: p }),
    onLog: (level, message) => port.postMessage({ type: 'log', level, message }),
  });
  db.$client.close();
  port.postMessage({ type: 'result', outcome });
} catch (err) {
  port.postMessage({ type: 'result', outcome: toPlainError(err) });
}
port.close();
