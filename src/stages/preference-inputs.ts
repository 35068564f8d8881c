// Shared by the reward and DPO stages: a preference (or unpaired) dataset → token pairs (TRL's
// record → text → separately tokenized prompt/completion) → prepared pairs under the truncation
// rule, and the pair batches, evaluation and config fields built on them.
import { z } from 'zod';
import { AlignflowError, configError } from '../errors.js';
import type { ArtifactStore } from '../store/types.js';
import type { StageContext } from './contract.js';
import { readDatasetRecords } from '../data/datasets.js';
import type { TextTokenizer } from '../ml/tokenizer/tokenizer.js';
import { BOUNDARY_NOTE, tokenizePair } from '../ml/tokenizer/pairs.js';
import { preferenceRecordText, unpairedRecordText } from '../ml/train/records.js';
import { evaluateLoss, type MicroBatchOutput } from '../ml/train/loop.js';
import { withPrefix } from '../ml/losses/index.js';
import { PairBatches, preparePairs, prepareUnpaired, sequentialPairBatches, type PairBatch, type PairStats, type PreparedPair, type TokenPair, type TruncationRule, type UnpairedExample } from '../ml/preference-data.js';
import type { TrainingConfig } from './training.js';
import type { PreferenceRecord } from '../data/formats.js';
import { datasetMetadata } from '../data/datasets.js';

export interface TokenizedDataset {
  pairs: TokenPair[];
  /** Records whose prompt tokens were not a prefix of prompt+completion tokens (reported, kept as tokenized separately). */
  prefixMismatches: number;
}

/** Preference records → token pairs, prompt and completions tokenized separately (see BOUNDARY_NOTE for how TRL differs). */
export async function tokenizePreferenceDataset(store: ArtifactStore, artifactId: string, tok: TextTokenizer, o: { addEos: boolean; template?: string }): Promise<TokenizedDataset> {
  const pairs: TokenPair[] = [];
  let prefixMismatches = 0;
  let line = 0;
  for await (const r of readDatasetRecords(store, artifactId, { kind: 'preference' })) {
    const t = tokenizePreferenceRecord(tok, r, o, `dataset ${artifactId}`, ++line);
    if (t.prefixMismatch) prefixMismatches++;
    pairs.push(t.pair);
  }
  return { pairs, prefixMismatches };
}

/**
 * One preference record → token pair: TRL's record → text rules, then prompt and completions
 * tokenized separately (TRL 1.13 cuts prompt+completion at the prompt's length instead; see
 * BOUNDARY_NOTE). Errors name `where` and the record's line. The eval stage scores held-out
 * pairs through this too, so they are tokenized exactly as training pairs are.
 */
export function tokenizePreferenceRecord(tok: TextTokenizer, r: PreferenceRecord, o: { addEos: boolean; template?: string }, where: string, line: number): { pair: TokenPair; prefixMismatch: boolean } {
  let t;
  try {
    t = preferenceRecordText(tok, r, { addEos: o.addEos, ...(o.template ? { template: o.template } : {}) });
  } catch (e) {
    if (e instanceof AlignflowError) throw new AlignflowError(e.kind, `${where}, record ${line}: ${e.message}`, { issues: [{ line, reason: e.message }] });
    throw e;
  }
  const c = tokenizePair(tok, t.prompt, t.chosen);
  const j = tokenizePair(tok, t.prompt, t.rejected);
  return {
    pair: { promptIds: c.promptIds, chosenIds: c.completionIds, rejectedIds: j.completionIds, ...(typeof r.margin === 'number' ? { margin: r.margin } : {}) },
    prefixMismatch: c.prefixMismatch || j.prefixMismatch,
  };
}

/**
 * Unpaired (KTO) examples: an 'unpaired' dataset as is, or a preference dataset unpaired as TRL's
 * unpair_preference_dataset does (chosen → desirable, rejected → undesirable, same prompt).
 */
export async function tokenizeUnpairedDataset(store: ArtifactStore, artifactId: string, tok: TextTokenizer, o: { addEos: boolean }): Promise<{ examples: UnpairedExample[]; prefixMismatches: number }> {
  const md = await datasetMetadata(store, artifactId);
  if (md.datasetKind === 'preference') {
    const t = await tokenizePreferenceDataset(store, artifactId, tok, o);
    return {
      examples: t.pairs.flatMap((p) => [
        { promptIds: p.promptIds, completionIds: p.chosenIds, desirable: true },
        { promptIds: p.promptIds, completionIds: p.rejectedIds, desirable: false },
      ]),
      prefixMismatches: t.prefixMismatches,
    };
  }
  const examples: UnpairedExample[] = [];
  let prefixMismatches = 0;
  for await (const r of readDatasetRecords(store, artifactId, { kind: 'unpaired' })) {
    const t = unpairedRecordText(tok, r, { addEos: o.addEos });
    const x = tokenizePair(tok, t.prompt, t.completion);
    if (x.prefixMismatch) prefixMismatches++;
    examples.push({ promptIds: x.promptIds, completionIds: x.completionIds, desirable: t.label });
  }
  return { examples, prefixMismatches };
}

/** Config fields of the stages that train on preference pairs, beside trainingFields(). */
export const pairFields = {
  /** Prompts longer than this keep their last tokens (TRL's max_prompt_length). */
  max_prompt_length: z.number().int().min(1).optional(),
};

export type PairConfig = TrainingConfig & { max_prompt_length?: number };

/** The truncation rule of a pair stage's config for a model of `contextLength` tokens (checked: the prompt limit is below max_length). */
export function truncationRule(ctx: StageContext<unknown>, cfg: PairConfig, contextLength: number): TruncationRule {
  if (cfg.max_prompt_length !== undefined && cfg.max_prompt_length >= cfg.max_length) {
    throw configError(`${ctx.kind}: max_prompt_length (${cfg.max_prompt_length}) must be smaller than max_length (${cfg.max_length})`);
  }
  if (cfg.max_length > contextLength) ctx.log.warn(`max_length ${cfg.max_length} exceeds the model's context ${contextLength}; using ${contextLength}`);
  return { maxLength: Math.min(cfg.max_length, contextLength), ...(cfg.max_prompt_length ? { maxPromptLength: cfg.max_prompt_length } : {}) };
}

/**
 * A dataset input → prepared pairs under `rule` (unpaired examples when `unpaired`), with the
 * counts of what was dropped or cut logged under `label`. `keepMargin: false` drops per-pair margins.
 */
export async function preparePreferenceInput(
  ctx: StageContext<unknown>,
  artifactId: string,
  tok: TextTokenizer,
  o: { rule: TruncationRule; addEos: boolean; label: string; unpaired?: boolean; keepMargin?: boolean },
): Promise<{ pairs: PreparedPair[]; stats: PairStats; prefixMismatches: number }> {
  let p: { pairs: PreparedPair[]; stats: PairStats };
  let mismatches: number;
  if (o.unpaired) {
    const t = await tokenizeUnpairedDataset(ctx.store, artifactId, tok, { addEos: o.addEos });
    p = prepareUnpaired(t.examples, o.rule);
    mismatches = t.prefixMismatches;
  } else {
    const t = await tokenizePreferenceDataset(ctx.store, artifactId, tok, { addEos: o.addEos });
    p = preparePairs(o.keepMargin === false ? t.pairs.map(({ margin: _m, ...x }) => x) : t.pairs, o.rule);
    mismatches = t.prefixMismatches;
  }
  const s = p.stats;
  ctx.log.info(
    `${o.label}: ${s.total} pairs, ${s.kept} kept; dropped ${s.droppedPromptTooLong} whose prompt fills max_length ${o.rule.maxLength}, ` +
      `skipped ${s.droppedIdentical} with chosen == rejected, ${s.droppedEmpty} with an empty completion; truncated ${s.promptTruncated} prompts, ${s.completionTruncated} completions`,
  );
  if (mismatches) ctx.log.warn(`${o.label}: ${mismatches} records merge a token across the prompt/completion boundary (${BOUNDARY_NOTE})`);
  if (o.label === 'train' && p.pairs.length === 0) throw new AlignflowError('input', `${ctx.kind}: no usable preference pairs in dataset ${artifactId} (see the counts in the log)`);
  return { ...p, prefixMismatches: mismatches };
}

/**
 * Pair batches over the training pairs and an evaluation over the eval pairs with the same loss:
 * `lossFor(which)` gives the loss of the train or the eval split; `shape` renames eval metrics.
 */
export function pairBatchesAndEval(
  cfg: TrainingConfig,
  seed: number,
  padId: number,
  split: { train: readonly PreparedPair[]; eval: readonly PreparedPair[] },
  lossFor: (which: 'train' | 'eval') => (b: PairBatch) => MicroBatchOutput,
  shape: (m: Record<string, number>) => Record<string, number> = (m) => m,
) {
  const evalBs = cfg.eval_batch_size ?? cfg.batch_size * 2;
  const evalFn =
    split.eval.length > 0
      ? async () => {
          const r = await evaluateLoss(sequentialPairBatches(split.eval, evalBs, padId), lossFor('eval'));
          return shape(withPrefix({ loss: r.loss, ...r.metrics }, 'eval_'));
        }
      : undefined;
  return {
    units: split.train.length,
    // the data order draws from the stage seed itself (SFT derives a stream): kept so that earlier runs reproduce
    data: new PairBatches(split.train, cfg.batch_size, cfg.grad_accum, padId, seed, { shuffle: cfg.shuffle }),
    lossFn: lossFor('train'),
    ...(evalFn ? { evalFn } : {}),
    evalsPerRun: 4,
  };
}
