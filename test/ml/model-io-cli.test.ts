// `alignflow models ...` end to end, in child processes against a temporary ALIGNFLOW_HOME.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { tmpDir } from '../helpers/tmp.js';
import { GPT2_FIXTURES } from '../helpers/fixtures.js';

const FX = GPT2_FIXTURES;
const home = tmpDir();

function cli(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    env: { ...process.env, ALIGNFLOW_HOME: home },
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

test('models init / import / ls / show / export', () => {
  const init = cli('models', 'init', '--preset', 'gpt2-micro', '--seed', '4', '--name', 'micro', '--json');
  assert.equal(init.code, 0, init.err);
  const initId = (JSON.parse(init.out) as { id: string }).id;
  const imp = cli('models', 'import', `${FX}/model-bf16`, '--name', 'fixture');
  assert.equal(imp.code, 0, imp.err);
  const id = imp.out.trim();
  assert.match(id, /^a-[0-9a-f]{16}$/);
  const ls = JSON.parse(cli('models', 'ls', '--json').out) as { id: string; name: string; dtype: string; parameters: number }[];
  assert.deepEqual(ls.map((r) => r.name).sort(), ['fixture', 'micro']);
  assert.equal(ls.find((r) => r.id === id)!.dtype, 'BF16');
  assert.equal(ls.find((r) => r.id === initId)!.parameters, 260 * 32 + 64 * 32 + 2 * (12 * 32 * 32 + 13 * 32) + 2 * 32);
  const show = JSON.parse(cli('models', 'show', id.slice(0, 8), '--json', '--check').out) as { check: string; metadata: { tokenizer: { vocab_size: number } } };
  assert.equal(show.check, 'ok');
  assert.equal(show.metadata.tokenizer.vocab_size, 377);
  const out = path.join(tmpDir(), 'exported');
  const exp = cli('models', 'export', id, '--out', out);
  assert.equal(exp.code, 0, exp.err);
  for (const f of fs.readdirSync(`${FX}/model-bf16`)) assert.deepEqual(fs.readFileSync(path.join(out, f)), fs.readFileSync(path.join(`${FX}/model-bf16`, f)), f);
  const again = cli('models', 'export', id, '--out', out);
  assert.equal(again.code, 2);
  assert.match(again.err, /exists and is not empty/);
});

test('models import of a bad directory fails with exit code 2 and a named error, storing nothing', () => {
  const dir = path.join(tmpDir(), 'bad');
  fs.cpSync(`${FX}/model-fp32`, dir, { recursive: true });
  fs.chmodSync(path.join(dir, 'config.json'), 0o644);
  const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...cfg, model_type: 'mamba' }));
  const before = (JSON.parse(cli('models', 'ls', '--json').out) as unknown[]).length;
  const r = cli('models', 'import', dir);
  assert.equal(r.code, 2);
  assert.match(r.err, /config\.json: unknown architecture: model_type "mamba"/);
  assert.equal((JSON.parse(cli('models', 'ls', '--json').out) as unknown[]).length, before);
});
