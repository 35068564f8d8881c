// Loaded into every process of the test run (NODE_OPTIONS=--import, see scripts/run-tests.mjs).
// A user's clone holds only the repository, so a test that reads a file beside the checkout (such as
// ../shared/fixtures) passes here and fails for them. This guard makes such a read fail here too: any
// fs call on a path inside the checkout's parent folder but outside the checkout throws EOUTSIDEREPO.
// The system's temp folder (where tests make their scratch dirs) and an explicit ALIGNFLOW_FIXTURES
// stay allowed. Paths elsewhere (/usr/bin/chromium, /proc) are the machine's, not data, and pass.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { syncBuiltinESMExports } from 'node:module';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const PARENT = path.dirname(REPO_ROOT);
const TMP = [path.resolve(os.tmpdir()), fs.realpathSync(os.tmpdir())];
const allowed = [REPO_ROOT];
if (process.env.ALIGNFLOW_FIXTURES) allowed.push(path.resolve(process.env.ALIGNFLOW_FIXTURES));

const within = (p, dir) => p === dir || p.startsWith(dir.endsWith(path.sep) ? dir : dir + path.sep);
// A checkout inside the temp folder (/tmp/x/clone) has tests' scratch dirs outside its parent, so the
// rule holds as it is. A checkout directly in it (/tmp/clone) shares its parent with every scratch
// dir: then only the folder a user's clone would lack (../shared) can be refused.
const TMP_IS_BESIDE = TMP.some((t) => within(t, PARENT));
const SHARED = path.join(PARENT, 'shared');

/** True when a test must not touch `p`: beside the checkout, not inside it. */
export function isOutsideRepo(p) {
  if (typeof p !== 'string' && !(p instanceof URL) && !Buffer.isBuffer(p)) return false;
  const abs = path.resolve(p instanceof URL ? fileURLToPath(p) : String(p));
  if (!within(abs, PARENT) || PARENT === path.parse(PARENT).root) return false;
  // Installed packages are code, not test data: a workspace may hoist node_modules above the
  // checkout, or link it from elsewhere (git worktrees sharing one install).
  if (abs.split(path.sep).includes('node_modules')) return false;
  if (allowed.some((dir) => within(abs, dir))) return false;
  if (TMP_IS_BESIDE && TMP.some((t) => within(abs, t))) return within(abs, SHARED);
  return true;
}

function refuse(p) {
  const err = new Error(
    `test read outside the repository: ${p} (commit the data under test/fixtures; a user's clone has nothing beside it)`,
  );
  err.code = 'EOUTSIDEREPO';
  return err;
}

const SYNC = ['readFileSync', 'openSync', 'statSync', 'lstatSync', 'existsSync', 'readdirSync', 'accessSync',
  'realpathSync', 'createReadStream', 'opendirSync'];
const CALLBACK = ['readFile', 'open', 'stat', 'lstat', 'readdir', 'access', 'realpath', 'opendir'];
const PROMISES = ['readFile', 'open', 'stat', 'lstat', 'readdir', 'access', 'realpath', 'opendir'];

for (const name of SYNC) {
  const orig = fs[name];
  if (typeof orig !== 'function') continue;
  fs[name] = Object.assign(function guarded(p, ...rest) {
    if (isOutsideRepo(p)) throw refuse(p);
    return orig.call(this, p, ...rest);
  }, orig);
}
for (const name of CALLBACK) {
  const orig = fs[name];
  if (typeof orig !== 'function') continue;
  fs[name] = Object.assign(function guarded(p, ...rest) {
    if (isOutsideRepo(p)) {
      const cb = rest[rest.length - 1];
      if (typeof cb === 'function') return process.nextTick(cb, refuse(p));
      throw refuse(p);
    }
    return orig.call(this, p, ...rest);
  }, orig);
}
for (const name of PROMISES) {
  const orig = fs.promises[name];
  if (typeof orig !== 'function') continue;
  fs.promises[name] = function guarded(p, ...rest) {
    if (isOutsideRepo(p)) return Promise.reject(refuse(p));
    return orig.call(this, p, ...rest);
  };
}
syncBuiltinESMExports();
globalThis.__alignflowRepoBoundary = { isOutsideRepo, REPO_ROOT };
