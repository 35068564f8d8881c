// One rule for empty answers, for outside data and our own stages' outputs: a label stage's
// preference dataset (with an empty answer, as a sampled model can give) exports by artifact id,
// imports again, and trains a DPO stage (the empty answer as EOS only, as TRL does).
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { initBackend } from '../../src/ml/backend.js';
import { dpoStage } from '../../src/stages/dpo.js';
import { runLabelStage, labelConfigSchema } from '../../src/stages/label.js';
import { createLabelingPort } from '../../src/labeling/port.js';
import { PAIRS_FILE } from '../../src/labeling/pairs-artifact.js';
import { exportDataset, importDataset, readDatasetRecords } from '../../src/data/datasets.js';
import type { StageContext } from '../../src/stages/contract.js';
import { env, modelArtifact, stageContext } from '../ml/dpo-stage-helpers.js';

before(async () => {
  await initBackend();
});

const response = (id: string, text: string) => ({ id, text, model: 'a-00000000000000aa', sampling: { temperature: 1 }, seed: 1, score: null });

test('label output with an empty answer: datasets export by artifact id → import → DPO trains on it', { timeout: 120_000 }, async () => {
  const e = env();
  const pairs = Array.from({ length: 8 }, (_, i) => ({
    pair_id: `p-${i}`,
    prompt: `q ${i}:`,
    response_a: response(`r-${i}-a`, ` good ${i}`),
    // pair 0: the model stopped at once (an empty answer), and the labeler preferred it
    response_b: response(`r-${i}-b`, i === 0 ? '' : ` bad ${i}`),
  }));
  const pairsArt = await e.store.put({ kind: 'pairs', name: 'p', files: [{ path: PAIRS_FILE, data: Buffer.from(pairs.map((p) => JSON.stringify(p)).join('\n') + '\n') }] });
  const labelsFile = path.join(e.home, 'labels.jsonl');
  fs.writeFileSync(labelsFile, pairs.map((p, i) => JSON.stringify({ pair_id: p.pair_id, decision: i === 0 ? 'b' : 'a' })).join('\n') + '\n');
  e.db.$client.prepare(`INSERT INTO runs (id, name, spec, spec_hash, status, executor, created_at) VALUES ('r-rt', 't', '{}', 'x', 'running', 'inline', 0)`).run();
  e.db.$client.prepare(`INSERT INTO stages (id, run_id, name, kind, config, depends_on, state) VALUES ('s-label', 'r-rt', 'label', 'label', '{}', '[]', 'running')`).run();
  const ctx = {
    ...stageContext(e, 'label', labelConfigSchema.parse({ labeler: 'import', file: labelsFile }), { pairs: pairsArt }).ctx,
    runId: 'r-rt',
    stageId: 's-label',
    labeling: createLabelingPort(e.db),
  } as unknown as StageContext<ReturnType<typeof labelConfigSchema.parse>>;
  const out = await runLabelStage(ctx);
  assert.equal(out.status, 'done');
  if (out.status !== 'done') return;
  const labelDataset = out.outputs.dataset!;
  const records = [];
  for await (const r of readDatasetRecords(e.store, labelDataset.id, { kind: 'preference' })) records.push(r);
  assert.equal(records.length, 8);
  assert.deepEqual(records.find((r) => r.prompt === 'q 0:'), { prompt: 'q 0:', chosen: '', rejected: ' good 0' });

  // Export by the stage output's artifact id (it has no `datasets` row), then import the file.
  const file = path.join(e.home, 'exported.jsonl');
  const exported = await exportDataset(e.db, e.store, labelDataset.id, file);
  assert.equal(exported.records, 8);
  const imported = await importDataset(e.db, e.store, file, { name: 'from-labels' });
  assert.equal(imported.records, 8);
  assert.equal(imported.artifact.files[0]!.sha256, labelDataset.files[0]!.sha256, 'the same canonical lines');
  assert.equal(imported.warnings, 1);
  const emptyLine = fs.readFileSync(file, 'utf8').split('\n').findIndex((l) => l.includes('"chosen":""')) + 1;
  assert.deepEqual(imported.warningIssues.map((w) => [w.line, w.field]), [[emptyLine, 'chosen']]);
  assert.match(imported.warningIssues[0]!.reason, /empty.*EOS-only/);

  // …and a DPO stage trains on it.
  const model = await modelArtifact(e);
  const dpo = stageContext(e, 'dpo', { beta: 0.1, loss: 'sigmoid', max_length: 32, batch_size: 4, max_steps: 2, lr: 1e-3, schedule: 'constant', log_every: 1, eval_fraction: 0 }, { model, train: imported.artifact });
  const trained = await dpoStage.run(dpo.ctx as never);
  assert.equal(trained.status, 'done');
  if (trained.status !== 'done') return;
  assert.equal((trained.summary as { units: { train: number } }).units.train, 8, 'the empty-answer pair is trained on, not dropped');
  assert.ok(dpo.metrics.every((m) => Object.values(m.values).every(Number.isFinite)));
});
