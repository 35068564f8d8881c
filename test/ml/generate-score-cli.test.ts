// `alignflow generate` and `alignflow score` end to end, as a user runs them (own ALIGNFLOW_HOME).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { tmpDir } from '../helpers/tmp.js';
import { GPT2_FIXTURES } from '../helpers/fixtures.js';

const FIX = GPT2_FIXTURES;
const home = tmpDir();
const cli = (...args: string[]) => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { encoding: 'utf8', env: { ...process.env, ALIGNFLOW_HOME: home }, timeout: 120_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
};

test('generate --json: greedy is repeatable, --no-cache agrees, --n samples per prompt', () => {
  const a = cli('generate', '--model', path.join(FIX, 'model-fp32'), '--prompt', 'The weather today is', '--prompt', 'Hi', '--max-new-tokens', '6', '--temperature', '0', '--json');
  assert.equal(a.code, 0, a.err);
  const ja = JSON.parse(a.out) as { results: { prompt: string; completions: { token_ids: number[]; text: string }[] }[] };
  assert.equal(ja.results.length, 2);
  const b = cli('generate', '--model', path.join(FIX, 'model-fp32'), '--prompt', 'The weather today is', '--prompt', 'Hi', '--max-new-tokens', '6', '--temperature', '0', '--no-cache', '--json');
  assert.deepEqual((JSON.parse(b.out) as typeof ja).results, ja.results);
  const c = cli('generate', '--model', path.join(FIX, 'model-fp32'), '--prompt', 'Hi', '--n', '3', '--max-new-tokens', '4', '--seed', '5', '--json');
  assert.equal((JSON.parse(c.out) as typeof ja).results[0]!.completions.length, 3);
  const bad = cli('generate', '--model', path.join(FIX, 'model-fp32'), '--prompt', 'x', '--top-p', '2');
  assert.equal(bad.code, 2);
  assert.match(bad.err, /top-p/);
  assert.equal(cli('generate', '--model', 'a-ffffffffffff', '--prompt', 'x').code, 2);
});

test('score --json on an imported preference dataset matches the reference values', () => {
  const file = path.join(home, 'pairs.jsonl');
  // the fixture's 7th record has an empty prompt, which dataset import rejects: keep the others
  const lines = fs.readFileSync(path.join(FIX, 'pairs.jsonl'), 'utf8').split('\n').filter(Boolean);
  const keep = lines.map((l, i) => ({ l, i })).filter(({ l }) => (JSON.parse(l) as { prompt: string }).prompt !== '');
  fs.writeFileSync(file, keep.map((k) => k.l).join('\n') + '\n');
  const imp = cli('datasets', 'import', file, '--name', 'pairs');
  assert.equal(imp.code, 0, imp.err);
  const r = cli('score', '--model', path.join(FIX, 'model-fp32'), '--dataset', 'pairs', '--no-eos', '--batch-size', '2', '--json');
  assert.equal(r.code, 0, r.err);
  const got = JSON.parse(r.out) as { kind: string; scores: { chosen_logps: number; rejected_logps: number }[] };
  assert.equal(got.kind, 'preference');
  const want = fs.readFileSync(path.join(FIX, 'model-fp32.pairs.expected.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { chosen_logps: number; rejected_logps: number });
  keep.forEach(({ i }, j) => {
    assert.ok(Math.abs(got.scores[j]!.chosen_logps - want[i]!.chosen_logps) < 2e-3 + 1e-5 * Math.abs(want[i]!.chosen_logps));
    assert.ok(Math.abs(got.scores[j]!.rejected_logps - want[i]!.rejected_logps) < 2e-3 + 1e-5 * Math.abs(want[i]!.rejected_logps));
  });
  assert.equal(cli('score', '--dataset', 'pairs').code, 2); // no --model
});
