// A reader that closes the pipe early (`alignflow run spec | head -1`) neither crashes the command
// with EPIPE nor stops the work: the run still ends succeeded.
import test from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { tmpDir } from '../helpers/tmp.js';
import { cliArgs, cliEnv, writeFile } from '../orchestrator/helpers.js';

test('a closed stdout pipe: `alignflow run` keeps driving its run to the end and exits 0, no EPIPE stack', { timeout: 120_000 }, async () => {
  const dir = tmpDir();
  const home = path.join(dir, 'home');
  writeFile(dir, 'data.jsonl', '{"text":"pipe"}\n');
  const spec = writeFile(dir, 'p.yaml', `
name: epipe
datasets: { data: data.jsonl }
stages:
  a: { kind: count, inputs: { data: datasets.data }, config: { steps: 20, step_ms: 100 } }
`);
  const env = cliEnv(home, { ALIGNFLOW_PROGRESS_MS: '100' });
  const child = spawn(process.execPath, cliArgs(['run', spec]), { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  let err = '';
  child.stderr.on('data', (b) => (err += b));
  // Like `head -c 1`: take the first bytes, then close the read end while the run goes on.
  await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
  child.stdout.destroy();
  const code = await exited;
  assert.equal(code, 0, err);
  assert.doesNotMatch(err, /EPIPE|Unhandled 'error' event/);
  const ls = spawnSync(process.execPath, cliArgs(['runs', 'ls', '--json']), { env, encoding: 'utf8' });
  assert.equal((JSON.parse(ls.stdout) as { status: string }[])[0]!.status, 'succeeded');
});
