// `alignflow models show` estimates activations as the stages' pre-flight check does on the backend
// that would train here: fused (native) or not (wasm), so the two never disagree.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { tmpDir } from '../helpers/tmp.js';
import { activationBytes } from '../../src/ml/memory.js';
import { PRESETS, modelFamily } from '../../src/ml/models/registry.js';
import { backendUnavailable } from '../../src/ml/backend.js';

const home = tmpDir();
const nativeMissing = await backendUnavailable('native');
const show = (backend: string) => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'models', 'show', 'gpt2-small', '--batch', '4', '--seq-len', '256', '--json'], { env: { ...process.env, ALIGNFLOW_HOME: home, ALIGNFLOW_BACKEND: backend }, encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as { backend: string; micro_batch: { fused: boolean }; full: { activations: number }; lora: { activations: number } };
};
const shape = modelFamily('gpt2')!.shape(modelFamily('gpt2')!.withDefaults(PRESETS['gpt2-small']!));

test('models show: wasm counts the unfused activations', { timeout: 120_000 }, () => {
  const w = show('wasm');
  assert.equal(w.backend, 'wasm');
  assert.equal(w.micro_batch.fused, false);
  assert.equal(w.full.activations, activationBytes(shape, 4, 256, false));
});

test('models show: native counts the fused kernels\' activations', { timeout: 120_000, skip: nativeMissing ?? false }, () => {
  const n = show('native');
  assert.equal(n.backend, 'native');
  assert.equal(n.micro_batch.fused, true);
  assert.equal(n.full.activations, activationBytes(shape, 4, 256, true));
  assert.ok(n.full.activations < activationBytes(shape, 4, 256, false));
});

test('models show: a Llama-family model is counted unfused on native too (its RMSNorm and SwiGLU are not fused)', { timeout: 120_000, skip: nativeMissing ?? false }, () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'models', 'show', 'smollm2-135m', '--batch', '2', '--seq-len', '128', '--json'], { env: { ...process.env, ALIGNFLOW_HOME: home, ALIGNFLOW_BACKEND: 'native' }, encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout) as { micro_batch: { fused: boolean }; full: { activations: number } };
  assert.equal(j.micro_batch.fused, false);
  const llama = modelFamily('llama')!;
  assert.equal(j.full.activations, activationBytes(llama.shape(llama.withDefaults(PRESETS['smollm2-135m']!)), 2, 128, false));
});
