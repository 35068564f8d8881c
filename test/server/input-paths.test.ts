// Which files a spec may name (issue 12, items 1, 2 and 8): paths resolve against the spec file,
// every named file is checked before a run starts, nothing in ALIGNFLOW_HOME is ever read as input,
// and a spec sent through the API may name files only inside the server's --data-dir/--judges-dir.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { tmpDir } from '../helpers/tmp.js';
import { openDb } from '../../src/store/db.js';
import { createLocalStore } from '../../src/store/artifacts.js';
import { databasePath } from '../../src/config/paths.js';
import { getStage, registerStageModule } from '../../src/stages/index.js';
import { loadSpecFile, parseSpec } from '../../src/config/spec.js';
import { issuesOf } from '../orchestrator/helpers.js';
import { buildServer } from '../../src/server/index.js';
import { createOrchestratorPort } from '../../src/server/orchestrator.js';
import { addUser } from '../../src/labeling/users.js';
import { importDataset } from '../../src/data/datasets.js';
import { bearer } from './helpers.js';
import { jsonSyntaxReason } from '../../src/util/json-error.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const stagesModule = path.join(root, 'test/labeling/fixtures/stages.ts');
await registerStageModule(stagesModule);
const lookup = (k: string) => getStage(k);
const JUDGE = `export function judge(prompt, a, b) { return a.startsWith('good') ? 'a' : 'b'; }\n`;

function write(dir: string, name: string, text: string): string {
  const p = path.join(dir, name);
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, text);
  return p;
}


const labelSpec = (judge: string, extra = '') => `name: mine
stages:
  pairs: { kind: fake_pairs, config: { n: 3 } }
  label: { kind: label, inputs: { pairs: pairs }, config: { labeler: rule, judge: ${JSON.stringify(judge)}${extra} } }
`;

test('judges, gold and label files resolve against the spec file; a missing one fails validation', () => {
  const dir = tmpDir();
  write(dir, 'my-judge.mjs', JUDGE);
  write(dir, 'judges/j.mjs', JUDGE);
  const s = loadSpecFile(write(dir, 'p.yaml', labelSpec('my-judge.mjs')), { lookup });
  assert.equal((s.stages.find((x) => x.name === 'label')!.config as { judge: string }).judge, path.join(dir, 'my-judge.mjs'));

  const gold = loadSpecFile(write(dir, 'g.yaml', `name: g\nstages:\n  pairs: { kind: fake_pairs, config: { n: 3 } }\n  label: { kind: label, inputs: { pairs: pairs }, config: { labeler: human, gold_rate: 0.2, gold_file: data/gold.jsonl } }\n`), { lookup, checkPaths: false });
  assert.equal((gold.stages.find((x) => x.name === 'label')!.config as { gold_file: string }).gold_file, path.join(dir, 'data/gold.jsonl'));

  const missing = issuesOf(() => loadSpecFile(write(dir, 'm.yaml', labelSpec('nope.mjs')), { lookup }));
  assert.equal(missing.length, 1);
  assert.equal(missing[0]!.field, 'stages.label.config.judge');
  assert.equal(missing[0]!.line, 4);
  assert.match(missing[0]!.reason, new RegExp(`judge module ${path.join(dir, 'nope.mjs')} does not exist`));
  const goldMissing = issuesOf(() => loadSpecFile(path.join(dir, 'g.yaml'), { lookup }));
  assert.match(goldMissing[0]!.reason, /file .*data\/gold\.jsonl does not exist/);
});

test('nothing inside ALIGNFLOW_HOME is named as input, not even through a symlink or a hard link', () => {
  const home = tmpDir();
  const db = openDb(databasePath(home));
  try {
    const dir = tmpDir();
    fs.symlinkSync(databasePath(home), path.join(dir, 'link.jsonl'));
    fs.linkSync(databasePath(home), path.join(dir, 'hard.jsonl'));
    const spec = `name: h\ndatasets:\n  a: ${databasePath(home)}\n  b: link.jsonl\n  c: hard.jsonl\nstages:\n  pairs: { kind: fake_pairs, config: { n: 1 } }\n`;
    const issues = issuesOf(() => parseSpec(spec, { lookup, file: path.join(dir, 'h.yaml'), paths: { home } }));
    assert.deepEqual(issues.map((i) => i.field), ['datasets.a', 'datasets.b', 'datasets.c']);
    for (const i of issues) assert.match(i.reason, /inside ALIGNFLOW_HOME .* never read as input/);
    const judge = issuesOf(() => parseSpec(labelSpec(path.join(home, 'j.mjs')), { lookup, paths: { home } }));
    assert.match(judge[0]!.reason, /inside ALIGNFLOW_HOME/);
  } finally {
    db.$client.close();
  }
});

test('a restricted (API) policy: files only inside --data-dir/--judges-dir, and the answer never says whether a file exists', () => {
  const home = tmpDir();
  const data = tmpDir();
  const judges = tmpDir();
  write(data, 'train.jsonl', '{"text":"x"}\n');
  write(judges, 'j.mjs', JUDGE);
  fs.symlinkSync('/etc/hostname', path.join(data, 'escape.jsonl'));
  const paths = { home, restricted: { dataDirs: [data], judgesDirs: [judges] } };
  const ok = parseSpec(`name: r\ndatasets: { t: train.jsonl }\nstages:\n  pairs: { kind: fake_pairs, config: { n: 1 } }\n`, { lookup, paths });
  assert.equal(ok.datasets.t!.path, path.join(data, 'train.jsonl'), 'relative paths resolve against --data-dir');
  const judged = parseSpec(labelSpec('j.mjs'), { lookup, paths });
  assert.equal((judged.stages[1]!.config as { judge: string }).judge, path.join(judges, 'j.mjs'), 'judges resolve against --judges-dir');

  const reasons = (ds: string) => issuesOf(() => parseSpec(`name: r\ndatasets: { t: ${JSON.stringify(ds)} }\nstages:\n  pairs: { kind: fake_pairs, config: { n: 1 } }\n`, { lookup, paths }))[0]!.reason;
  const existing = reasons('/etc/passwd');
  const absent = reasons('/etc/no-such-file-here');
  assert.equal(existing.replace('/etc/passwd', 'X'), absent.replace('/etc/no-such-file-here', 'X'), 'same answer for a file that exists and one that does not');
  assert.match(existing, /outside the directories this server reads from \(--data-dir\)/);
  assert.match(reasons('escape.jsonl'), /outside/, 'a symlink out of --data-dir is followed before the check');
  assert.match(reasons('../' + path.basename(judges) + '/j.mjs'), /outside/);
  // a judge in the data dir is not a judge in --judges-dir
  assert.match(issuesOf(() => parseSpec(labelSpec(path.join(data, 'train.jsonl')), { lookup, paths }))[0]!.reason, /outside .*--judges-dir/);
  // gold and label files are data
  assert.match(issuesOf(() => parseSpec(labelSpec('j.mjs', ', gold_file: /etc/passwd'), { lookup, paths }))[0]!.reason, /outside .*--data-dir/);
  const none = { home, restricted: { dataDirs: [], judgesDirs: [] } };
  assert.match(issuesOf(() => parseSpec(labelSpec('/etc/passwd'), { lookup, paths: none }))[0]!.reason, /started without --judges-dir/);
});

test('the API refuses server paths with the same answer whether they exist, never echoing a file; names and data-dir files work', { timeout: 120_000 }, async () => {
  const home = tmpDir();
  const data = tmpDir();
  const judges = tmpDir();
  write(data, 'train.jsonl', '{"text":"hello"}\n');
  write(judges, 'good.mjs', JUDGE);
  const db = openDb(databasePath(home));
  const store = createLocalStore(db, home);
  const app = await buildServer({ db, home, store, orchestrator: await createOrchestratorPort(db, home, store, undefined, { dataDirs: [data], judgesDirs: [judges] }) });
  try {
    const admin = addUser(db, 'root', 'admin').token;
    const post = (spec: unknown) => app.inject({ method: 'POST', url: '/api/runs', headers: bearer(admin), payload: { spec } });
    const base = { name: 'api', stages: { pairs: { kind: 'fake_pairs', config: { n: 2 } } } };
    const answers = [];
    for (const ds of [databasePath(home), '/etc/passwd', '/proc/self/environ', '/etc/no-such-file-here']) {
      const r = await post({ ...base, datasets: { d: ds } });
      assert.equal(r.statusCode, 400, r.body);
      assert.doesNotMatch(r.body, /root:|SQLite format|PATH=|not JSON|line 2/);
      answers.push(r.json().issues[0].reason.replace(ds, 'X'));
    }
    assert.match(answers[0], /inside ALIGNFLOW_HOME|outside/);
    assert.equal(new Set(answers.slice(1)).size, 1, 'existing and missing files get the same answer');
    const judge = await post({ name: 'j', stages: { pairs: { kind: 'fake_pairs', config: { n: 2 } }, label: { kind: 'label', inputs: { pairs: 'pairs' }, config: { labeler: 'rule', judge: '/etc/passwd' } } } });
    assert.equal(judge.statusCode, 400);
    assert.match(judge.json().issues[0].reason, /outside .*--judges-dir/);
    const gold = await post({ name: 'g', stages: { pairs: { kind: 'fake_pairs', config: { n: 2 } }, label: { kind: 'label', inputs: { pairs: 'pairs' }, config: { labeler: 'human', gold_rate: 0.5, gold_file: '/etc/passwd' } } } });
    assert.equal(gold.statusCode, 400);
    assert.match(gold.json().issues[0].reason, /outside .*--data-dir/);

    const good = await post({ ...base, datasets: { d: 'train.jsonl' }, stages: { ...base.stages, label: { kind: 'label', inputs: { pairs: 'pairs' }, config: { labeler: 'rule', judge: 'good.mjs' } } } });
    assert.equal(good.statusCode, 201, good.body);
    // a registered dataset by name
    const other = tmpDir();
    const imported = await importDataset(db, store, write(other, 'named.jsonl', '{"text":"by name"}\n'), { name: 'by-name' });
    const byName = await post({ ...base, name: 'n', datasets: { d: 'by-name' } });
    assert.equal(byName.statusCode, 201, byName.body);
    const run = (await app.inject({ method: 'GET', url: `/api/runs/${byName.json().runId}`, headers: bearer(admin) })).json();
    assert.equal(run.run.spec.datasets.d.artifact, imported.artifact.id);
    for (const id of [good.json().runId, byName.json().runId]) {
      for (let i = 0; i < 200; i++) {
        const st = (await app.inject({ method: 'GET', url: `/api/runs/${id}`, headers: bearer(admin) })).json().run.status;
        if (st !== 'pending' && st !== 'running') break;
        await new Promise((res) => setTimeout(res, 50));
      }
    }
  } finally {
    await app.close();
    db.$client.close();
  }
});

// ------------------------------------------------------------------ processes

function cli(home: string, cwd: string, ...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', import.meta.resolve('tsx'), path.join(root, 'src/cli/main.ts'), ...args], {
    cwd,
    env: { ...process.env, ALIGNFLOW_HOME: home, ALIGNFLOW_STAGE_MODULES: stagesModule, ALIGNFLOW_REDIS_URL: '' },
    encoding: 'utf8',
    timeout: 90_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

async function serve(home: string, args: string[] = []): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), path.join(root, 'src/cli/main.ts'), 'serve', '--port', '0', ...args], {
    env: { ...process.env, ALIGNFLOW_HOME: home, ALIGNFLOW_REDIS_URL: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /serving (http:\/\/\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.on('exit', (code) => reject(new Error(`serve exited ${code}: ${out}`)));
  });
  return { child, url };
}

test('a spec naming the database is refused from the API and the CLI, and acknowledged labels survive kill -9', { timeout: 180_000 }, async () => {
  const home = path.join(tmpDir(), 'home');
  const work = tmpDir();
  const admin = JSON.parse(cli(home, work, 'users', 'add', 'root', '--role', 'admin', '--json').out).token as string;
  const labeler = JSON.parse(cli(home, work, 'users', 'add', 'lab', '--role', 'labeler', '--json').out).token as string;
  // --data-dir holds the home: the home is still refused, file by file.
  const { child, url } = await serve(home, ['--data-dir', path.dirname(home)]);
  const call = async (token: string, method: string, p: string, body?: unknown) => {
    const res = await fetch(url + p, { method, headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, body: body === undefined ? undefined : JSON.stringify(body) });
    return { status: res.status, body: (await res.json()) as any };
  };
  const acknowledged: string[] = [];
  try {
    const batch = (await call(admin, 'POST', '/api/labeling/batches', { name: 'b' })).body;
    const added = await call(admin, 'POST', `/api/labeling/batches/${batch.id}/pairs`, { pairs: Array.from({ length: 30 }, (_, i) => ({ prompt: `p${i}`, a: { text: `a${i}` }, b: { text: `b${i}` } })) });
    assert.equal(added.status, 200, JSON.stringify(added.body));
    const label = async (n: number) => {
      for (let i = 0; i < n; i++) {
        const a = (await call(labeler, 'POST', `/api/labeling/batches/${batch.id}/next`)).body.assignment;
        const r = await call(labeler, 'POST', `/api/labeling/assignments/${a.assignmentId}/label`, { choice: 'left' });
        assert.equal(r.status, 200, JSON.stringify(r.body));
        acknowledged.push(r.body.labelId);
      }
    };
    await label(10);
    const r = await call(admin, 'POST', '/api/runs', { spec: { name: 'evil', datasets: { d: databasePath(home) }, stages: { pairs: { kind: 'label', inputs: { pairs: 'datasets.d' }, config: { labeler: 'human' } } } } });
    assert.equal(r.status, 400, JSON.stringify(r.body));
    assert.match(r.body.issues[0].reason, /inside ALIGNFLOW_HOME/);
    // Another client opening and closing the database: with the server's locks dropped by a
    // stray file handle, this is when SQLite used to delete the live -wal file.
    new Database(databasePath(home)).close();
    await label(10);
  } finally {
    child.kill('SIGKILL');
    await new Promise((res) => child.once('exit', res));
  }
  const db = new Database(databasePath(home));
  const stored = new Set((db.prepare('SELECT id FROM labels').all() as { id: string }[]).map((x) => x.id));
  db.close();
  assert.equal(acknowledged.filter((id) => !stored.has(id)).length, 0, `${acknowledged.length} labels acknowledged, ${stored.size} stored`);

  // The CLI refuses the same spec (and `datasets import` the database file) before any run exists.
  write(work, 'evil.yaml', `name: evil\ndatasets: { d: ${databasePath(home)} }\nstages:\n  pairs: { kind: fake_pairs, config: { n: 1 } }\n`);
  const run = cli(home, work, 'run', 'evil.yaml');
  assert.equal(run.code, 2, run.err);
  assert.match(run.err, /inside ALIGNFLOW_HOME/);
  const imp = cli(home, work, 'datasets', 'import', databasePath(home), '--name', 'db');
  assert.equal(imp.code, 2, imp.err);
  assert.match(imp.err, /inside ALIGNFLOW_HOME/);
  assert.equal(JSON.parse(cli(home, work, 'runs', 'ls', '--json').out).length, 0);
});

test('a pipeline in its own folder runs from another directory; a missing judge fails before any stage runs', { timeout: 180_000 }, () => {
  const home = path.join(tmpDir(), 'home');
  const project = tmpDir();
  const elsewhere = tmpDir();
  write(project, 'my-judge.mjs', JUDGE);
  write(project, 'pipeline.yaml', labelSpec('my-judge.mjs'));
  const ok = cli(home, elsewhere, 'run', path.join(project, 'pipeline.yaml'), '--json');
  assert.equal(ok.code, 0, ok.err + ok.out);
  const snap = JSON.parse(ok.out);
  assert.deepEqual(snap.stages.map((s: { state: string }) => s.state), ['succeeded', 'succeeded']);

  write(project, 'broken.yaml', labelSpec('missing-judge.mjs'));
  const bad = cli(home, elsewhere, 'run', path.join(project, 'broken.yaml'));
  assert.equal(bad.code, 2, bad.err);
  assert.match(bad.err, /broken\.yaml, line 4, field "stages\.label\.config\.judge": judge module .*missing-judge\.mjs does not exist/);
  assert.equal(JSON.parse(cli(home, elsewhere, 'runs', 'ls', '--json').out).length, 1, 'the refused spec created no run, so no stage ran');
});

test('a data file inside --data-dir that is not JSON: the API names the file and line, never its contents', { timeout: 120_000 }, async () => {
  const home = tmpDir();
  const data = tmpDir();
  // the first line is valid JSON (so the format is detected), then content that must not come back
  write(data, 'secrets.jsonl', '{"text":"fine"}\nAPI_KEY=hunter2-secret-value\n{"text": "x", PASSWORD: "sw0rdfish"}\n');
  const db = openDb(databasePath(home));
  const store = createLocalStore(db, home);
  const app = await buildServer({ db, home, store, orchestrator: await createOrchestratorPort(db, home, store, undefined, { dataDirs: [data], judgesDirs: [] }) });
  try {
    const admin = addUser(db, 'root', 'admin').token;
    const r = await app.inject({ method: 'POST', url: '/api/runs', headers: bearer(admin), payload: { spec: { name: 'leak', datasets: { d: 'secrets.jsonl' }, stages: { pairs: { kind: 'fake_pairs', config: { n: 2 } } } } } });
    let seen = r.body;
    if (r.statusCode === 201) {
      const id = r.json().runId as string;
      for (let i = 0; i < 200; i++) {
        const st = (await app.inject({ method: 'GET', url: `/api/runs/${id}`, headers: bearer(admin) })).json().run.status;
        if (st !== 'pending' && st !== 'running') break;
        await new Promise((res) => setTimeout(res, 50));
      }
      seen += (await app.inject({ method: 'GET', url: `/api/runs/${id}`, headers: bearer(admin) })).body;
      seen += (await app.inject({ method: 'GET', url: `/api/runs/${id}/events`, headers: bearer(admin) })).body;
    }
    assert.match(seen, /secrets\.jsonl/, 'the answer names the file');
    assert.match(seen, /line 2|"line":2/, 'and the line');
    assert.doesNotMatch(seen, /hunter2|API_KEY|sw0rdfish|PASSWORD/, `no file contents in: ${seen}`);
  } finally {
    await app.close();
    db.$client.close();
  }
});

test('JSON syntax errors are reported by kind and position, never with the text they failed on', () => {
  const reason = (t: string) => {
    try {
      JSON.parse(t);
    } catch (e) {
      return jsonSyntaxReason(e);
    }
    throw new Error('parsed');
  };
  assert.equal(reason('root:x:0:0:root:/root:/bin/bash'), 'unexpected token');
  assert.equal(reason('{"a":1'), "Expected ',' or '}' after property value at position 6");
  assert.equal(reason('{"a": 1, PASSWORD: 2}'), 'Expected double-quoted property name at position 9');
  assert.equal(reason('{"a":'), 'unexpected end of input');
  for (const t of ['"secret', '{"k": "v"} trailing-secret', '[1, secret]', 'secret']) assert.doesNotMatch(reason(t), /secret|trailing/);
});
