import test from 'node:test';
import assert from 'node:assert/strict';
import { STAGE_TRANSITIONS, deriveRunStatus, moveStage } from '../../src/orchestrator/state.js';
import { stageCacheKey } from '../../src/orchestrator/cache-key.js';
import { runHistory } from '../../src/orchestrator/context.js';
import { driveRun } from '../../src/orchestrator/executors/inline.js';
import { runStages } from '../../src/orchestrator/runs.js';
import { stageStates } from '../../src/store/schema.js';
import { setup, submit } from './helpers.js';

test('the transition table covers every state; final states have no way out', () => {
  assert.deepEqual(Object.keys(STAGE_TRANSITIONS).sort(), [...stageStates].sort());
  assert.deepEqual(STAGE_TRANSITIONS.succeeded, []);
  assert.deepEqual(STAGE_TRANSITIONS.cached, []);
});

test('moveStage is a compare-and-set and refuses illegal transitions', { timeout: 60_000 }, async () => {
  const env = await setup();
  const id = await submit(env, 'name: s\nstages:\n  a: { kind: join }\n');
  const [a] = runStages(env.db, id);
  assert.equal(a!.state, 'queued');
  assert.throws(() => moveStage(env.db, a!.id, ['queued'], 'succeeded'), /illegal stage transition queued → succeeded/);
  assert.equal(moveStage(env.db, a!.id, ['pending'], 'queued'), false, 'not in the expected state: no change');
  assert.equal(moveStage(env.db, a!.id, ['queued'], 'running'), true);
  assert.equal(moveStage(env.db, a!.id, ['queued'], 'running'), false, 'a second claim loses');
});

test('run status derivation', () => {
  const s = (state: (typeof stageStates)[number], blocked = false) => ({ state, blocked });
  assert.equal(deriveRunStatus([s('succeeded'), s('cached')]), 'succeeded');
  assert.equal(deriveRunStatus([s('succeeded'), s('running'), s('failed')]), 'running');
  assert.equal(deriveRunStatus([s('waiting'), s('pending')]), 'waiting');
  assert.equal(deriveRunStatus([s('failed'), s('pending', true)]), 'failed');
  assert.equal(deriveRunStatus([s('succeeded'), s('pending')]), 'running');
  assert.equal(deriveRunStatus([s('cancelled'), s('succeeded')]), 'cancelled');
});

test('cache keys: canonical (key order free), sensitive to kind, config, inputs and seed', () => {
  const k = stageCacheKey('dpo', { beta: 0.1, loss: 'sigmoid' }, { model: 'a-1', ref: 'a-2' }, 5);
  assert.equal(k, stageCacheKey('dpo', { loss: 'sigmoid', beta: 0.1 }, { ref: 'a-2', model: 'a-1' }, 5));
  for (const other of [
    stageCacheKey('sft', { beta: 0.1, loss: 'sigmoid' }, { model: 'a-1', ref: 'a-2' }, 5),
    stageCacheKey('dpo', { beta: 0.2, loss: 'sigmoid' }, { model: 'a-1', ref: 'a-2' }, 5),
    stageCacheKey('dpo', { beta: 0.1, loss: 'sigmoid' }, { model: 'a-1', ref: 'a-3' }, 5),
    stageCacheKey('dpo', { beta: 0.1, loss: 'sigmoid' }, { model: 'a-1', ref: 'a-2' }, 6),
    stageCacheKey('dpo', { beta: 0.1, loss: 'sigmoid' }, { model: 'a-1', ref: 'a-2' }, 5, 'engine-2'),
  ]) assert.notEqual(other, k);
});

test('runHistory gives the eval stage the run\'s curves (cached stages: their source\'s)', { timeout: 60_000 }, async () => {
  const env = await setup();
  const spec = 'name: h\nstages:\n  a: { kind: count_light, config: { steps: 3, step_ms: 1 } }\n  b: { kind: join, inputs: { x: a } }\n';
  const r1 = await submit(env, spec);
  assert.equal(await driveRun(env, r1), 'succeeded');
  const r2 = await submit(env, spec);
  assert.equal(await driveRun(env, r2), 'succeeded');
  for (const r of [r1, r2]) {
    const h = runHistory(env.db, r);
    const loss = h.curves.find((c) => c.stage === 'a' && c.metric === 'loss');
    assert.deepEqual(loss?.points, [[1, 1], [2, 0.5], [3, 1 / 3]]);
    assert.deepEqual(Object.keys(h.stageConfigs).sort(), ['a', 'b']);
  }
});
