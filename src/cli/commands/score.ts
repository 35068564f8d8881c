// alignflow score --model ID|DIR --dataset ID [--batch-size N] [--no-eos] [--limit N] [--json]
// Per-record completion log-probs: chosen_logps / rejected_logps (preference), logps (sft, unpaired).
import type { Command } from 'commander';
import { cliDb, printJson, printTable } from '../shared.js';
import { usageError } from '../../errors.js';
import { readDatasetRecords, resolveDataset } from '../../data/datasets.js';
import type { DatasetRecord } from '../../data/formats.js';
import { scoreRecords, type ScoreRow } from '../../ml/score.js';
import { cliStore } from './artifacts.js';
import { loadModelRef } from './model-ref.js';
import fs from 'node:fs';
import { alignflowHome, tmpDir } from '../../config/paths.js';
import { resolveArtifactId } from '../../store/registry.js';
import { loadRewardModelRef, scoreRecordsWithRewardModel, type RewardScoreRow } from '../../ml/reward.js';

export interface ScoreOpts {
  model?: string;
  rewardModel?: string;
  dataset: string;
  batchSize: string;
  eos: boolean;
  limit?: string;
  json?: boolean;
}

const posInt = (v: string, flag: string) => {
  const x = Number(v);
  if (!Number.isInteger(x) || x < 1) throw usageError(`${flag} must be a positive integer, got "${v}"`);
  return x;
};

export async function loadRecords(datasetRef: string, limit?: number) {
  const ds = resolveDataset(cliDb(), datasetRef);
  const records: DatasetRecord[] = [];
  for await (const r of readDatasetRecords(cliStore(), ds.artifactId)) {
    records.push(r);
    if (limit !== undefined && records.length >= limit) break;
  }
  return { ds, records };
}

// ---- --reward-model branch (issue 4, reward model + DPO helper): rewards instead of log-probs.
// The scoring itself is src/ml/reward.ts (scoreRecordsWithRewardModel); this only wires the CLI.
async function scoreWithRewardModel(o: ScoreOpts): Promise<void> {
  const batchSize = posInt(o.batchSize, '--batch-size');
  const limit = o.limit === undefined ? undefined : posInt(o.limit, '--limit');
  const { ds, records } = await loadRecords(o.dataset, limit);
  const ref = o.rewardModel!;
  const isDir = fs.existsSync(ref) && fs.statSync(ref).isDirectory();
  const { model, tokenizer } = await loadRewardModelRef(
    isDir ? { dir: ref } : { store: cliStore(), id: resolveArtifactId(cliDb(), ref), scratchDir: tmpDir(alignflowHome()) },
  );
  const t0 = performance.now();
  let rows: RewardScoreRow[];
  try {
    if (!tokenizer) throw usageError(`reward model ${ref} has no tokenizer.json`);
    rows = await scoreRecordsWithRewardModel(model, tokenizer, ds.kind, records, { batchSize, addEos: o.eos });
  } finally {
    model.dispose();
  }
  const secs = (performance.now() - t0) / 1000;
  if (o.json) return printJson({ reward_model: ref, dataset: ds.id, kind: ds.kind, records: rows.length, add_eos: o.eos, seconds: secs, scores: rows });
  printTable(rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'number' && !Number.isInteger(v) ? v.toFixed(4) : v]))));
  if (ds.kind === 'preference') {
    const acc = rows.filter((r) => 'margin' in r && r.margin > 0).length / Math.max(1, rows.length);
    process.stderr.write(`${rows.length} pairs in ${secs.toFixed(1)} s; accuracy (chosen > rejected) ${acc.toFixed(4)}\n`);
  } else process.stderr.write(`${rows.length} records in ${secs.toFixed(1)} s\n`);
}
// ---- end of the --reward-model branch

async function run(o: ScoreOpts): Promise<void> {
  if (o.rewardModel) {
    if (o.model) throw usageError('give either --model (log-probs) or --reward-model (rewards), not both');
    return scoreWithRewardModel(o);
  }
  if (!o.model) throw usageError('give --model ID|DIR (or --reward-model ID)');
  const batchSize = posInt(o.batchSize, '--batch-size');
  const limit = o.limit === undefined ? undefined : posInt(o.limit, '--limit');
  const { ds, records } = await loadRecords(o.dataset, limit);
  const { model, tokenizer, ref } = await loadModelRef(o.model);
  let rows: ScoreRow[];
  const t0 = performance.now();
  try {
    rows = await scoreRecords(model, tokenizer!, ds.kind, records, {
      batchSize,
      addEos: o.eos,
      onProgress: (d, n) => {
        if (!o.json && process.stderr.isTTY) process.stderr.write(`\rscored ${d}/${n}`);
      },
    });
  } finally {
    model.dispose();
  }
  if (!o.json && process.stderr.isTTY) process.stderr.write('\n');
  const secs = (performance.now() - t0) / 1000;
  if (o.json) {
    printJson({ model: ref, dataset: ds.id, kind: ds.kind, records: rows.length, add_eos: o.eos, seconds: secs, scores: rows });
    return;
  }
  const fmt = (r: ScoreRow) =>
    Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'number' && !Number.isInteger(v) ? v.toFixed(4) : v]));
  printTable(rows.map(fmt));
  const mean = (k: string) => rows.reduce((a, r) => a + ((r as unknown as Record<string, number>)[k] ?? 0), 0) / Math.max(1, rows.length);
  const keys = ds.kind === 'preference' ? ['chosen_logps', 'rejected_logps'] : ['logps'];
  process.stderr.write(`${rows.length} records in ${secs.toFixed(1)} s; mean ${keys.map((k) => `${k} ${mean(k).toFixed(4)}`).join(', ')}\n`);
}

export function register(program: Command): void {
  program
    .command('score')
    .description('log-probabilities of the completions of a dataset under a model (chosen/rejected for preference data)')
    .option('--model <id|dir>', 'model artifact id (or prefix) or a model directory')
    .option('--reward-model <id>', 'score with a reward model instead (rewards, not log-probs)')
    .requiredOption('--dataset <id>', 'dataset id, artifact id or name')
    .option('--batch-size <n>', 'records per forward pass', '8')
    .option('--no-eos', 'do not append EOS to standard-format completions (TRL appends it)')
    .option('--limit <n>', 'score only the first N records')
    .option('--json', 'print JSON')
    .action((o: ScoreOpts) => run(o));
}
