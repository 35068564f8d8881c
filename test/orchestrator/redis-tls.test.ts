// rediss:// for real: a throwaway CA and server certificate made with openssl, a redis-server
// (Debian's is built with TLS) listening only on its TLS port with a password, and a tiny pipeline
// run through `alignflow run --redis rediss://…` plus a worker trusting the CA through
// ALIGNFLOW_REDIS_CA. Then the failures a user meets first: an unreadable CA file, a CA that did
// not sign the server's certificate, and no CA at all; each is a clear error within seconds,
// never a silent retry loop. Skipped (saying why) without redis-server's TLS or openssl.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { after } from 'node:test';
import { eq } from 'drizzle-orm';
import { setup, submit, writeFile, cliArgs, cliEnv, type Env } from './helpers.js';
import { freePort } from './redis.js';
import { spawnWorker, stopWorker } from './workers.js';
import { tmpDir } from '../helpers/tmp.js';
import { openDb } from '../../src/store/db.js';
import { databasePath } from '../../src/config/paths.js';
import { driveRun } from '../../src/orchestrator/executors/inline.js';
import { getRun, runStages } from '../../src/orchestrator/runs.js';
import { stageOutputs } from '../../src/store/schema.js';

const openssl = (dir: string, args: string[]) => {
  const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr || r.error?.message}`);
};

/** A CA (ca.pem) and a server certificate it signed for 127.0.0.1 / localhost; plus an unrelated CA (other-ca.pem). */
function makeCerts(dir: string) {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(dir, ['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=alignflow test CA']);
  openssl(dir, ['req', '-x509', ...ec, '-keyout', 'other-ca.key', '-out', 'other-ca.pem', '-days', '1', '-subj', '/CN=some other CA']);
  openssl(dir, ['req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1']);
  fs.writeFileSync(path.join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  openssl(dir, ['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '1', '-extfile', 'ext.cnf']);
  return { ca: path.join(dir, 'ca.pem'), otherCa: path.join(dir, 'other-ca.pem'), cert: path.join(dir, 'server.pem'), key: path.join(dir, 'server.key') };
}

function unavailable(): string | undefined {
  if (spawnSync('openssl', ['version']).status !== 0) return 'openssl not found';
  const v = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (v.status !== 0) return 'redis-server not found';
  return undefined;
}
const why = unavailable();

const PASS = `tls-pw-${process.pid}`;
let server: { url: (ca?: boolean) => string; port: number; proc: ChildProcess } | undefined;
let certs: ReturnType<typeof makeCerts> | undefined;

async function startTlsRedis() {
  certs = makeCerts(tmpDir());
  const port = await freePort();
  const proc = spawn('redis-server', ['--port', '0', '--bind', '127.0.0.1', '--tls-port', String(port), '--tls-cert-file', certs.cert, '--tls-key-file', certs.key, '--tls-ca-cert-file', certs.ca, '--tls-auth-clients', 'no', '--requirepass', PASS, '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] });
  after(() => void (proc.exitCode === null && proc.kill('SIGKILL')));
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const end = Date.now() + 15_000;
  while (!out.includes('Ready to accept connections')) {
    if (proc.exitCode !== null) throw new Error(`redis-server with TLS did not start (built without TLS?): ${out}`);
    if (Date.now() > end) throw new Error(`redis-server did not become ready: ${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  server = { port, proc, url: () => `rediss://:${PASS}@127.0.0.1:${port}` };
}

// Started at the top level: `after` inside a test would stop it when that test ends.
if (!why) await startTlsRedis();

const spec = (dir: string) => `
name: tls-chain
seed: 3
datasets:
  data: ${JSON.stringify(path.join(dir, 'data.jsonl'))}
stages:
  a: { kind: count, inputs: { data: datasets.data }, config: { steps: 3, step_ms: 5 } }
  b: { kind: count_light, inputs: { prev: a }, config: { steps: 2, step_ms: 5 } }
  j: { kind: join, inputs: { x: b, y: a, z: a.result } }
`;

const outputsOf = (env: Pick<Env, 'db'>, runId: string) =>
  Object.fromEntries(runStages(env.db, runId).map((s) => [s.name, env.db.select().from(stageOutputs).where(eq(stageOutputs.stageId, s.id)).all().map((o) => `${o.role}=${o.artifactId}`).sort().join(',')]));

/** `alignflow ARGS`, asynchronously (a worker runs beside it), with a hard bound. */
function cli(home: string, args: string[], extra: Record<string, string>, ms: number): Promise<{ code: number | null; out: string; err: string; ms: number }> {
  const t0 = Date.now();
  const p = spawn(process.execPath, cliArgs(args), { cwd: home, env: cliEnv(home, extra), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  p.stdout!.on('data', (d) => (out += d));
  p.stderr!.on('data', (d) => (err += d));
  const t = setTimeout(() => p.kill('SIGKILL'), ms);
  return new Promise((res) => p.once('exit', (code) => (clearTimeout(t), res({ code, out, err, ms: Date.now() - t0 }))));
}

test('rediss:// with a private CA (ALIGNFLOW_REDIS_CA): `alignflow run` + a worker complete a pipeline, same artifacts as inline', { skip: why, timeout: 180_000 }, async () => {
  const ref = await setup();
  writeFile(ref.dir, 'data.jsonl', '{"text":"tls"}\n');
  const refRun = await submit(ref, spec(ref.dir));
  assert.equal(await driveRun(ref, refRun), 'succeeded');

  const home = tmpDir();
  const dir = tmpDir();
  writeFile(dir, 'data.jsonl', '{"text":"tls"}\n');
  const specFile = writeFile(dir, 'spec.yaml', spec(dir));
  const caEnv = { ALIGNFLOW_REDIS_CA: certs!.ca };
  const w = await spawnWorker(home, server!.url(), [], caEnv);
  try {
    const r = await cli(home, ['run', specFile, '--redis', server!.url(), '--json'], caEnv, 120_000);
    assert.equal(r.code, 0, `${r.out}\n${r.err}\n--- worker:\n${w.output()}`);
    const db = openDb(databasePath(home));
    const runId = (db.$client.prepare('SELECT id FROM runs').get() as { id: string }).id;
    assert.equal(getRun(db, runId).status, 'succeeded');
    assert.equal(getRun(db, runId).executor, 'bullmq');
    assert.deepEqual(outputsOf({ db }, runId), outputsOf(ref, refRun));
    for (const s of runStages(db, runId)) assert.match(s.worker ?? '', new RegExp(`-${w.proc.pid}(\\.|$)`), `${s.name} ran on the worker`);
    assert.doesNotMatch(r.out + r.err + w.output(), new RegExp(PASS), 'the password is never printed');
    db.$client.close();
  } finally {
    assert.equal(await stopWorker(w), 0);
  }
});

test('rediss:// refusals are clear and bounded: unreadable CA file, wrong CA, no CA', { skip: why, timeout: 120_000 }, async (t) => {
  const home = tmpDir();
  const dir = tmpDir();
  writeFile(dir, 'data.jsonl', '{"text":"tls"}\n');
  const specFile = writeFile(dir, 'spec.yaml', spec(dir));
  const missing = path.join(dir, 'no-such-ca.pem');

  // Unreadable file: named with the variable, exit 2 (a configuration error), nothing submitted.
  const a = await cli(home, ['run', specFile, '--redis', server!.url()], { ALIGNFLOW_REDIS_CA: missing }, 60_000);
  assert.equal(a.code, 2, a.out + a.err);
  assert.match(a.err, new RegExp(`ALIGNFLOW_REDIS_CA=${missing.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: cannot read the CA file \\(ENOENT\\)`));
  const notPem = writeFile(dir, 'not.pem', 'hello\n');
  const a2 = await cli(home, ['worker', '--redis', server!.url(), '--stages', 'count'], { ALIGNFLOW_REDIS_CA: notPem }, 60_000);
  assert.equal(a2.code, 2, a2.out + a2.err);
  assert.match(a2.err, /ALIGNFLOW_REDIS_CA=.*not\.pem: not a PEM certificate file/);

  // A CA that did not sign the server's certificate: `run` and `worker` stop within seconds.
  const b = await cli(home, ['run', specFile, '--redis', server!.url()], { ALIGNFLOW_REDIS_CA: certs!.otherCa }, 60_000);
  assert.equal(b.code, 2, b.out + b.err);
  assert.match(b.err, /TLS failed \(\w+: .*\); the server's certificate is not signed by a CA in ALIGNFLOW_REDIS_CA=.*other-ca\.pem/);
  assert.doesNotMatch(b.err, new RegExp(PASS));
  const bw = await cli(home, ['worker', '--redis', server!.url(), '--stages', 'count'], { ALIGNFLOW_REDIS_CA: certs!.otherCa }, 60_000);
  assert.equal(bw.code, 2, bw.out + bw.err);
  assert.match(bw.err, /TLS failed/);

  // No CA at all (Node's public roots): the message says how to trust a private CA.
  const c = await cli(home, ['run', specFile, '--redis', server!.url()], {}, 60_000);
  assert.equal(c.code, 2, c.out + c.err);
  assert.match(c.err, /TLS failed \(\w+: .*\); if the server's certificate is signed by a private CA, set ALIGNFLOW_REDIS_CA=/);
  for (const r of [b, bw, c]) assert.ok(r.ms < 30_000, `refused in ${r.ms} ms`);
  t.diagnostic(`refused in ${b.ms} ms (run, wrong CA), ${bw.ms} ms (worker, wrong CA), ${c.ms} ms (run, no CA): ${c.err.trim()}`);

  // Nothing was submitted by the refused runs.
  if (fs.existsSync(databasePath(home))) {
    const db = openDb(databasePath(home));
    assert.equal((db.$client.prepare('SELECT count(*) AS n FROM runs').get() as { n: number }).n, 0);
    db.$client.close();
  }
});

test('`alignflow doctor`\'s Redis check trusts ALIGNFLOW_REDIS_CA too', { skip: why, timeout: 60_000 }, async () => {
  const { checkRedis } = await import('../../src/cli/commands/doctor.js');
  const before = process.env.ALIGNFLOW_REDIS_CA;
  try {
    process.env.ALIGNFLOW_REDIS_CA = certs!.ca;
    const ok = await checkRedis(server!.url(), 5000);
    assert.equal(ok.status, 'ok', ok.detail);
    assert.match(ok.detail, /^reachable at rediss:\/\/\*\*\*@127\.0\.0\.1:\d+ \(Redis 7/);
    process.env.ALIGNFLOW_REDIS_CA = certs!.otherCa;
    const bad = await checkRedis(server!.url(), 5000);
    assert.equal(bad.status, 'fail');
    process.env.ALIGNFLOW_REDIS_CA = path.join(tmpDir(), 'absent.pem');
    const absent = await checkRedis(server!.url(), 5000);
    assert.equal(absent.status, 'fail');
    assert.match(absent.detail, /ALIGNFLOW_REDIS_CA=.*absent\.pem: cannot read the CA file \(ENOENT\)/);
  } finally {
    if (before === undefined) delete process.env.ALIGNFLOW_REDIS_CA;
    else process.env.ALIGNFLOW_REDIS_CA = before;
  }
});
