// Entry of the worker thread that runs a heavy stage handler. It opens its own SQLite connection
// and artifact store (connections cannot cross threads), registers the same extra stage modules
// as its parent, and reports progress and the outcome by postMessage. The parent aborts it with
// {type: 'abort'}.
import { parentPort, workerData } from 'node:worker_threads';
import { openDb } from '../store/db.js';
import { createLocalStore } from '../store/artifacts.js';
import { registerStageModule } from '../stages/index.js';
import { runHandler, runHandlerWith, toPlainError, type PlainOutcome } from './handler-run.js';
import type { RemoteThreadConfig } from './thread.js';
import type { Progress } from '../stages/contract.js';

interface Data {
  dbFile?: string;
  remote?: RemoteThreadConfig;
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
  const hooks = {
    onProgress: (p: Progress) => port.postMessage({ type: 'progress', progress: p }),
    onLog: (level: string, message: string) => port.postMessage({ type: 'log', level, message }),
  };
  let outcome: PlainOutcome;
  if (data.remote) {
    // A worker on another host: no database here, everything goes through the coordinator.
    const { buildRemoteContext } = await import('./remote/attempt.js');
    const remote = data.remote;
    outcome = await runHandlerWith(data.kind, controller.signal, () => buildRemoteContext(remote, remote.job, controller.signal, hooks));
  } else {
    const db = openDb(data.dbFile!);
    const store = createLocalStore(db, data.home);
    outcome = await runHandler(db, store, data.home, data.stageId, data.kind, controller.signal, hooks);
    db.$client.close();
  }
  port.postMessage({ type: 'result', outcome });
} catch (err) {
  port.postMessage({ type: 'result', outcome: toPlainError(err) });
}
port.close();
