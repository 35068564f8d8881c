// Runs through the API: an admin submits a pipeline (driven inline by the server), watches it wait
// for labels, and cancels it; viewers read; bad specs are refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { tmpDir } from '../helpers/tmp.js';
import { openDb } from '../../src/store/db.js';
import { createLocalStore } from '../../src/store/artifacts.js';
import { databasePath } from '../../src/config/paths.js';
import { registerStageModule } from '../../src/stages/index.js';
import { buildServer } from '../../src/server/index.js';
import { createOrchestratorPort } from '../../src/server/orchestrator.js';
import { addUser } from '../../src/labeling/users.js';
import { bearer } from './helpers.js';

test('admin submits and cancels a run over the API; viewer reads it; bad specs get 400', { timeout: 120_000 }, async () => {
  await registerStageModule(fileURLToPath(new URL('../labeling/fixtures/stages.ts', import.meta.url)));
  const home = tmpDir('alignflow-runs-api-');
  const db = openDb(databasePath(home));
  const store = createLocalStore(db, home);
  const app = await buildServer({ db, home, store, orchestrator: await createOrchestratorPort(db, home, store) });
  try {
    const admin = addUser(db, 'root', 'admin').token;
    const viewer = addUser(db, 'v', 'viewer').token;
    const spec = { name: 'api-run', seed: 1, stages: { pairs: { kind: 'fake_pairs', config: { n: 2 } }, label: { kind: 'label', inputs: { pairs: 'pairs' }, config: { labeler: 'human', poll_ms: 100 } } } };
    assert.equal((await app.inject({ method: 'POST', url: '/api/runs', headers: bearer(viewer), payload: { spec } })).statusCode, 403);
    const bad = await app.inject({ method: 'POST', url: '/api/runs', headers: bearer(admin), payload: { spec: { ...spec, stages: { x: { kind: 'label', config: { labeler: 'oracle' } } } } } });
    assert.equal(bad.statusCode, 400, bad.body);
    const r = await app.inject({ method: 'POST', url: '/api/runs', headers: bearer(admin), payload: { spec } });
    assert.equal(r.statusCode, 201, r.body);
    const runId = r.json().runId as string;
    let stages: { name: string; state: string }[] = [];
    for (let i = 0; i < 200; i++) {
      const g = await app.inject({ method: 'GET', url: `/api/runs/${runId}`, headers: bearer(viewer) });
      assert.equal(g.statusCode, 200);
      stages = g.json().stages;
      if (stages.find((s) => s.name === 'label')?.state === 'waiting') break;
      await new Promise((res) => setTimeout(res, 50));
    }
    assert.equal(stages.find((s) => s.name === 'label')?.state, 'waiting');
    assert.equal((await app.inject({ method: 'POST', url: `/api/runs/${runId}/cancel`, headers: bearer(viewer), payload: {} })).statusCode, 403);
    const c = await app.inject({ method: 'POST', url: `/api/runs/${runId}/cancel`, headers: bearer(admin), payload: {} });
    assert.equal(c.statusCode, 200, c.body);
    const after = (await app.inject({ method: 'GET', url: `/api/runs/${runId}`, headers: bearer(admin) })).json();
    assert.equal(after.run.status, 'cancelled');
    const list = (await app.inject({ method: 'GET', url: '/api/runs', headers: bearer(viewer) })).json();
    assert.equal(list.runs[0].id, runId);
  } finally {
    await app.close();
  }
});
