// A piped run is not silent: each running stage prints a progress line every 10 s or every 10%
// of its steps, whichever comes first (step, loss, rate, ETA).
import test from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { tmpDir } from '../helpers/tmp.js';
import { runCli, writeFile } from './helpers.js';
import { progressLines } from '../../src/orchestrator/follow.js';

type Row = Parameters<ReturnType<typeof progressLines>>[0];
const row = (step: number, total: number, extra: Record<string, unknown> = {}): Row =>
  ({ id: 's1', name: 'sft', state: 'running', progress: { step, total, metrics: { loss: 2.5 - step / 1000 }, ...extra } }) as unknown as Row;

test('progressLines: every 10 s or every 10% of the stage, whichever first; ETA from the measured rate', () => {
  const next = progressLines();
  assert.equal(next(row(0, 1000), 0), undefined, 'the first sight only starts the clock');
  assert.equal(next(row(20, 1000), 5_000), undefined, 'neither 10 s nor 10% yet');
  const byTime = next(row(40, 1000), 10_000);
  assert.equal(byTime, 'sft: step 40/1000 (4%)  loss 2.4600  4.00 steps/s  ETA 4m00s');
  assert.equal(next(row(60, 1000), 12_000), undefined);
  assert.match(next(row(100, 1000), 13_000)!, /^sft: step 100\/1000 \(10%\)/, '10% passed before the next 10 s');
  assert.equal(next(row(110, 1000), 14_000), undefined);
  // tokens/s from a cumulative token count; no line for a stage that is not running
  const tok = progressLines();
  tok(row(0, 10, { metrics: { num_tokens: 0 } }), 0);
  assert.match(tok(row(1, 10, { metrics: { num_tokens: 5000 } }), 10_000)!, /500 tokens\/s/);
  assert.equal(tok({ ...row(5, 10), state: 'succeeded' } as Row, 30_000), undefined);
});

test('a piped `alignflow run` prints progress lines while a stage runs', { timeout: 120_000 }, () => {
  const dir = tmpDir();
  writeFile(dir, 'data.jsonl', '{"text":"progress"}\n');
  const spec = writeFile(dir, 'p.yaml', `
name: progress
datasets: { data: data.jsonl }
stages:
  a: { kind: count, inputs: { data: datasets.data }, config: { steps: 30, step_ms: 150 } }
`);
  const r = runCli(dir, path.join(dir, 'home'), ['run', spec], { ALIGNFLOW_PROGRESS_MS: '1000' }, 90_000);
  assert.equal(r.code, 0, r.err);
  const lines = r.out.split('\n').filter((l) => /^a: step \d+\/30 \(\d+%\)  loss [\d.]+  [\d.]+ steps\/s  ETA /.test(l));
  console.log(`# ${lines.length} progress lines over a ~4.5 s stage`);
  assert.ok(lines.length >= 3, r.out);
});
