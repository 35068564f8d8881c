// Runs every test/**/*.test.ts with node's own test runner (through tsx), so CI reads its
// closing "pass/fail" lines. Extra arguments filter files by substring: npm test -- store
import { readdirSync, statSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

function walk(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    return statSync(p).isDirectory() ? walk(p) : p.endsWith('.test.ts') ? [p] : [];
  });
}

const filters = process.argv.slice(2);
const files = walk('test').filter((f) => filters.length === 0 || filters.some((s) => f.includes(s))).sort();
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}
// Every process of the run (test files, the CLIs and worker threads they start) loads the
// repository-boundary guard, so a test that reads beside the checkout fails here as it would in a
// user's clone.
const guard = pathToFileURL(path.resolve('test/helpers/repo-boundary.mjs')).href;
const nodeOptions = [process.env.NODE_OPTIONS, `--import=${guard}`].filter(Boolean).join(' ');
const res = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-reporter=spec', ...files],
  { stdio: 'inherit', env: { ...process.env, NODE_ENV: 'test', NODE_OPTIONS: nodeOptions } },
);
process.exit(res.status ?? 1);
