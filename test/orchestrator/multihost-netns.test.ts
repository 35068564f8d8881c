// Workers on other hosts, for real: the coordinator (`alignflow serve --redis`) and a password-
// protected redis-server run in one network namespace, two `alignflow worker --coordinator`
// processes in two others, each with its own home (a blob cache, never a database); they reach
// the coordinator and Redis only over veth links (10.77.N.0/24). Nothing runs stages on the
// coordinator host: the workers take every kind, the labeling ones through the coordinator's
// labeling API (docs/deployment.md).
//   1. A real tiny pipeline (model init, SFT, collect, label, DPO, eval) runs entirely on the two
//      remote workers and gives the artifact ids and the pairs of an inline run, every stage once.
//   2. The link of the worker running SFT is cut mid-stage: its heartbeat goes stale, the other
//      worker takes the stage over and resumes from the last uploaded checkpoint; then the
//      coordinator is killed (-9) while a checkpoint is being uploaded and started again: the
//      upload resumes, and the result equals an uninterrupted run's.
// Skipped (saying why) where `ip netns` cannot be used: not root, or not Linux.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { eq } from 'drizzle-orm';
import { waitFor } from './helpers.js';
import { coordinatorHost, createTopology, inlineRun, kill9, netnsUnavailable, outputsOf, type NsProc, type Topology } from './netns.js';
import { fastTimings } from './workers.js';
import { tmpDir } from '../helpers/tmp.js';
import type { Db } from '../../src/store/db.js';
import { getRun, runLogs, runStages } from '../../src/orchestrator/runs.js';
import { checkpoints, stageOutputs } from '../../src/store/schema.js';
import { loadStages } from '../../src/stages/index.js';

const why = netnsUnavailable();
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
await loadStages(['model_init', 'sft', 'collect', 'label', 'dpo', 'eval']);

const abs = (p: string) => JSON.stringify(path.join(root, p));
const model = `
seed: 5
model:
  fresh:
    preset: gpt2-micro
    tokenizer: { type: bytes, dataset: sft }`;
// Collect and label run for real; DPO trains on the bundled explicit preferences (the rule judge
// ties every answer of a barely trained byte model) and takes the labels as a dependency.
const fullSpec = `
name: multihost${model}
datasets:
  sft: ${abs('datasets/samples/sft-prompt-completion.jsonl')}
  prompts: ${abs('datasets/sentiment/prompts.jsonl')}
  prefs: { path: ${abs('datasets/samples/preference-explicit.jsonl')}, kind: preference }
  eval_prompts: ${abs('datasets/sentiment/eval_prompts.jsonl')}
  eval_prefs: ${abs('datasets/sentiment/eval_prefs.jsonl')}
stages:
  sft:
    inputs: { model: model, train: datasets.sft }
    config: { max_steps: 24, batch_size: 4, lr: 0.003, schedule: cosine, warmup_steps: 2, max_length: 48, checkpoint_every: 8, keep_checkpoints: 2 }
  collect:
    inputs: { model: sft, prompts: datasets.prompts }
    config: { k: 2, max_prompts: 8, max_new_tokens: 8, temperature: 1.0, batch_size: 8, pairing: all }
  label:
    inputs: { pairs: collect }
    config: { labeler: rule, judge: ${abs('judges/sentiment.mjs')} }
  dpo:
    inputs: { model: sft, reference: sft, train: datasets.prefs, labeled: label }
    config: { max_steps: 3, batch_size: 4, lr: 0.001, max_length: 48, log_every: 1, checkpoint_every: 2 }
  eval:
    inputs: { model: dpo, baseline_sft: sft, reference: sft, prompts: datasets.eval_prompts, pairs: datasets.eval_prefs }
    config: { judges: [{ type: rule, module: ${abs('judges/sentiment.mjs')} }], sampling: { temperature: 1.0, max_new_tokens: 8 }, max_prompts: 8, max_pairs: 8, bootstrap_resamples: 100 }
`;
const SFT_STEPS = 48;
const sftSpec = `
name: multihost-faults${model}
datasets:
  sft: ${abs('datasets/samples/sft-prompt-completion.jsonl')}
stages:
  sft:
    inputs: { model: model, train: datasets.sft }
    config: { max_steps: ${SFT_STEPS}, batch_size: 4, lr: 0.003, schedule: cosine, warmup_steps: 2, max_length: 48, checkpoint_every: 4, keep_checkpoints: 2 }
`;

// Heartbeats every 250 ms, presumed dead after 5 s (loaded CI machines answer HTTP late).
const timings = { ...fastTimings, ALIGNFLOW_STALE_MS: '5000' };

/**
 * The collected pairs with the stage's own id taken out: collect names its pairs and responses
 * after its stage (p-<stageId>-…), so the pairs, the labels that name them and the eval report
 * (which records its run) differ between ANY two runs; everything else is content-addressed.
 */
function pairsText(db: Db, runId: string): string {
  const s = runStages(db, runId).find((x) => x.name === 'collect')!;
  const out = db.select().from(stageOutputs).where(eq(stageOutputs.stageId, s.id)).get()!;
  const file = db.$client.prepare('SELECT sha256 FROM artifact_files WHERE artifact_id = ?').get(out.artifactId) as { sha256: string };
  const home = path.dirname(db.$client.name);
  return fs.readFileSync(path.join(home, 'blobs', file.sha256.slice(0, 2), file.sha256), 'utf8').split(s.id).join('<stage>');
}
const runIndependent = (o: Record<string, string>) => ({ model: o.model, sft: o.sft, dpo: o.dpo, label: o.label!.split(',').filter((x) => x.startsWith('dataset=')).join() });

interface Cluster {
  topo: Topology;
  coordHome: string;
  workerHomes: string[];
  coordinator: NsProc;
  workers: NsProc[];
  db: Db;
  startCoordinator(): Promise<NsProc>;
  submit(spec: string): string;
}

async function cluster(): Promise<Cluster> {
  const topo = createTopology(2);
  const host = await coordinatorHost(topo, timings);
  const coordinator = await host.startCoordinator();
  // The remote workers take every stage kind (their default).
  const workerHomes = topo.workers.map(() => path.join(tmpDir(), 'worker'));
  const workers = workerHomes.map((h, i) => host.startWorker(i, h, { env: { ALIGNFLOW_UPLOAD_CHUNK_BYTES: '16384', ALIGNFLOW_COORD_RETRY_MS: '90000' } }));
  await Promise.all(workers.map((w) => w.waitFor('ready:', 180_000)));
  return { topo, coordHome: host.home, workerHomes, coordinator, workers, db: host.db, startCoordinator: host.startCoordinator, submit: host.submit };
}

const finished = (db: Db, runId: string) => {
  const s = getRun(db, runId).status;
  return s === 'succeeded' || s === 'failed' || s === 'cancelled' ? s : undefined;
};
const failure = (c: Cluster, runId: string) => `${JSON.stringify(runStages(c.db, runId).map((s) => [s.name, s.state, s.worker, s.error]))}\n--- workers:\n${c.workers.map((w) => w.output().slice(-1500)).join('\n---\n')}\n--- coordinator:\n${c.coordinator.output().slice(-1500)}`;

test('multi-host: the tiny pipeline over the coordinator gives the artifact ids of an inline run', { skip: why, timeout: 600_000 }, async (t) => {
  const [ref, c] = await Promise.all([inlineRun(fullSpec), cluster()]);
  t.after(() => c.topo.destroy());
  const runId = c.submit(fullSpec);
  const status = await waitFor(() => finished(c.db, runId), 400_000, 'the run', 250).catch((e: Error) => assert.fail(`${e.message}: ${failure(c, runId)}`));
  assert.equal(status, 'succeeded', failure(c, runId));
  const got = outputsOf(c.db, runId);
  assert.deepEqual(runIndependent(got), runIndependent(ref.outputs));
  assert.equal(pairsText(c.db, runId), pairsText(ref.env.db, ref.runId), 'the same pairs collected, up to the stage id they are named after');
  assert.match(got.eval!, /^report=a-/);
  const stages = runStages(c.db, runId);
  for (const s of stages) assert.equal(s.attempts, 1, `${s.name} ran once`);
  // Every stage ran on a remote worker (worker ids "wk/<host>-<pid>.<attempt>"), collect and label included.
  assert.deepEqual(stages.map((s) => s.name).sort(), ['collect', 'dpo', 'eval', 'label', 'model', 'sft']);
  for (const s of stages) assert.ok(c.workers.some((w) => new RegExp(`^wk/.+-${w.proc.pid}\\.\\d+$`).test(s.worker ?? '')), `${s.name} ran on a remote worker (${s.worker})`);
  // The labeling database got collect's pairs and label's batch, through the coordinator's API.
  const collect = stages.find((s) => s.name === 'collect')!;
  const label = stages.find((s) => s.name === 'label')!;
  const n = (sql: string, id: string) => (c.db.$client.prepare(sql).get(id) as { n: number }).n;
  assert.ok(n('SELECT count(*) AS n FROM pairs WHERE stage_id = ?', collect.id) > 0, 'collect stored its pairs');
  const refN = (sql: string, name: string) => (ref.env.db.$client.prepare(sql).get(runStages(ref.env.db, ref.runId).find((s) => s.name === name)!.id) as { n: number }).n;
  assert.equal(n('SELECT count(*) AS n FROM pairs WHERE stage_id = ?', collect.id), refN('SELECT count(*) AS n FROM pairs WHERE stage_id = ?', 'collect'), 'as many pairs as inline');
  assert.equal(n('SELECT count(*) AS n FROM responses WHERE stage_id = ?', collect.id), refN('SELECT count(*) AS n FROM responses WHERE stage_id = ?', 'collect'), 'as many answers as inline');
  const labels = 'SELECT count(*) AS n FROM labels l JOIN pairs p ON p.id = l.pair_id JOIN label_batches b ON b.id = p.batch_id WHERE b.stage_id = ?';
  assert.equal(n(labels, label.id), refN(labels, 'label'), 'as many labels as inline, each stored once');
  assert.ok(n(labels, label.id) > 0);
  for (const h of c.workerHomes) {
    assert.ok(!fs.existsSync(path.join(h, 'alignflow.db')), `${h}: a remote worker never opens a database`);
  }
  assert.ok(c.workerHomes.some((h) => fs.existsSync(path.join(h, 'blobs'))), 'the workers cached blobs in their own homes');
});

test('multi-host faults: a worker loses its link mid-SFT, the coordinator is killed mid-upload; same artifacts as an uninterrupted run', { skip: why, timeout: 600_000 }, async (t) => {
  const [ref, c] = await Promise.all([inlineRun(sftSpec), cluster()]);
  t.after(() => c.topo.destroy());
  const runId = c.submit(sftSpec);
  const sft = () => runStages(c.db, runId).find((s) => s.name === 'sft')!;
  // SFT running on a remote worker, with a checkpoint uploaded and recorded.
  const first = await waitFor(() => {
    const s = sft();
    return s.state === 'running' && c.db.select().from(checkpoints).where(eq(checkpoints.stageId, s.id)).all().length > 0 ? s : undefined;
  }, 240_000, 'SFT to checkpoint', 50).catch((e: Error) => assert.fail(`${e.message}: ${failure(c, runId)}`));
  const holder = c.workers.findIndex((w) => first.worker?.startsWith(`wk/`) && first.worker.includes(`-${w.proc.pid}.`));
  assert.ok(holder >= 0, `SFT held by one of the remote workers (${first.worker})`);
  c.topo.link(holder, false); // the cable is cut: no FIN, no RST, just silence

  // The other worker takes over once the heartbeat is stale.
  const second = await waitFor(() => {
    const s = sft();
    return s.state === 'running' && s.attempts >= 2 && s.worker !== first.worker ? s : undefined;
  }, 120_000, 'a takeover', 50).catch((e: Error) => assert.fail(`${e.message}: ${failure(c, runId)}`));
  assert.ok(second.worker!.includes(`-${c.workers[1 - holder]!.proc.pid}.`), 'taken over by the other worker');

  // Kill -9 the coordinator while a checkpoint upload is in flight, then start it again. The
  // part file exists (empty) a moment before its first chunk is written, so "in flight" means
  // bytes on disk; and an upload may be committed between our look and the kill, in which case we
  // wait for the next checkpoint's upload (a few tries).
  const tmp = path.join(c.coordHome, 'tmp');
  const partSizes = () => (fs.existsSync(tmp) ? fs.readdirSync(tmp).filter((f) => f.startsWith('upload-') && f.endsWith('.part')) : [])
    .map((f) => ({ f, size: fs.statSync(path.join(tmp, f), { throwIfNoEntry: false })?.size ?? 0 }));
  const parts = () => partSizes().map((p) => p.f);
  let caught = false;
  for (let attempt = 0; attempt < 4 && !caught; attempt++) {
    const seen = await waitFor(() => partSizes().find((p) => p.size > 0) ?? (sft().state !== 'running' ? null : undefined), 120_000, 'an upload in flight', 5);
    assert.ok(seen, 'caught a checkpoint upload in flight before SFT ended');
    await kill9(c.coordinator);
    const kept = fs.statSync(path.join(tmp, seen.f), { throwIfNoEntry: false })?.size;
    if (kept !== undefined) {
      assert.ok(kept >= seen.size, `the acknowledged chunks are on disk after kill -9 (${kept} of ${seen.size} bytes seen)`);
      caught = true;
    }
    c.coordinator = await c.startCoordinator();
  }
  assert.ok(caught, 'killed the coordinator with an upload in flight');

  const status = await waitFor(() => finished(c.db, runId), 300_000, 'the run', 250).catch((e: Error) => assert.fail(`${e.message}: ${failure(c, runId)}`));
  assert.equal(status, 'succeeded', failure(c, runId));
  assert.deepEqual(outputsOf(c.db, runId), ref.outputs, 'bit-identical to the uninterrupted run');
  const logs = runLogs(c.db, runId).map((e) => e.message);
  assert.ok(logs.some((m) => /stage sft: .* stopped answering; .* takes over/.test(m)), 'taken over from the cut worker');
  assert.ok(logs.some((m) => /SFT: resuming from the checkpoint of step \d+/.test(m)), 'resumed from its last uploaded checkpoint');
  assert.deepEqual(parts(), [], 'every upload completed (no part left behind)');
});
