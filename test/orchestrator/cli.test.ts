// The CLI end to end: exit codes, submit (detached driver), runs show/logs/cancel/resume.
import test from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { tmpDir } from '../helpers/tmp.js';
import { runCli, writeFile } from './helpers.js';

const home = path.join(tmpDir(), 'home');
const dir = tmpDir();

const cli = (...args: string[]) => runCli(dir, home, args, {}, 60_000);

writeFile(dir, 'data.jsonl', '{"text":"cli"}\n');
const spec = writeFile(dir, 'p.yaml', `
name: cli
datasets: { data: data.jsonl }
stages:
  a: { kind: count, inputs: { data: datasets.data }, config: { steps: 3, step_ms: 10 } }
  b: { kind: join, inputs: { x: a } }
`);

test('run: exit 0 on success, 2 on an invalid spec (nothing created), 1 on a failed run', { timeout: 120_000 }, () => {
  const ok = cli('run', spec, '--json');
  assert.equal(ok.code, 0, ok.err);
  const snap = JSON.parse(ok.out);
  assert.equal(snap.status, 'succeeded');
  assert.deepEqual(snap.stages.map((s: { state: string }) => s.state), ['succeeded', 'succeeded']);

  const bad = cli('run', spec, '--set', 'stages.a.steps=-3');
  assert.equal(bad.code, 2);
  assert.match(bad.err, /p\.yaml, line 5, field "stages\.a\.config\.steps"/);
  assert.equal(JSON.parse(cli('runs', 'ls', '--json').out).length, 1, 'the refused spec created no run');

  const failed = cli('run', spec, '--set', 'stages.a.bad=true');
  assert.equal(failed.code, 1);
  const again = cli('run', spec);
  assert.equal(again.code, 0);
  assert.match(again.out, /a\s+cached/);
});

test('submit returns at once and a detached driver runs it; show/logs see it', { timeout: 120_000 }, async () => {
  const r = cli('submit', spec, '--set', 'stages.a.salt=submitted', '--json');
  assert.equal(r.code, 0, r.err);
  const { id, log } = JSON.parse(r.out);
  assert.match(id, /^r-/);
  let snap;
  for (let i = 0; i < 200; i++) {
    snap = JSON.parse(cli('runs', 'show', id, '--json').out);
    if (snap.status === 'succeeded' || snap.status === 'failed') break;
    await new Promise((res) => setTimeout(res, 250));
  }
  assert.equal(snap.status, 'succeeded', log);
  assert.match(cli('runs', 'logs', id).out, /stage a succeeded/);
  assert.equal(cli('runs', 'show', 'r-nope').code, 2);
  assert.equal(cli('runs', 'resume', id).code, 2, 'a succeeded run cannot be resumed');
});
