// `alignflow run --concurrency N`: independent stages of an inline run overlap in time; a bad value
// is refused before anything is written.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { tmpDir } from '../helpers/tmp.js';
import { runCli, writeFile } from './helpers.js';

const spec = (dir: string) => {
  writeFile(dir, 'data.jsonl', '{"text":"concurrency"}\n');
  return writeFile(dir, 'p.yaml', `
name: concurrency
datasets: { data: data.jsonl }
stages:
  a: { kind: count, inputs: { data: datasets.data }, config: { steps: 6, step_ms: 150 } }
  b: { kind: count, inputs: { data: datasets.data }, config: { steps: 7, step_ms: 150 } }
`);
};
type Stage = { name: string; startedAt: number; finishedAt: number };
const stagesOf = (out: string) => (JSON.parse(out) as { stages: Stage[] }).stages;
const overlap = (s: Stage[]) => {
  const [a, b] = [s.find((x) => x.name === 'a')!, s.find((x) => x.name === 'b')!];
  return a.startedAt < b.finishedAt && b.startedAt < a.finishedAt;
};

test('run --concurrency 2 runs independent stages at once; the default runs them one after the other', { timeout: 120_000 }, () => {
  const dir = tmpDir();
  const file = spec(dir);
  const two = runCli(dir, path.join(dir, 'home2'), ['run', file, '--concurrency', '2', '--json']);
  assert.equal(two.code, 0, two.err);
  assert.ok(overlap(stagesOf(two.out)), 'a and b overlapped');
  const one = runCli(dir, path.join(dir, 'home1'), ['run', file, '--json']);
  assert.equal(one.code, 0, one.err);
  assert.ok(!overlap(stagesOf(one.out)), 'one at a time by default');
});

test('run --concurrency refuses a bad value, and Redis, with exit code 2 and writes nothing', { timeout: 60_000 }, () => {
  const dir = tmpDir();
  const file = spec(dir);
  for (const [args, msg] of [
    [['--concurrency', '0'], /--concurrency: bad value "0"/],
    [['--concurrency', '1.5'], /--concurrency: bad value "1.5"/],
    [['--concurrency', '2', '--redis', 'redis://127.0.0.1:1'], /inline executor/],
  ] as const) {
    const home = path.join(dir, 'home');
    const r = runCli(dir, home, ['run', file, ...args]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`);
    assert.match(r.err, msg);
    assert.ok(!fs.existsSync(path.join(home, 'alignflow.db')), 'no database created');
  }
});
