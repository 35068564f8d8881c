// The eval stage's `human` judge. A real pipeline (fresh micro GPT-2 → 4 SFT steps → eval of the SFT
// model against the untrained one, real tfjs, the eval stage in its worker thread, a real SQLite
// file) waits for labels; a labeler labels through the HTTP API, seeing only prompt / left / right;
// the stage comes back, without sampling again, and reports the win / tie / loss counts the labels
// say, with the same statistics as the other judges.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import { tmpDir } from '../helpers/tmp.js';
import { openDb } from '../../src/store/db.js';
import { createLocalStore } from '../../src/store/artifacts.js';
import { databasePath } from '../../src/config/paths.js';
import { getStage, loadStages } from '../../src/stages/index.js';
import { parseSpec } from '../../src/config/spec.js';
import { createRun, getRun, runStages } from '../../src/orchestrator/runs.js';
import { driveRun } from '../../src/orchestrator/executors/inline.js';
import { buildServer } from '../../src/server/index.js';
import { addUser } from '../../src/labeling/users.js';
import { humanJudgments, humanVerdict, planHumanPairs, type HumanLabel } from '../../src/eval/human.js';
import { evalConfigSchema } from '../../src/stages/eval.js';
import { winRateCI } from '../../src/eval/stats.js';
import type { EvalReport } from '../../src/eval/report-types.js';

const samples = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../datasets/samples');

test('human verdicts: the candidate side is hidden by a seeded flip; both_bad and tie are ties; identical answers are ties without asking', () => {
  const prompts = ['p0', 'p1', 'p2', 'p3', 'p4', 'p5', 'p6', 'p7'];
  const responses = {
    candidate: prompts.map((p, i) => ({ text: i === 7 ? 'same' : `cand ${p}` })),
    sft: prompts.map((p, i) => ({ text: i === 7 ? 'same' : `base ${p}` })),
  };
  const o = { stageId: 's-1', seed: 3, prompts, responses, candidate: { label: 'candidate', artifactId: 'a-c' }, baselines: [{ label: 'sft', artifactId: 'a-s' }] };
  const { plan, pairs } = planHumanPairs(o);
  assert.equal(pairs.length, 7);
  assert.deepEqual(plan.identical, [{ baseline: 'sft', prompt: 7 }]);
  // the candidate is stored on both sides across pairs (a coin flip, not always "a")
  const sides = plan.entries.map((e) => e.candidate);
  assert.ok(sides.includes('a') && sides.includes('b'), sides.join(''));
  for (const [i, e] of plan.entries.entries()) {
    const p = pairs[i]!;
    assert.equal(p.id, e.pairId);
    assert.equal(p[e.candidate].text, `cand p${e.prompt}`);
    assert.equal(p[e.candidate].modelArtifactId, 'a-c');
  }
  // deterministic: the same stage plans the same pairs (ids and sides)
  assert.deepEqual(planHumanPairs(o), { plan, pairs });
  assert.notDeepEqual(planHumanPairs({ ...o, stageId: 's-2' }).pairs.map((p) => p.id), pairs.map((p) => p.id));

  assert.equal(humanVerdict('a', 'a'), 'win');
  assert.equal(humanVerdict('a', 'b'), 'loss');
  assert.equal(humanVerdict('both_bad', 'b'), 'tie');
  assert.equal(humanVerdict('tie', 'a'), 'tie');

  const e = plan.entries;
  const other = (s: 'a' | 'b'): 'a' | 'b' => (s === 'a' ? 'b' : 'a');
  const labels: HumanLabel[] = [
    { pair_id: e[0]!.pairId, decision: e[0]!.candidate },
    { pair_id: e[1]!.pairId, decision: other(e[1]!.candidate) },
    { pair_id: e[2]!.pairId, decision: 'both_bad' as const },
    { pair_id: e[3]!.pairId, decision: 'tie' as const },
    // two labels on one prompt: they average into its score
    { pair_id: e[4]!.pairId, decision: e[4]!.candidate },
    { pair_id: e[4]!.pairId, decision: other(e[4]!.candidate) },
    { pair_id: 'p-gold', decision: 'a' as const, is_gold: true },
  ];
  const r = humanJudgments('human', plan, labels);
  assert.equal(r.labels, 6);
  assert.equal(r.unlabeled, 2, 'prompts 5 and 6 have no label');
  const byPrompt = prompts.map((_, i) => r.judgments.filter((j) => j.prompt === i).map((j) => j.verdict));
  assert.deepEqual(byPrompt, [['win'], ['loss'], ['tie'], ['tie'], ['win', 'loss'], [], [], ['tie']]);
  const wr = winRateCI(byPrompt, { resamples: 200, seed: 1 });
  assert.deepEqual([wr.wins, wr.ties, wr.losses, wr.errors], [2, 3, 2, 0]);
  assert.equal(wr.value, (1 + 0 + 0.5 + 0.5 + 0.5 + 0.5) / 6, 'unlabeled prompts are left out, not ties');
});

test('eval config: a human judge has defaults; at most one per stage; unknown fields are refused', () => {
  const c = evalConfigSchema.parse({ judges: [{ type: 'human' }] });
  assert.deepEqual({ ...c.judges[0], guidelines: undefined }, { type: 'human', name: 'human', quota: 1, guidelines: undefined, lease_seconds: 600, poll_ms: 5000 });
  assert.throws(() => evalConfigSchema.parse({ judges: [{ type: 'human' }, { type: 'human', name: 'again' }] }), /at most one human judge/);
  assert.throws(() => evalConfigSchema.parse({ judges: [{ type: 'human', module: 'x.mjs' }] }));
  assert.throws(() => evalConfigSchema.parse({ judges: [{ type: 'human', quota: 0 }] }));
});

test('a pipeline whose eval stage has a human judge waits, takes labels through the API, and reports their win / tie / loss counts', { timeout: 300_000 }, async () => {
  await loadStages(['model_init', 'sft', 'eval']);
  const home = tmpDir('alignflow-human-eval-');
  const db = openDb(databasePath(home));
  const store = createLocalStore(db, home);
  const yaml = `
name: human-eval
seed: 5
model:
  fresh:
    preset: gpt2-micro
    tokenizer: { type: bytes, dataset: sft }
datasets:
  sft: ${JSON.stringify(path.join(samples, 'sft-prompt-completion.jsonl'))}
  prompts: { path: ${JSON.stringify(path.join(samples, 'prompts.jsonl'))}, kind: prompt }
stages:
  sft:
    inputs: { model: model, train: datasets.sft }
    config: { max_steps: 4, batch_size: 4, lr: 0.01, max_length: 48 }
  eval:
    inputs: { model: sft, baseline_init: model, prompts: datasets.prompts }
    config:
      judges: [{ type: human, quota: 1, poll_ms: 150, guidelines: "Pick the answer that reads better." }]
      sampling: { temperature: 1, max_new_tokens: 8 }
      max_prompts: 6
      bootstrap_resamples: 300
`;
  const file = path.join(home, 'spec.yaml');
  fs.writeFileSync(file, yaml);
  const spec = parseSpec(yaml, { file, lookup: (k: string) => getStage(k), sets: [] });
  const runId = await createRun(db, store, spec, { executor: 'inline', specPath: file, force: [] });
  const driving = driveRun({ db, store, home }, runId, { pollMs: 50 });

  const evalRow = () => runStages(db, runId).find((s) => s.name === 'eval')!;
  const waitFor = async (ok: () => boolean, what: string, ms = 240_000) => {
    const end = Date.now() + ms;
    while (!ok()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(runStages(db, runId).map((s) => [s.name, s.state, s.error]))}`);
      if (['failed', 'cancelled'].includes(getRun(db, runId).status)) throw new Error(`run ${getRun(db, runId).status}: ${getRun(db, runId).error}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const progressMessage = () => (evalRow().progress as { message?: string } | null)?.message ?? '';
  await waitFor(() => evalRow().state === 'waiting', 'the eval stage to wait for labels');
  assert.equal(getRun(db, runId).status, 'waiting');

  const app = await buildServer({ db, home });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  try {
    const admin = { authorization: `Bearer ${addUser(db, 'boss', 'admin').token}` };
    const batches = (await (await fetch(`${base}/api/labeling/batches`, { headers: admin })).json()) as { batches: { id: string; runId: string; progress: { total: number } }[] };
    assert.equal(batches.batches.length, 1);
    const batch = batches.batches[0]!;
    assert.equal(batch.runId, runId);
    const n = batch.progress.total;
    assert.ok(n >= 3, `at least 3 of 6 comparisons differ (got ${n})`);
    assert.equal(progressMessage(), `waiting for labels (0/${n})`);
    // The admin view has model ids: the test (not the labeler) uses it to know the candidate's text.
    const sft = db.$client.prepare(`SELECT artifact_id AS id FROM stage_outputs WHERE stage_id = ? AND role = 'model'`).get(runStages(db, runId).find((s) => s.name === 'sft')!.id) as { id: string };
    const adminPairs = (await (await fetch(`${base}/api/labeling/batches/${batch.id}/pairs`, { headers: admin })).json()) as { pairs: Record<string, unknown>[] };
    const candText = new Map<string, string>();
    for (const p of adminPairs.pairs) {
      const a = p.a as { text: string; modelArtifactId: string } | undefined;
      const b = p.b as { text: string; modelArtifactId: string } | undefined;
      assert.ok(a && b, `admin pair shape: ${JSON.stringify(p)}`);
      assert.ok([a.modelArtifactId, b.modelArtifactId].includes(sft.id), 'responses record the model that wrote them');
      candText.set(String(p.prompt), a.modelArtifactId === sft.id ? a.text : b.text);
    }
    assert.equal(candText.size, n);

    // One labeler, a script of decisions in queue order: candidate, baseline, tie, both bad, ...
    const script = ['cand', 'base', 'tie', 'both_bad'] as const;
    const expect = { wins: 0, ties: 6 - n, losses: 0 }; // identical answers are ties without asking
    const labeler = `Bearer ${addUser(db, 'ann', 'labeler').token}`;
    for (let k = 0; ; k++) {
      const res = (await (await fetch(`${base}/api/labeling/batches/${batch.id}/next`, { method: 'POST', headers: { authorization: labeler } })).json()) as { assignment: Record<string, unknown> | null };
      if (!res.assignment) break;
      const asg = res.assignment as { assignmentId: string; prompt: string; left: string; right: string };
      assert.doesNotMatch(JSON.stringify(res), /a-[0-9a-f]{16}/, 'a labeler never sees model ids');
      const candLeft = asg.left === candText.get(asg.prompt);
      assert.ok(candLeft || asg.right === candText.get(asg.prompt));
      const want = script[k % script.length]!;
      const choice = want === 'cand' ? (candLeft ? 'left' : 'right') : want === 'base' ? (candLeft ? 'right' : 'left') : want;
      if (want === 'cand') expect.wins++;
      else if (want === 'base') expect.losses++;
      else expect.ties++;
      const r = await fetch(`${base}/api/labeling/assignments/${asg.assignmentId}/label`, { method: 'POST', headers: { authorization: labeler, 'content-type': 'application/json' }, body: JSON.stringify({ choice }) });
      assert.equal(r.status, 200, await r.text());
      if (k === 0) {
        // the stage is asked again and still waits (and does not sample again, checked below)
        await waitFor(() => progressMessage() === `waiting for labels (1/${n})`, 'the eval stage to see the first label');
        assert.equal(evalRow().state === 'succeeded', false);
      }
    }

    assert.equal(await driving, 'succeeded', getRun(db, runId).error ?? '');
    const events = db.$client.prepare(`SELECT message FROM run_events WHERE stage_id = ? ORDER BY id`).all(evalRow().id) as { message: string }[];
    assert.equal(events.filter((e) => e.message.startsWith('eval: sampled and judged')).length, 1, 'sampled once, however often the stage was asked');
    // started: the first time, at least once while waiting (after the first label), and at the end
    assert.ok(events.filter((e) => e.message.startsWith('stage eval started')).length >= 3, events.map((e) => e.message).join('\n'));
    const ckpts = db.$client.prepare(`SELECT count(*) AS n FROM checkpoints WHERE stage_id = ?`).get(evalRow().id) as { n: number };
    assert.equal(ckpts.n, 1, 'the samples were saved once');
    assert.equal((db.$client.prepare('SELECT status FROM label_batches WHERE id = ?').get(batch.id) as { status: string }).status, 'closed');

    const out = db.$client.prepare(`SELECT artifact_id AS id FROM stage_outputs WHERE stage_id = ? AND role = 'report'`).get(evalRow().id) as { id: string };
    const report = JSON.parse((await store.readFile(out.id, 'report.json')).toString('utf8')) as EvalReport;
    const judge = report.judges.find((j) => j.kind === 'human');
    assert.ok(judge, JSON.stringify(report.judges));
    assert.equal(judge.name, 'human');
    assert.match(judge.source ?? '', new RegExp(`${n} label\\(s\\) by 1 annotator`));
    const c = report.comparisons.find((x) => x.judge === 'human' && x.baseline === 'init');
    assert.ok(c, JSON.stringify(report.comparisons.map((x) => [x.judge, x.baseline])));
    assert.deepEqual({ wins: c.winRate.wins, ties: c.winRate.ties, losses: c.winRate.losses, errors: c.winRate.errors }, { ...expect, errors: 0 });
    assert.equal(c.winRate.value, (expect.wins + expect.ties / 2) / 6);
    console.log(`human judge: ${n} comparisons labeled, W/T/L ${c.winRate.wins}/${c.winRate.ties}/${c.winRate.losses}, win rate ${c.winRate.value.toFixed(3)} [${c.winRate.lo.toFixed(3)}, ${c.winRate.hi.toFixed(3)}], LC ${c.lcWinRate.value.toFixed(3)}`);
    assert.equal(c.winRate.method, 'percentile-bootstrap');
    assert.ok(c.winRate.lo <= c.winRate.value && c.winRate.value <= c.winRate.hi);
    assert.ok(Number.isFinite(c.lcWinRate.value) && Number.isFinite(c.lcWinRate.lo) && Number.isFinite(c.lcWinRate.hi));
    const row = report.summary.find((r) => r.key === 'wins_ties_losses/init/human');
    assert.equal(row?.display, `${expect.wins} / ${expect.ties} / ${expect.losses} / 0`);
    assert.ok(report.summary.some((r) => r.key === 'lc_win_rate/init/human'));
    // the report's samples are the saved ones: the admin's candidate texts are the report's
    for (const s of report.samples) {
      const t = candText.get(s.text);
      if (t !== undefined) assert.equal(s.responses.candidate!.text, t);
    }
    // the HTML report carries the human verdicts too
    const html = (await store.readFile(out.id, 'report.html')).toString('utf8');
    assert.match(html, /labelers compare the two answers, shown in random order/);
    assert.match(html, new RegExp(`${expect.wins} / ${expect.ties} / ${expect.losses} / 0`));
  } finally {
    await app.close();
  }
});

test('human judge, handler level: asked again it reuses its saved samples; an admin close ends it with the labels so far; a changed config is refused', { timeout: 120_000 }, async () => {
  const { initBackend } = await import('../../src/ml/backend.js');
  const { createGpt2 } = await import('../../src/ml/models/gpt2.js');
  const { saveModelDir } = await import('../../src/ml/models/io.js');
  const { bytesTokenizer } = await import('../../src/ml/tokenizer/index.js');
  const { importDataset } = await import('../../src/data/datasets.js');
  const { createLabelingPort } = await import('../../src/labeling/port.js');
  const { nextAssignment, submitLabel } = await import('../../src/labeling/queue.js');
  const { closeBatch } = await import('../../src/labeling/batches.js');
  const { evalStage } = await import('../../src/stages/eval.js');
  await initBackend();
  const home = tmpDir('alignflow-human-eval-h-');
  const db = openDb(databasePath(home));
  const store = createLocalStore(db, home);
  const tok = bytesTokenizer({ modelMaxLength: 64 });
  const model = async (seed: number, name: string) => {
    const m = createGpt2({ vocab_size: 260, n_positions: 64, n_embd: 16, n_layer: 1, n_head: 2, eos_token_id: tok.eosTokenId, bos_token_id: tok.eosTokenId }, seed);
    const dir = path.join(home, name);
    saveModelDir(m, tok, dir);
    m.dispose();
    return store.put({ kind: 'model', name, files: fs.readdirSync(dir).map((f) => ({ path: f, sourceFile: path.join(dir, f) })) });
  };
  const cand = await model(4, 'cand');
  const base = await model(9, 'base');
  const pf = path.join(home, 'prompts.jsonl');
  fs.writeFileSync(pf, ['the movie was', 'this film is', 'the plot felt', 'overall the cast'].map((prompt) => JSON.stringify({ prompt })).join('\n') + '\n');
  const prompts = (await importDataset(db, store, pf, { name: 'p' })).artifact;

  const runId = 'run-h';
  const stageId = 'stage-h';
  db.$client.prepare(`INSERT INTO runs (id, name, spec, spec_hash, status, executor, created_at) VALUES (?, 't', '{}', 'x', 'running', 'inline', 0)`).run(runId);
  db.$client.prepare(`INSERT INTO stages (id, run_id, name, kind, config, depends_on, state) VALUES (?, ?, 'eval', 'eval', '{}', '[]', 'running')`).run(stageId, runId);
  let checkpoint: { step: number; artifact: Awaited<ReturnType<typeof store.put>> } | undefined;
  let saves = 0;
  const logs: string[] = [];
  const ctxFor = (config: unknown) => ({
    runId, stageId, stageName: 'eval', kind: 'eval',
    config: evalConfigSchema.parse(config),
    inputs: { model: cand, baseline_base: base, prompts },
    store, workDir: fs.mkdtempSync(path.join(home, 'work-')), seed: 2,
    latestCheckpoint: async () => checkpoint,
    saveCheckpoint: async (step: number, a: Parameters<typeof store.put>[0]) => {
      saves++;
      checkpoint = { step, artifact: await store.put({ ...a, kind: 'checkpoint' }) };
      return checkpoint;
    },
    progress: () => {}, metrics: () => {},
    log: { debug() {}, info: (m: string) => void logs.push(m), warn: (m: string) => void logs.push(m), error() {} },
    signal: new AbortController().signal,
    labeling: createLabelingPort(db),
  }) as unknown as Parameters<typeof evalStage.run>[0];
  const config = { judges: [{ type: 'human', quota: 2, poll_ms: 300 }], sampling: { max_new_tokens: 6 }, bootstrap_resamples: 200 };

  const first = await evalStage.run(ctxFor(config));
  assert.equal(first.status, 'waiting');
  if (first.status !== 'waiting') return;
  assert.equal(first.retryAfterMs, 300);
  const n = first.total / 2;
  assert.equal(first.message, `waiting for labels (0/${2 * n})`);
  assert.ok(n >= 2, `comparisons: ${n}`);
  assert.equal((await evalStage.run(ctxFor(config))).status, 'waiting');
  assert.equal(saves, 1, 'the samples are saved once');
  assert.equal(logs.filter((l) => l.startsWith('eval: sampled and judged')).length, 1, 'and sampled once');
  assert.equal((db.$client.prepare('SELECT count(*) AS n FROM pairs WHERE batch_id IS NOT NULL').get() as { n: number }).n, n, 'the batch is filled once');

  // one label, then an admin closes the batch
  const u = addUser(db, 'solo', 'labeler').user;
  const batchId = (db.$client.prepare('SELECT id FROM label_batches WHERE stage_id = ?').get(stageId) as { id: string }).id;
  const a = nextAssignment(db, batchId, u)!;
  submitLabel(db, a.assignmentId, u, { choice: 'both_bad' });
  const mid = await evalStage.run(ctxFor(config));
  assert.equal(mid.status === 'waiting' && mid.message, `waiting for labels (1/${2 * n})`);
  // a saved state is only used by the stage it was saved for
  await assert.rejects(evalStage.run(ctxFor({ ...config, max_prompts: 2 })), /saved for other inputs or another config/);
  closeBatch(db, batchId);
  const done = await evalStage.run(ctxFor(config));
  assert.equal(done.status, 'done');
  if (done.status !== 'done') return;
  assert.deepEqual(done.summary!.human, { batchId, labels: 1, unlabeled: n - 1 });
  const report = JSON.parse((await store.readFile(done.outputs.report!.id, 'report.json')).toString('utf8')) as EvalReport;
  const c = report.comparisons.find((x) => x.judge === 'human')!;
  assert.deepEqual([c.winRate.wins, c.winRate.ties - (4 - n), c.winRate.losses, c.winRate.errors], [0, 1, 0, 0], 'both bad is a tie; identical answers are ties');
  assert.ok(report.warnings.some((w) => w.message.includes(`closed with ${n - 1} of ${n} comparison(s) unlabeled`)), JSON.stringify(report.warnings));
  assert.match(report.judges.find((j) => j.kind === 'human')!.source!, /closed by an admin/);
  assert.equal(saves, 1);
});
