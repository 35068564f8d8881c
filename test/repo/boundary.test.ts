// The repository must hold every file its tests read: a user's clone has nothing beside it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { REPO_ROOT, GPT2_FIXTURES, LLAMA_FIXTURES } from '../helpers/fixtures.js';

test('the test run refuses reads beside the checkout (../shared and its like)', () => {
  const guard = (globalThis as { __alignflowRepoBoundary?: unknown }).__alignflowRepoBoundary;
  assert.ok(guard, 'test/helpers/repo-boundary.mjs is not loaded: run the suite with `npm test`');
  const beside = path.resolve(REPO_ROOT, '../shared/fixtures/gpt2-reference/README.md');
  assert.throws(() => fs.readFileSync(beside), { code: 'EOUTSIDEREPO' });
  assert.throws(() => fs.existsSync(beside), { code: 'EOUTSIDEREPO' });
  // The checkout itself and the temp folder stay readable.
  assert.ok(fs.readFileSync(path.join(REPO_ROOT, 'package.json')).length > 0);
});

test('reference fixtures are committed inside the repository', () => {
  for (const dir of [GPT2_FIXTURES, LLAMA_FIXTURES]) {
    if (!process.env.ALIGNFLOW_FIXTURES) assert.ok(dir.startsWith(REPO_ROOT + path.sep), dir);
    assert.ok(fs.statSync(path.join(dir, 'README.md')).isFile(), `${dir}/README.md`);
  }
  assert.ok(fs.statSync(path.join(GPT2_FIXTURES, 'model-fp32/model.safetensors')).size > 0);
});

// The guard and this test name the path they refuse.
const SELF = new Set(['test/repo/boundary.test.ts', 'test/helpers/repo-boundary.mjs']);

test('no source or test names a path beside the checkout', () => {
  const offenders: string[] = [];
  const walk = (dir: string): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) {
        if (e.name !== 'fixtures' && e.name !== 'node_modules') walk(p);
      } else if (/\.(ts|mts|mjs|js)$/.test(e.name) && !SELF.has(path.relative(REPO_ROOT, p))) {
        if (/\.\.\/shared\//.test(fs.readFileSync(p, 'utf8'))) offenders.push(path.relative(REPO_ROOT, p));
      }
    }
  };
  for (const top of ['src', 'test', 'bench', 'scripts', 'bin']) walk(path.join(REPO_ROOT, top));
  assert.deepEqual(offenders, []);
});
