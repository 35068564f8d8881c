// Shared by the reward and DPO stages: load a model input, turn a preference dataset into token
// pairs (TRL's record → text → separately tokenized prompt/completion), split train/eval, and
// write a model directory as an artifact.
import fs from 'node:fs';
import path from 'node:path';
import { z, type ZodType } from 'zod';
import { AlignflowError } from '../errors.js';
import type { ArtifactFileInput, ArtifactManifest, ArtifactStore } from '../store/types.js';
import type { StageContext } from './contract.js';
import { readDatasetRecords } from '../data/datasets.js';
import { loadModelDir, type LoadedModel } from '../ml/models/io.js';
import type { TextTokenizer } from '../ml/tokenizer/tokenizer.js';
import { tokenizePair } from '../ml/tokenizer/pairs.js';
import { preferenceRecordText, unpairedRecordText } from '../ml/train/records.js';
import { Rng } from '../ml/train/rng.js';
import type { PreparedPair, TokenPair, UnpairedExample } from '../ml/preference-data.js';
import type { PreferenceRecord } from '../data/formats.js';
import { datasetMetadata } from '../data/datasets.js';

/**
 * Config fields the reward and DPO stages share: sequence lengths, batching, the optimizer and its
 * schedule, and how long and how often to train, evaluate, log and checkpoint.
 */
export function pairTrainingFields(defaults: { lr: number }) {
  return {
    max_length: z.number().int().min(2).default(128),
    max_prompt_length: z.number().int().min(1).optional(),
    add_eos: z.boolean().default(true),
    batch_size: z.number().int().positive().default(8),
    grad_accum: z.number().int().positive().default(1),
    eval_batch_size: z.number().int().positive().optional(),
    lr: z.number().positive().default(defaults.lr),
    schedule: z.enum(['cosine', 'constant', 'linear']).default('linear'),
    /** Warm-up steps; default round(warmup_ratio · max_steps). */
    warmup_steps: z.number().int().nonnegative().optional(),
    warmup_ratio: z.number().min(0).max(1).default(0),
    min_lr_ratio: z.number().min(0).max(1).default(0),
    weight_decay: z.number().nonnegative().default(0),
    max_grad_norm: z.number().nonnegative().default(1),
    /** Optimizer steps; when absent, ⌈epochs · train pairs / (batch_size·grad_accum)⌉. */
    max_steps: z.number().int().positive().optional(),
    epochs: z.number().positive().default(1),
    eval_fraction: z.number().min(0).max(0.9).default(0.1),
    eval_every: z.number().int().positive().optional(),
    log_every: z.number().int().positive().default(10),
    checkpoint_every: z.number().int().positive().default(50),
  };
}

/** The training-loop options that the fields of pairTrainingFields() decide. */
export function pairTrainOptions(cfg: PairTrainingConfig, steps: number, seed: number) {
  return {
    maxSteps: steps,
    gradAccum: cfg.grad_accum,
    optimizer: { weightDecay: cfg.weight_decay },
    schedule: { lr: cfg.lr, kind: cfg.schedule, warmupSteps: cfg.warmup_steps ?? Math.round(cfg.warmup_ratio * steps), minLrRatio: cfg.min_lr_ratio },
    maxGradNorm: cfg.max_grad_norm,
    seed,
    logEvery: cfg.log_every,
  };
}

type PairTrainingConfig = z.infer<z.ZodObject<ReturnType<typeof pairTrainingFields>>>;

/** Materialises a model artifact into the work dir and loads it (tokenizer required). */
export async function loadModelInput(ctx: StageContext<unknown>, role: string): Promise<LoadedModel & { artifact: ArtifactManifest }> {
  const artifact = ctx.inputs[role];
  if (!artifact) throw new AlignflowError('config', `stage "${ctx.stageName}" needs a "${role}" input (a model)`);
  if (artifact.kind !== 'model' && artifact.kind !== 'checkpoint') {
    throw new AlignflowError('config', `input "${role}" of stage "${ctx.stageName}" is a ${artifact.kind} artifact, not a model`);
  }
  const dir = path.join(ctx.workDir, `input-${role}`);
  fs.mkdirSync(dir, { recursive: true });
  await ctx.store.materialize(artifact.id, dir);
  const loaded = await loadModelDir(dir, { requireTokenizer: true });
  return { ...loaded, artifact };
}

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

/** A seeded split of prepared positions: eval gets round(fraction·n) (at least 1 when fraction > 0 and n ≥ 2). */
export function splitPositions(n: number, fraction: number, seed: number): { train: number[]; eval: number[] } {
  const perm = new Rng(seed).permutation(n);
  let k = Math.round(n * fraction);
  if (fraction > 0 && n >= 2) k = Math.max(1, Math.min(n - 1, k));
  const evalSet = perm.slice(0, k).sort((a, b) => a - b);
  const trainSet = perm.slice(k).sort((a, b) => a - b);
  return { train: trainSet, eval: evalSet };
}

export function subset(prepared: readonly PreparedPair[], positions: number[]): PreparedPair[] {
  return positions.map((p) => prepared[p]!);
}

/** Every file of a directory as artifact inputs (streamed from disk). */
export function dirFiles(dir: string): ArtifactFileInput[] {
  return fs
    .readdirSync(dir)
    .filter((f) => fs.statSync(path.join(dir, f)).isFile())
    .sort()
    .map((f) => ({ path: f, sourceFile: path.join(dir, f) }));
}

/** zod parse → a 'config' AlignflowError naming each bad field (never retried). */
export function parseStageConfig<T>(schema: ZodType<T>, raw: unknown, stage: string): T {
  const r = schema.safeParse(raw ?? {});
  if (r.success) return r.data;
  const issues = r.error.issues.map((i) => ({ field: i.path.join('.'), reason: i.message }));
  throw new AlignflowError('config', `stage "${stage}": invalid config: ${issues.map((i) => `${i.field || '(root)'}: ${i.reason}`).join('; ')}`, { issues });
}
