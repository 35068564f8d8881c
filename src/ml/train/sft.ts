// Supervised fine-tuning on the engine level (no store, no orchestrator): records → tokens →
// examples (truncation rule, packing) → the generic loop with the causal-LM loss on completion
// tokens → eval_loss / eval_perplexity on the held-out split. The stage handler
// (src/stages/sft.ts) wraps it with artifacts, checkpoints and progress.
import { AlignflowError } from '../../errors.js';
import type { SftRecord } from '../../data/formats.js';
import type * as tf from '@tensorflow/tfjs';
import type { CausalLM } from '../models/types.js';
import type { TextTokenizer } from '../tokenizer/tokenizer.js';
import { BOUNDARY_NOTE, tokenizePair } from '../tokenizer/pairs.js';
import { ExampleBatches, packExamples, prepareSftExamples, sequentialBatches, type Batch, type Example, type PrepareStats } from './data.js';
import { causalLmLoss } from './lm-loss.js';
import { evaluateLoss, train, type TrainResult } from './loop.js';
import type { TrainerCheckpoint } from './checkpoint.js';
import { sftRecordText } from './records.js';
import { Rng, deriveSeed } from './rng.js';
import type { ScheduleKind } from './schedule.js';

export interface SftHyper {
  /** Optimizer updates; when absent, `epochs` over the (packed) training examples. */
  maxSteps?: number;
  epochs?: number;
  batchSize: number;
  gradAccum: number;
  lr: number;
  schedule: ScheduleKind;
  warmupSteps?: number;
  warmupRatio?: number;
  minLrRatio: number;
  weightDecay: number;
  beta1: number;
  beta2: number;
  eps: number;
  maxGradNorm: number;
  /** Clamped to the model's context length. */
  maxLength: number;
  packing: boolean;
  addEos: boolean;
  evalEvery?: number;
  evalBatchSize?: number;
  checkpointEvery?: number;
  logEvery: number;
  seed: number;
}

export interface SftDataStats {
  train: PrepareStats & { records: number; examples: number; rows: number; targetTokens: number; prefixMismatch: number };
  eval?: PrepareStats & { records: number; examples: number; targetTokens: number };
}

export interface SftRunOptions {
  model: CausalLM;
  /** The variables to train (default: all of the model's; LoRA passes its adapters). */
  params?: Map<string, tf.Variable>;
  tokenizer: TextTokenizer;
  train: SftRecord[];
  eval?: SftRecord[];
  hyper: SftHyper;
  resume?: TrainerCheckpoint;
  onCheckpoint?: (ckpt: TrainerCheckpoint) => Promise<void>;
  onMetrics?: (step: number, m: Record<string, number>) => void;
  onProgress?: (p: { step: number; total: number; metrics: Record<string, number> }) => void;
  log?: (msg: string) => void;
  signal?: AbortSignal;
}

export interface SftRunResult extends TrainResult {
  totalSteps: number;
  /** Seconds this call spent (including evaluation and checkpoints). */
  trainRuntime: number;
  /** Target (completion) tokens per second of this call, estimated from the mean tokens per row. */
  trainTokensPerSecond: number;
  data: SftDataStats;
  /** eval_loss before the first update (fresh runs with an eval split). */
  initialEvalLoss?: number;
  finalEvalLoss?: number;
}

function tokenize(tok: TextTokenizer, records: SftRecord[], addEos: boolean) {
  let mismatch = 0;
  const pairs = records.map((r) => {
    const t = sftRecordText(tok, r, { addEos });
    const p = tokenizePair(tok, t.prompt, t.completion);
    if (p.prefixMismatch) mismatch++;
    return { promptIds: p.promptIds, completionIds: p.completionIds };
  });
  return { pairs, mismatch };
}

/** Deterministic held-out split: `fraction` of the records (at least 1, at most n − 1). */
export function splitEval<T>(records: T[], fraction: number, seed: number): { train: T[]; eval: T[] } {
  if (!(fraction > 0) || records.length < 2) return { train: records, eval: [] };
  const n = Math.min(records.length - 1, Math.max(1, Math.round(records.length * fraction)));
  const perm = new Rng(deriveSeed(seed, 'eval-split')).permutation(records.length);
  const held = new Set(perm.slice(0, n));
  return { train: records.filter((_, i) => !held.has(i)), eval: records.filter((_, i) => held.has(i)) };
}

export function sftTotalSteps(h: Pick<SftHyper, 'maxSteps' | 'epochs' | 'batchSize' | 'gradAccum'>, trainRows: number): number {
  if (h.maxSteps !== undefined) return h.maxSteps;
  const epochs = h.epochs ?? 1;
  return Math.max(1, Math.ceil((epochs * trainRows) / (h.batchSize * h.gradAccum)));
}

export async function runSft(o: SftRunOptions): Promise<SftRunResult> {
  const h = o.hyper;
  const ctx = o.model.contextLength;
  const maxLength = Math.min(h.maxLength, ctx);
  const pad = o.tokenizer.padTokenId ?? 0;
  if (o.tokenizer.vocabSize > o.model.vocabSize) {
    throw new AlignflowError('input', `the tokenizer produces ids up to ${o.tokenizer.vocabSize - 1}, but the model's vocab_size is ${o.model.vocabSize}`);
  }

  const tr = tokenize(o.tokenizer, o.train, h.addEos);
  const prep = prepareSftExamples(tr.pairs, maxLength);
  if (prep.examples.length === 0) {
    throw new AlignflowError('input', `no usable SFT example: all ${o.train.length} records were dropped (prompt ≥ max_length ${maxLength} tokens, or empty completion)`);
  }
  let rows: Example[] = prep.examples;
  if (h.packing) {
    // shuffle once before packing so rows mix examples; the cursor then shuffles rows per epoch
    const order = new Rng(deriveSeed(h.seed, 'pack')).permutation(rows.length);
    rows = packExamples(order.map((i) => prep.examples[i]!), maxLength);
  }
  const data: SftDataStats = {
    train: {
      ...prep.stats,
      records: o.train.length,
      examples: prep.examples.length,
      rows: rows.length,
      targetTokens: rows.reduce((a, e) => a + e.lossMask.reduce((x, y, t) => x + (t > 0 ? y : 0), 0), 0),
      prefixMismatch: tr.mismatch,
    },
  };
  if (prep.stats.dropped) o.log?.(`SFT: dropped ${prep.stats.dropped} of ${o.train.length} training records (prompt ≥ max_length ${maxLength} tokens or empty completion)`);
  if (prep.stats.truncated) o.log?.(`SFT: truncated the completion of ${prep.stats.truncated} training records to max_length ${maxLength}`);
  if (tr.mismatch) o.log?.(`SFT: ${tr.mismatch} records merge a token across the prompt/completion boundary (${BOUNDARY_NOTE})`);

  let evalBatches: Batch[] = [];
  if (o.eval && o.eval.length) {
    const ev = tokenize(o.tokenizer, o.eval, h.addEos);
    const ep = prepareSftExamples(ev.pairs, maxLength);
    evalBatches = ep.examples.length ? sequentialBatches(ep.examples, h.evalBatchSize ?? h.batchSize, pad) : [];
    data.eval = { ...ep.stats, records: o.eval.length, examples: ep.examples.length, targetTokens: evalBatches.reduce((a, b) => a + b.targetTokens, 0) };
  }
  const totalSteps = sftTotalSteps(h, rows.length);
  const warmupSteps = h.warmupSteps ?? Math.ceil((h.warmupRatio ?? 0) * totalSteps);
  const lossFn = (b: Batch) => causalLmLoss(o.model, b);
  const evalFn = evalBatches.length
    ? async () => {
        const r = await evaluateLoss(evalBatches, lossFn);
        return { eval_loss: r.loss, eval_perplexity: Math.exp(r.loss) };
      }
    : undefined;

  const t0 = performance.now();
  const startStep = o.resume?.state.step ?? 0;
  const result = await train<Batch>({
    params: o.params ?? o.model.params,
    lossFn,
    data: new ExampleBatches(rows, h.batchSize, pad, deriveSeed(h.seed, 'data')),
    maxSteps: totalSteps,
    gradAccum: h.gradAccum,
    optimizer: { beta1: h.beta1, beta2: h.beta2, eps: h.eps, weightDecay: h.weightDecay },
    schedule: { lr: h.lr, kind: h.schedule, warmupSteps, totalSteps, minLrRatio: h.minLrRatio },
    maxGradNorm: h.maxGradNorm,
    seed: deriveSeed(h.seed, 'loop'),
    logEvery: h.logEvery,
    evalEvery: evalFn ? (h.evalEvery ?? Math.max(1, Math.ceil(totalSteps / 10))) : undefined,
    evalAtStart: !!evalFn,
    evalFn,
    checkpointEvery: h.checkpointEvery,
    onCheckpoint: o.onCheckpoint,
    resume: o.resume,
    checkpointExtra: { kind: 'sft', trainRows: rows.length },
    onMetrics: (step, m) => {
      // perplexity of the logged training loss (exp of the token-weighted mean NLL)
      o.onMetrics?.(step, 'loss' in m ? { ...m, perplexity: Math.exp(m.loss!) } : m);
    },
    onProgress: o.onProgress,
    signal: o.signal,
  });
  const secs = (performance.now() - t0) / 1000;
  const tokensPerStep = (data.train.targetTokens / rows.length) * h.batchSize * h.gradAccum;
  const out: SftRunResult = {
    ...result,
    totalSteps,
    data,
    // this attempt only (a resumed run counts from its checkpoint); target tokens, as TRL's num_tokens counts
    trainRuntime: secs,
    trainTokensPerSecond: ((result.step - startStep) * tokensPerStep) / Math.max(secs, 1e-9),
  };
  const first = result.evals.find((e) => e.step === 0);
  if (first) out.initialEvalLoss = first.metrics.eval_loss;
  const last = result.evals.at(-1);
  if (last) out.finalEvalLoss = last.metrics.eval_loss;
  return out;
}
