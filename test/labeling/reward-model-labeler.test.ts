// The label stage's `reward_model` labeler on a real (tiny, randomly initialised) reward model:
// tfjs arithmetic, a model artifact in a real SQLite-backed store, the labeling service over the
// same database. The rewards are recomputed here independently with scoreWithRewardModel, and the
// stage must have chosen the higher-reward side of every pair and recorded its source on every label.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { tmpDir } from '../helpers/tmp.js';
import { openDb } from '../../src/store/db.js';
import { createLocalStore } from '../../src/store/artifacts.js';
import { databasePath } from '../../src/config/paths.js';
import { initBackend } from '../../src/ml/backend.js';
import { createGpt2 } from '../../src/ml/models/gpt2.js';
import { bytesTokenizer } from '../../src/ml/tokenizer/index.js';
import { createRewardModel, saveRewardModelDir, loadRewardModelDir, scoreWithRewardModel } from '../../src/ml/reward.js';
import { createLabelingPort } from '../../src/labeling/port.js';
import { PAIRS_FILE } from '../../src/labeling/pairs-artifact.js';
import { runLabelStage, labelConfigSchema } from '../../src/stages/label.js';
import { readDatasetRecords } from '../../src/data/datasets.js';
import type { StageContext } from '../../src/stages/contract.js';

await initBackend();
const home = tmpDir('alignflow-rm-labeler-');
const db = openDb(databasePath(home));
const store = createLocalStore(db, home);
const tok = bytesTokenizer({ modelMaxLength: 64 });

// A reward model: micro GPT-2 body + a scalar head, random weights (what matters is that the stage
// follows the model, whatever it prefers), saved as transformers' GPT2ForSequenceClassification.
const rmDir = path.join(home, 'rm');
{
  const base = createGpt2({ vocab_size: 260, n_positions: 64, n_embd: 16, n_layer: 1, n_head: 2, eos_token_id: tok.eosTokenId, bos_token_id: tok.eosTokenId }, 21);
  const rm = createRewardModel(base, { seed: 5, padTokenId: tok.padTokenId! });
  saveRewardModelDir(rm, tok, rmDir);
  rm.base.dispose();
  rm.score.dispose();
}
const rmArtifact = await store.put({ kind: 'model', name: 'tiny-rm', files: fs.readdirSync(rmDir).map((f) => ({ path: f, sourceFile: path.join(rmDir, f) })) });

// Four pairs, then the same four with the sides swapped (same responses): the decision must flip.
const base4 = [
  { prompt: 'Name a colour.', a: ' Blue.', b: ' I do not know, maybe something.' },
  { prompt: 'What is 2+2?', a: ' 4', b: ' Four, of course!' },
  { prompt: 'Say hi.', a: ' Hello there, friend.', b: ' hi' },
  { prompt: 'A fruit?', a: ' An apple.', b: ' Rocks.' },
];
const lines = [
  ...base4.map((p, i) => ({ pair_id: `rmp-${i}`, prompt: p.prompt, response_a: { id: `rmr-${i}-a`, text: p.a }, response_b: { id: `rmr-${i}-b`, text: p.b } })),
  ...base4.map((p, i) => ({ pair_id: `rmp-${i}-swapped`, prompt: p.prompt, response_a: { id: `rmr-${i}-b`, text: p.b }, response_b: { id: `rmr-${i}-a`, text: p.a } })),
];
const pairsArtifact = await store.put({ kind: 'pairs', name: 'pairs', files: [{ path: PAIRS_FILE, data: Buffer.from(lines.map((l) => JSON.stringify(l)).join('\n') + '\n') }] });

function ctxFor(config: unknown) {
  const runId = 'run-' + Math.random().toString(36).slice(2);
  const stageId = 'stage-' + Math.random().toString(36).slice(2);
  db.$client.prepare(`INSERT INTO runs (id, name, spec, spec_hash, status, executor, created_at) VALUES (?, 't', '{}', 'x', 'running', 'inline', 0)`).run(runId);
  db.$client.prepare(`INSERT INTO stages (id, run_id, name, kind, config, depends_on, state) VALUES (?, ?, 'label', 'label', '{}', '[]', 'running')`).run(stageId, runId);
  const workDir = fs.mkdtempSync(path.join(home, 'work-'));
  return {
    stageId,
    ctx: {
      runId, stageId, stageName: 'label', kind: 'label',
      config: labelConfigSchema.parse(config),
      inputs: { pairs: pairsArtifact, reward_model: rmArtifact },
      store, workDir, seed: 1,
      latestCheckpoint: async () => undefined,
      saveCheckpoint: async () => { throw new Error('unused'); },
      progress: () => {}, metrics: () => {},
      log: { debug() {}, info() {}, warn() {}, error() {} },
      signal: new AbortController().signal,
      labeling: createLabelingPort(db),
    } as unknown as StageContext<ReturnType<typeof labelConfigSchema.parse>>,
  };
}

/** Rewards computed here, apart from the stage: prompt ids, completion ids + EOS (as training texts end). */
async function independentRewards(texts: { prompt: string; completion: string }[]): Promise<number[]> {
  const { model } = await loadRewardModelDir(rmDir);
  try {
    const items = texts.map((t) => ({ promptIds: tok.encode(t.prompt), completionIds: [...tok.encode(t.completion), tok.eosTokenId!] }));
    return (await scoreWithRewardModel(model, items, { batchSize: 3 })).map((s) => s.reward);
  } finally {
    model.dispose();
  }
}

test('reward_model labeler: the higher-reward side is chosen, rewards are stored, every label records its source', { timeout: 120_000 }, async () => {
  const { ctx, stageId } = ctxFor({ labeler: 'reward_model', batch_size: 3 });
  const out = await runLabelStage(ctx);
  assert.equal(out.status, 'done');
  if (out.status !== 'done') return;
  assert.equal(out.summary!.rewardModel, rmArtifact.id);

  const labels = db.$client
    .prepare(`SELECT l.pair_id, l.decision, l.source, l.user_id, l.rationale FROM labels l JOIN pairs p ON p.id = l.pair_id WHERE p.stage_id = ? ORDER BY l.pair_id`)
    .all(stageId) as { pair_id: string; decision: string; source: string; user_id: string | null; rationale: string }[];
  assert.equal(labels.length, lines.length, 'one label per pair');
  for (const l of labels) {
    assert.equal(l.source, `reward_model:${rmArtifact.id}`);
    assert.equal(l.user_id, null);
    assert.match(l.rationale, /^reward a=-?\d+\.\d{4} b=-?\d+\.\d{4}$/);
  }

  const rewards = await independentRewards(base4.flatMap((p) => [{ prompt: p.prompt, completion: p.a }, { prompt: p.prompt, completion: p.b }]));
  const decisions = new Map(labels.map((l) => [l.pair_id, l.decision]));
  const scoreOf = db.$client.prepare(`SELECT score FROM responses WHERE id = ?`);
  base4.forEach((_, i) => {
    const ra = rewards[2 * i]!;
    const rb = rewards[2 * i + 1]!;
    assert.ok(Math.abs(ra - rb) > 1e-6, `pair ${i}: the rewards differ (${ra}, ${rb})`);
    assert.equal(decisions.get(`rmp-${i}`), ra > rb ? 'a' : 'b', `pair ${i}: r(a)=${ra}, r(b)=${rb}`);
    assert.equal(decisions.get(`rmp-${i}-swapped`), ra > rb ? 'b' : 'a', `pair ${i} swapped`);
    // the stored rewards are the model's rewards
    assert.ok(Math.abs((scoreOf.get(`rmr-${i}-a`) as { score: number }).score - ra) < 1e-4);
    assert.ok(Math.abs((scoreOf.get(`rmr-${i}-b`) as { score: number }).score - rb) < 1e-4);
  });
  const chosenA = base4.filter((_, i) => rewards[2 * i]! > rewards[2 * i + 1]!).length;
  console.log(`rewards: ${rewards.map((r) => r.toFixed(4)).join(' ')}; "a" wins ${chosenA} of ${base4.length} unswapped pairs`);

  // The preference dataset: chosen is always the higher-reward response
  const recs: { prompt: string; chosen: string; rejected: string }[] = [];
  for await (const r of readDatasetRecords(store, out.outputs.dataset!.id, { kind: 'preference' })) recs.push(r as unknown as { prompt: string; chosen: string; rejected: string });
  assert.equal(recs.length, lines.length);
  for (const r of recs) {
    const i = base4.findIndex((p) => p.prompt === r.prompt);
    const [hi, lo] = rewards[2 * i]! > rewards[2 * i + 1]! ? [base4[i]!.a, base4[i]!.b] : [base4[i]!.b, base4[i]!.a];
    assert.deepEqual([r.chosen, r.rejected], [hi, lo]);
  }
  // The raw labels artifact carries the source of every label too
  const raw = (await store.readFile(out.outputs.labels!.id, 'labels.jsonl')).toString('utf8').trim().split('\n').map((l) => JSON.parse(l) as { annotator: string });
  assert.equal(raw.length, lines.length);
  for (const r of raw) assert.equal(r.annotator, `reward_model:${rmArtifact.id}`);

  // A retried stage does not label twice
  const again = await runLabelStage(ctx);
  assert.equal(again.status, 'done');
  assert.equal((db.$client.prepare(`SELECT count(*) AS n FROM labels l JOIN pairs p ON p.id = l.pair_id WHERE p.stage_id = ?`).get(stageId) as { n: number }).n, lines.length);
});

test('reward_model labeler: |r_a − r_b| within tie_margin is a tie (and ties leave the preference dataset)', { timeout: 120_000 }, async () => {
  const { ctx, stageId } = ctxFor({ labeler: 'reward_model', tie_margin: 1e6 });
  const out = await runLabelStage(ctx);
  assert.equal(out.status, 'done');
  if (out.status !== 'done') return;
  const rows = db.$client.prepare(`SELECT l.decision, l.source FROM labels l JOIN pairs p ON p.id = l.pair_id WHERE p.stage_id = ?`).all(stageId) as { decision: string; source: string }[];
  assert.equal(rows.length, lines.length);
  for (const r of rows) assert.deepEqual(r, { decision: 'tie', source: `reward_model:${rmArtifact.id}` });
  assert.equal(out.summary!.records, 0);
});

test('reward_model labeler: a missing reward model input, or an artifact that is not a reward model, fails clearly', async () => {
  const { ctx } = ctxFor({ labeler: 'reward_model' });
  const notRm = await store.put({ kind: 'dataset', name: 'not-a-model', files: [{ path: 'data.jsonl', data: Buffer.from('{}\n') }] });
  await assert.rejects(runLabelStage({ ...ctx, inputs: { pairs: pairsArtifact, reward_model: notRm } }), /is a dataset, not a reward model/);
  const c2 = ctxFor({ labeler: 'reward_model' });
  await assert.rejects(runLabelStage({ ...c2.ctx, inputs: { pairs: pairsArtifact } }), /needs a 'reward_model' input/);
  assert.equal((db.$client.prepare(`SELECT count(*) AS n FROM labels l JOIN pairs p ON p.id = l.pair_id WHERE p.stage_id IN (?, ?)`).get(ctx.stageId, c2.stageId) as { n: number }).n, 0, 'nothing stored');
});
