import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { stageCacheKey, configFileDigests } from '../../src/orchestrator/cache-key.js';
import { tmpDir } from '../helpers/tmp.js';

test('editing a judge module named in a stage config changes the stage cache key', () => {
  const dir = tmpDir();
  const judge = path.join(dir, 'judge.mjs');
  fs.writeFileSync(judge, 'export const score = (p, r) => r.length;\n');
  const config = { labeler: 'rule', judge, nested: { judges: [{ module: judge }] } };
  const before = stageCacheKey('label', config, { pairs: 'a-1' }, 7);
  assert.equal(stageCacheKey('label', config, { pairs: 'a-1' }, 7), before, 'the key is stable while nothing changes');
  fs.writeFileSync(judge, 'export const score = (p, r) => -r.length;\n');
  assert.notEqual(stageCacheKey('label', config, { pairs: 'a-1' }, 7), before);
  assert.deepEqual(Object.keys(configFileDigests(config)), [judge]);
});

test('a config that names no file keeps its key, and a missing file hashes as missing', () => {
  assert.deepEqual(configFileDigests({ beta: 0.1, loss: ['sigmoid'] }), {});
  assert.deepEqual(configFileDigests({ file: '/nonexistent/labels.jsonl' }), { '/nonexistent/labels.jsonl': 'missing' });
});

test('judge modules named relative to judges_dir are found there', () => {
  const dir = tmpDir();
  fs.writeFileSync(path.join(dir, 'j.mjs'), 'export const score = () => 1;\n');
  const digests = configFileDigests({ judges_dir: dir, judges: [{ type: 'rule', module: 'j.mjs' }] }, '/');
  assert.notEqual(digests['j.mjs'], 'missing');
  assert.match(digests['j.mjs']!, /^[0-9a-f]{64}$/);
});
