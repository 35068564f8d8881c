// The `label` stage: turns the collect stage's pairs into a preference dataset.
//   labeler: human         pairs go to the labeling queue; the stage answers 'waiting' until every
//                          pair has `quota` labels or an admin closes the batch
//            rule          a judge module decides (judge(prompt,a,b) or score(prompt,response))
//            reward_model  a trained reward model (input role `reward_model`) scores both sides
//            import        labels from a JSONL file
// Outputs: `dataset` (TRL explicit-prompt preference records {prompt, chosen, rejected} in
// data.jsonl — the layout src/data reads, so reward and dpo stages take it as their train input)
// and `labels` (every raw label with its source, labels.jsonl).
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { AlignflowError } from '../errors.js';
import type { StageContext, StageHandler, StageOutcome } from './contract.js';
import type { ArtifactManifest } from '../store/types.js';
import { requireLabeling, type LabelingService, type MachineLabel } from '../labeling/port.js';
import { parsePairsJsonl, PAIRS_FILE } from '../labeling/pairs-artifact.js';
import { toJsonl } from '../labeling/export.js';
import { checkHumanBatch } from './human-batch.js';
import { loadJudge, runJudge } from '../labeling/labelers/rule.js';
import { readImportedLabels } from '../labeling/labelers/import.js';
import type { GoldInput, GoldRankingInput } from '../labeling/batches.js';
import { goldFromRankingJsonl } from '../labeling/sources.js';

export const labelConfigSchema = z
  .object({
    labeler: z.enum(['human', 'rule', 'reward_model', 'import']),
    /** human: labels wanted per pair. */
    quota: z.number().int().min(1).max(100).default(1),
    /** human: fraction of the queue that is gold pairs (needs gold_file or a `gold` input). */
    gold_rate: z.number().min(0).lt(1).default(0),
    /** human: JSONL of {prompt, chosen, rejected} with known answers. */
    gold_file: z.string().optional(),
    guidelines: z.string().max(20_000).default(''),
    lease_seconds: z.number().int().min(1).max(86_400).default(600),
    /** How often the orchestrator asks a waiting human stage again. */
    poll_ms: z.number().int().min(100).max(3_600_000).default(5_000),
    /** rule: path to the judge module. */
    judge: z.string().optional(),
    /** rule: the share of comparisons a judge may fail before the stage fails (0 = none may). */
    max_judge_error_rate: z.number().min(0).max(1).default(0),
    /** import: the JSONL label file. */
    file: z.string().optional(),
    /** reward_model: |r_a − r_b| at or below this is a tie. */
    tie_margin: z.number().min(0).default(0),
    batch_size: z.number().int().min(1).max(1024).default(8),
    /** How several labels of a pair become one preference (see docs/labeling.md). */
    resolution: z.enum(['majority', 'strength']).default('majority'),
    /** Ranking items (collect `items: ranking`): how a ranking becomes pairs (docs/labeling.md). */
    pair_rule: z.enum(['all', 'best_vs_rest']).default('all'),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.labeler === 'rule' && !c.judge) ctx.addIssue({ code: 'custom', path: ['judge'], message: 'the rule labeler needs `judge: path/to/judge.mjs`' });
    if (c.labeler === 'import' && !c.file) ctx.addIssue({ code: 'custom', path: ['file'], message: 'the import labeler needs `file: labels.jsonl`' });
    if (c.labeler !== 'human' && c.quota !== 1) ctx.addIssue({ code: 'custom', path: ['quota'], message: 'quota applies to human labeling only' });
    if (c.gold_rate > 0 && c.labeler !== 'human') ctx.addIssue({ code: 'custom', path: ['gold_rate'], message: 'gold pairs apply to human labeling only' });
  });

export type LabelConfig = z.infer<typeof labelConfigSchema>;

function pairsInput(ctx: StageContext<LabelConfig>): ArtifactManifest {
  const m = ctx.inputs.pairs ?? Object.values(ctx.inputs).find((a) => a.kind === 'pairs');
  if (!m) throw new AlignflowError('config', `stage ${ctx.stageName}: the label stage needs a 'pairs' input (from a collect stage)`);
  return m;
}

/** Gold for a ranking batch: {prompt, responses, ranking} lines (gold_file and/or a `gold` input). */
async function goldRankings(ctx: StageContext<LabelConfig>): Promise<GoldRankingInput[]> {
  const c = ctx.config;
  const out: GoldRankingInput[] = [];
  if (c.gold_file) {
    if (!fs.existsSync(c.gold_file)) throw new AlignflowError('config', `gold_file ${c.gold_file} does not exist`);
    out.push(...goldFromRankingJsonl(fs.readFileSync(c.gold_file, 'utf8'), c.gold_file));
  }
  const g = ctx.inputs.gold;
  if (g) out.push(...goldFromRankingJsonl((await ctx.store.readFile(g.id, g.files.find((f) => f.path.endsWith('.jsonl'))?.path ?? 'data.jsonl')).toString('utf8'), `artifact ${g.id}`));
  if (c.gold_rate > 0 && out.length === 0) throw new AlignflowError('config', 'gold_rate > 0 needs gold rankings for ranking items (gold_file or a `gold` input of {prompt, responses, ranking} lines)');
  return out;
}

async function goldPairs(ctx: StageContext<LabelConfig>): Promise<GoldInput[]> {
  const c = ctx.config;
  const out: GoldInput[] = [];
  const take = (text: string, where: string) =>
    text.split('\n').forEach((raw, i) => {
      if (!raw.trim()) return;
      let v: Record<string, unknown>;
      try {
        v = JSON.parse(raw) as Record<string, unknown>;
      } catch {
        throw new AlignflowError('input', `${where}, line ${i + 1}: not JSON`, { issues: [{ file: where, line: i + 1, reason: 'not JSON' }] });
      }
      if (typeof v.prompt !== 'string' || typeof v.chosen !== 'string' || typeof v.rejected !== 'string') {
        throw new AlignflowError('input', `${where}, line ${i + 1}: a gold pair needs string prompt, chosen and rejected`, { issues: [{ file: where, line: i + 1, reason: 'needs prompt, chosen, rejected' }] });
      }
      out.push({ prompt: v.prompt, chosen: v.chosen, rejected: v.rejected });
    });
  if (c.gold_file) {
    if (!fs.existsSync(c.gold_file)) throw new AlignflowError('config', `gold_file ${c.gold_file} does not exist`);
    take(fs.readFileSync(c.gold_file, 'utf8'), c.gold_file);
  }
  const g = ctx.inputs.gold;
  if (g) take((await ctx.store.readFile(g.id, g.files.find((f) => f.path.endsWith('.jsonl'))?.path ?? 'data.jsonl')).toString('utf8'), `artifact ${g.id}`);
  if (c.gold_rate > 0 && out.length === 0) throw new AlignflowError('config', 'gold_rate > 0 needs gold pairs (gold_file or a `gold` input)');
  return out;
}

async function machineLabels(ctx: StageContext<LabelConfig>, port: LabelingService, batchId: string): Promise<{ labels: MachineLabel[]; summary: Record<string, unknown> }> {
  const c = ctx.config;
  const pairs = await port.pairsOf(batchId);
  const onProgress = (done: number, total: number) => ctx.progress({ step: done, total, message: `${c.labeler}: ${done}/${total} pairs` });
  if (c.labeler === 'rule') {
    const judge = await loadJudge(c.judge!);
    const r = await runJudge(judge, pairs, { signal: ctx.signal, onProgress });
    for (const f of r.failures.slice(0, 20)) ctx.log.warn(f.message);
    if (r.failures.length > 20) ctx.log.warn(`… and ${r.failures.length - 20} more judge failures`);
    const rate = pairs.length ? r.failures.length / pairs.length : 0;
    if (r.failures.length > 0 && rate > c.max_judge_error_rate) {
      throw new AlignflowError('input', `judge ${judge.source} failed on ${r.failures.length} of ${pairs.length} comparisons (allowed: ${(c.max_judge_error_rate * 100).toFixed(1)}%); first: ${r.failures[0]!.message}`);
    }
    for (const [id, s] of r.scores) await port.setScore(id, s);
    return { labels: r.labels, summary: { judge: judge.source, judgeFailures: r.failures.length, judged: r.labels.length } };
  }
  if (c.labeler === 'import') {
    const labels = readImportedLabels(c.file!, pairs);
    return { labels, summary: { importedFrom: path.basename(c.file!), imported: labels.length } };
  }
  // reward_model
  const rm = ctx.inputs.reward_model ?? Object.values(ctx.inputs).find((a) => a.kind === 'model' || a.kind === 'checkpoint');
  if (!rm) throw new AlignflowError('config', `stage ${ctx.stageName}: the reward_model labeler needs a 'reward_model' input`);
  const { rewardModelLabels } = await import('../labeling/labelers/reward-model.js');
  const r = await rewardModelLabels(ctx, rm.id, pairs, { batchSize: c.batch_size, tieMargin: c.tie_margin, onProgress });
  for (const [id, s] of r.scores) await port.setScore(id, s);
  return { labels: r.labels, summary: { rewardModel: rm.id } };
}

export async function runLabelStage(ctx: StageContext<LabelConfig>): Promise<StageOutcome> {
  const c = ctx.config;
  const port = requireLabeling(ctx.labeling);
  const input = pairsInput(ctx);
  // Ranking items are ranked by people; the machine labelers decide between two answers only.
  const ranking = (input.metadata as { items?: string } | undefined)?.items === 'ranking';
  if (ranking && c.labeler !== 'human') throw new AlignflowError('config', `stage ${ctx.stageName}: the pairs input holds ranking items (collect items: ranking), which only the human labeler ranks; use labeler: human or collect items: pairs`);
  const batch = await port.ensureBatch({
    ...(ranking ? { kind: 'ranking' as const, pairRule: c.pair_rule } : {}),
    runId: ctx.runId,
    stageId: ctx.stageId,
    name: `${ctx.stageName} (${ctx.runId})`,
    guidelines: c.guidelines,
    quota: c.labeler === 'human' ? c.quota : 1,
    goldRate: c.labeler === 'human' ? c.gold_rate : 0,
    leaseSeconds: c.lease_seconds,
  });
  if (batch.status === 'open') {
    const text = (await ctx.store.readFile(input.id, PAIRS_FILE)).toString('utf8');
    // Gold: pairs with a known answer, or for ranking items gold rankings.
    const gold = c.labeler !== 'human' ? {} : ranking ? { goldRankings: await goldRankings(ctx) } : { gold: await goldPairs(ctx) };
    const fill = await port.fillBatch(batch.id, parsePairsJsonl(text, `artifact ${input.id}`), { ...gold, seed: ctx.seed });
    if (!fill.alreadyFilled) ctx.log.info(`label batch ${batch.id}: ${fill.added} pairs${fill.gold ? ` + ${fill.gold} gold` : ''}`);
  }
  let summary: Record<string, unknown> = { labeler: c.labeler, batchId: batch.id };
  if (c.labeler === 'human') {
    const check = await checkHumanBatch(ctx, port, batch.id, c.poll_ms);
    if (!check.finished) return check.outcome;
    const p = check.progress;
    summary = { ...summary, finished: check.reason, labels: p.labels, completePairs: p.completePairs, pairs: p.pairs };
  } else {
    // A retried stage finds its labels already stored (one transaction) and does not label twice.
    if ((await port.labelCount(batch.id)) === 0 && batch.status === 'open') {
      const r = await machineLabels(ctx, port, batch.id);
      await port.recordLabels(batch.id, r.labels);
      summary = { ...summary, ...r.summary };
    }
    await port.closeBatch(batch.id);
  }
  const prefs = await port.preferences(batch.id, c.resolution);
  const raw = await port.rawLabels(batch.id);
  if (prefs.records.length === 0) ctx.log.warn(`no pair resolved to a preference (excluded: ${JSON.stringify(prefs.excluded)})`);
  const dataset = await ctx.store.put({
    kind: 'dataset',
    name: `${ctx.stageName}-preferences`,
    files: [{ path: 'data.jsonl', data: Buffer.from(toJsonl(prefs.records)) }],
    metadata: { datasetKind: 'preference', format: 'explicit-prompt', records: prefs.records.length, skipped: 0, warnings: 0, resolution: c.resolution, labeler: c.labeler, excluded: prefs.excluded },
    inputs: [{ artifactId: input.id, role: 'pairs' }],
    producer: { runId: ctx.runId, stageId: ctx.stageId, role: 'dataset' },
  });
  const labels = await ctx.store.put({
    kind: 'labels',
    name: `${ctx.stageName}-labels`,
    files: [{ path: 'labels.jsonl', data: Buffer.from(toJsonl(raw)) }],
    metadata: { labels: raw.length, labeler: c.labeler },
    inputs: [{ artifactId: input.id, role: 'pairs' }],
    producer: { runId: ctx.runId, stageId: ctx.stageId, role: 'labels' },
  });
  return { status: 'done', outputs: { dataset, labels }, summary: { ...summary, records: prefs.records.length, excluded: prefs.excluded, rawLabels: raw.length } };
}

export const labelStage: StageHandler<LabelConfig> = {
  kind: 'label',
  configSchema: labelConfigSchema as unknown as StageHandler<LabelConfig>['configSchema'],
  heavy: false,
  run: runLabelStage,
};
