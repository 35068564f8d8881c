// The datasets bundled in datasets/ are exactly what the documented command writes with the
// default seed and options: nobody edits them by hand, and a generator change cannot slip by.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { spawnSync } from 'node:child_process';
import { tmpDir } from '../helpers/tmp.js';

const root = path.resolve(import.meta.dirname, '../..');

function runCli(args: string[]) {
  return spawnSync(process.execPath, ['--import', 'tsx', path.join(root, 'src/cli/main.ts'), ...args], { cwd: root, encoding: 'utf8', timeout: 120_000 });
}

for (const task of ['sentiment', 'count', 'mixed']) {
  test(`datasets/${task} equals a fresh \`alignflow synth ${task}\` with the defaults`, () => {
    const out = tmpDir();
    const res = runCli(['synth', task, '--out', out, '--json']);
    assert.equal(res.status, 0, res.stderr);
    const written = JSON.parse(res.stdout) as { files: { file: string; records: number; sha256: string }[] };
    const bundled = path.join(root, 'datasets', task);
    const names = written.files.map((f) => path.basename(f.file));
    assert.deepEqual(names.sort(), fs.readdirSync(out).sort());
    for (const name of names) {
      const fresh = fs.readFileSync(path.join(out, name));
      const have = fs.readFileSync(path.join(bundled, name));
      assert.ok(fresh.equals(have), `datasets/${task}/${name} differs from a fresh generation: regenerate with \`alignflow synth ${task} --out datasets/${task}\``);
    }
    const manifest = JSON.parse(fs.readFileSync(path.join(bundled, 'manifest.json'), 'utf8')) as { seed: number; files: { name: string; records: number }[] };
    assert.equal(manifest.seed, 1);
    const total = names.reduce((n, name) => n + fs.statSync(path.join(bundled, name)).size, 0);
    assert.ok(total < 2 * 1024 * 1024, `datasets/${task} is ${total} bytes`);
  });
}

test('the CLI refuses bad options with exit code 2 and writes nothing', () => {
  const out = path.join(tmpDir(), 'never');
  for (const args of [['--n-train', 'many'], ['--n-train', '0'], ['--seed', '-3'], ['--min-margin', '9']]) {
    const res = runCli(['synth', 'sentiment', '--out', out, ...args]);
    assert.equal(res.status, 2, `${args.join(' ')}: ${res.stderr}`);
    assert.match(res.stderr, /^error: --(n-train|seed|min-margin) /m);
    assert.equal(fs.existsSync(out), false);
  }
  const missing = runCli(['synth', 'count']);
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /--out/);
});

test('the CLI writes a small dataset with the options given, and records them in the manifest', () => {
  const out = path.join(tmpDir(), 'nested', 'count');
  const res = runCli(['synth', 'count', '--out', out, '--seed', '42', '--n-train', '20', '--n-prefs', '5', '--error-rate', '0']);
  assert.equal(res.status, 0, res.stderr);
  assert.match(res.stdout, /wrote 7 files/);
  assert.equal(fs.readFileSync(path.join(out, 'sft.jsonl'), 'utf8').trim().split('\n').length, 20);
  const manifest = JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8')) as { seed: number; regenerate: string; options: Record<string, number> };
  assert.equal(manifest.seed, 42);
  assert.equal(manifest.options.errorRate, 0);
  assert.match(manifest.regenerate, /^alignflow synth count --seed 42 --n-train 20 .*--n-prefs 5 .*--error-rate 0 --out <dir>$/);
  assert.deepEqual(fs.readdirSync(out).filter((f) => f.includes('.tmp-')), [], 'no temporary files left');
});
