// The CLI run as a child process (as users run it), with ALIGNFLOW_HOME in a temp dir.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { tmpDir } from '../helpers/tmp.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const samples = path.join(repo, 'datasets', 'samples');
const home = tmpDir();

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[], env: Record<string, string> = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(repo, 'src/cli/main.ts'), ...args], {
      cwd: repo,
      env: { ...process.env, ALIGNFLOW_HOME: home, ALIGNFLOW_REDIS_URL: '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

test('--help lists the command groups; bad usage exits 2', async () => {
  const [help, bogus, missing] = await Promise.all([cli(['--help']), cli(['datasets', 'import', 'x.jsonl', '--kind', 'bogus']), cli(['datasets', 'export', 'x'])]);
  assert.equal(help.code, 0);
  for (const c of ['doctor', 'datasets', 'artifacts']) assert.match(help.stdout, new RegExp(`\\b${c}\\b`));
  assert.equal(bogus.code, 2);
  assert.match(bogus.stderr, /Allowed choices are sft, preference, unpaired, prompt/);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /--out/);
});

test('datasets import / ls / show / export, and re-import is a no-op', async () => {
  const file = path.join(samples, 'preference-explicit.jsonl');
  const first = await cli(['datasets', 'import', file, '--json']);
  assert.equal(first.code, 0, first.stderr);
  const r = JSON.parse(first.stdout);
  assert.equal(r.created, true);
  assert.equal(r.kind, 'preference');
  assert.equal(r.records, 10);
  const out = path.join(home, 'exported.jsonl');
  const [again, ls, show, exp] = await Promise.all([
    cli(['datasets', 'import', file]),
    cli(['datasets', 'ls', '--json']),
    cli(['datasets', 'show', r.dataset.id, '--head', '2', '--json']),
    cli(['datasets', 'export', r.dataset.name, '--out', out]),
  ]);
  assert.equal(again.code, 0);
  assert.match(again.stdout, /already imported .*nothing changed/);
  assert.deepEqual(JSON.parse(ls.stdout).map((d: { id: string }) => d.id), [r.dataset.id]);
  assert.equal(JSON.parse(show.stdout).head.length, 2);
  assert.equal(exp.code, 0, exp.stderr);
  const reimport = await cli(['datasets', 'import', out, '--json']);
  assert.equal(JSON.parse(reimport.stdout).dataset.artifactId, r.artifactId);
});

test('invalid input exits 2 with one sentence and the bad lines, no stack trace; --verbose adds it', async () => {
  const bad = path.join(home, 'bad.jsonl');
  fs.writeFileSync(bad, '{"prompt":"p","chosen":"a","rejected":"b"}\n{"prompt":"p","chosen":"a"}\n{oops\n');
  const [res, verbose, missing, notFoundId] = await Promise.all([
    cli(['datasets', 'import', bad]),
    cli(['datasets', 'import', bad, '--verbose']),
    cli(['datasets', 'import', path.join(home, 'missing.jsonl')]),
    cli(['artifacts', 'show', 'a-0000000000000000']),
  ]);
  assert.equal(res.code, 2);
  assert.match(res.stderr, /^error: .*bad\.jsonl has 2 invalid lines.*nothing was imported/);
  assert.match(res.stderr, /line 2, field "rejected": missing/);
  assert.match(res.stderr, /line 3: malformed JSON/);
  assert.doesNotMatch(res.stderr, /\n\s+at /);
  assert.match(verbose.stderr, /\n\s+at /);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /missing\.jsonl does not exist/);
  assert.equal(notFoundId.code, 2);
  const skipped = await cli(['datasets', 'import', bad, '--skip-invalid', '--name', 'bad-skipped', '--json']);
  assert.equal(skipped.code, 0);
  assert.equal(JSON.parse(skipped.stdout).skipped, 2);
});

test('artifacts ls / verify / gc / pin, and verify exits 1 on a flipped byte', async () => {
  const imp = await cli(['datasets', 'import', path.join(samples, 'sft-text.jsonl'), '--json']);
  const id = JSON.parse(imp.stdout).artifactId as string;
  const [ls, ok, pin, gcDry] = await Promise.all([
    cli(['artifacts', 'ls', '--kind', 'dataset', '--json']),
    cli(['artifacts', 'verify']),
    cli(['artifacts', 'pin', id.slice(0, 8)]),
    cli(['artifacts', 'gc', '--dry-run', '--json', '--grace', '0']),
  ]);
  assert.ok(JSON.parse(ls.stdout).some((a: { id: string }) => a.id === id));
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /all intact/);
  assert.equal(pin.code, 0);
  assert.match(pin.stdout, new RegExp(`pinned ${id}`));
  assert.equal(JSON.parse(gcDry.stdout).dryRun, true);
  const show = JSON.parse((await cli(['artifacts', 'show', id, '--json'])).stdout);
  assert.equal(show.pinned, true);
  const sha = show.files[0].sha256 as string;
  const blob = path.join(home, 'blobs', sha.slice(0, 2), sha);
  const buf = fs.readFileSync(blob);
  buf[3] = buf[3]! ^ 0x04;
  fs.writeFileSync(blob, buf);
  const [bad, badOne, lineage] = await Promise.all([cli(['artifacts', 'verify']), cli(['artifacts', 'verify', id, '--json']), cli(['artifacts', 'lineage', id])]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /1 artifact file is corrupt or missing/);
  assert.match(bad.stderr, new RegExp(`${id}/data.jsonl: blob ${sha} is corrupt`));
  assert.equal(badOne.code, 1);
  assert.equal(JSON.parse(badOne.stdout).ok, false);
  assert.equal(lineage.code, 0);
  assert.match(lineage.stdout, /ancestors/);
});

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

test('doctor reports node, database migrations, Redis (absent, unreachable, reachable) and the backend', { timeout: 120_000 }, async () => {
  const port = await freePort();
  const redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  after(() => redis.kill('SIGTERM'));
  const deadPort = await freePort();
  // wait for redis to accept connections
  for (let i = 0; i < 100; i++) {
    const up = await new Promise<boolean>((r) => {
      const s = net.connect(port, '127.0.0.1', () => (s.end(), r(true)));
      s.on('error', () => r(false));
    });
    if (up) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const [plain, unreachable, reachable] = await Promise.all([
    cli(['doctor', '--json']),
    cli(['doctor', '--json'], { ALIGNFLOW_REDIS_URL: `redis://127.0.0.1:${deadPort}` }),
    cli(['doctor', '--json'], { ALIGNFLOW_REDIS_URL: `redis://127.0.0.1:${port}` }),
  ]);
  const checks = (r: Result) => Object.fromEntries((JSON.parse(r.stdout).checks as { name: string; status: string; detail: string; data?: Record<string, unknown> }[]).map((c) => [c.name, c]));
  assert.equal(plain.code, 0, plain.stdout + plain.stderr);
  const p = checks(plain);
  assert.equal(p.node!.status, 'ok');
  assert.match(p.redis!.detail, /not configured/);
  assert.equal(p.database!.data!.applied, p.database!.data!.committed);
  assert.equal(p.database!.data!.pending, 0);
  assert.equal(p.tfjs!.status, 'ok');
  assert.equal(unreachable.code, 1);
  assert.equal(checks(unreachable).redis!.status, 'fail');
  assert.equal(reachable.code, 0, reachable.stdout);
  assert.match(checks(reachable).redis!.detail, /reachable .*Redis \d/);
});
