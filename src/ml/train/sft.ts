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
import { evaluateLoss, type MicroBatchOutput, type TrainResult } from './loop.js';
import { runTraining, type PlannedResult, type TrainingHyper } from './plan.js';
import type { TrainerCheckpoint } from './checkpoint.js';
import { sftRecordText } from './records.js';
import { Rng, deriveSeed } from './rng.js';

/** The generic plan (steps, schedule, optimizer, cadence, seed) plus SFT's data settings. */
export interface SftHyper extends TrainingHyper {
  beta1: number;
  beta2: number;
  eps: number;
  /** Clamped to the model's context length. */
  maxLength: number;
  packing: boolean;
  addEos: boolean;
  evalBatchSize?: number;
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

export interface SftTaskOptions {
  model: CausalLM;
  tokenizer: TextTokenizer;
  train: SftRecord[];
  eval?: SftRecord[];
  /** Clamped to the model's context length. */
  maxLength: number;
  packing: boolean;
  addEos: boolean;
  evalBatchSize: number;
  seed: number;
  /** false: pack in dataset order (no shuffle before packing). Default true. */
  shuffle?: boolean;
  log?: (msg: string) => void;
}

/** What SFT trains on: rows (examples, or packed rows), the loss, the held-out evaluation and their statistics. */
export interface SftTask {
  rows: Example[];
  padId: number;
  lossFn: (b: Batch) => MicroBatchOutput;
  evalFn?: () => Promise<Record<string, number>>;
  data: SftDataStats;
  /** Mean completion tokens per row (for tokens/s). */
  targetTokensPerRow: number;
}

/** Records → token examples (truncation rule), optional packing, eval batches, and the causal-LM loss on completion tokens. */
export function prepareSftTask(o: SftTaskOptions): SftTask {
  const maxLength = Math.min(o.maxLength, o.model.contextLength);
  const pad = o.tokenizer.padTokenId ?? 0;
  if (o.tokenizer.vocabSize > o.model.vocabSize) {
    throw new AlignflowError('input', `the tokenizer produces ids up to ${o.tokenizer.vocabSize - 1}, but the model's vocab_size is ${o.model.vocabSize}`);
  }
  const tr = tokenize(o.tokenizer, o.train, o.addEos);
  const prep = prepareSftExamples(tr.pairs, maxLength);
  if (prep.examples.length === 0) {
    throw new AlignflowError('input', `no usable SFT example: all ${o.train.length} records were dropped (prompt ≥ max_length ${maxLength} tokens, or empty completion)`);
  }
  let rows: Example[] = prep.examples;
  if (o.packing) {
    // shuffle once before packing so rows mix examples; the cursor then shuffles rows per epoch
    const order = o.shuffle === false ? rows.map((_, i) => i) : new Rng(deriveSeed(o.seed, 'pack')).permutation(rows.length);
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
    const ev = tokenize(o.tokenizer, o.eval, o.addEos);
    const ep = prepareSftExamples(ev.pairs, maxLength);
    evalBatches = ep.examples.length ? sequentialBatches(ep.examples, o.evalBatchSize, pad) : [];
    data.eval = { ...ep.stats, records: o.eval.length, examples: ep.examples.length, targetTokens: evalBatches.reduce((a, b) => a + b.targetTokens, 0) };
  }
  const lossFn = (b: Batch) => causalLmLoss(o.model, b);
  const evalFn = evalBatches.length
    ? async () => {
        const r = await evaluateLoss(evalBatches, lossFn);
        return { eval_loss: r.loss, eval_perplexity: Math.exp(r.loss) };
      }
    : undefined;
  return { rows, padId: pad, lossFn, ...(evalFn ? { evalFn } : {}), data, targetTokensPerRow: data.train.targetTokens / rows.length };
}

/** Target (completion) tokens per second of this attempt only (a resumed run counts from its checkpoint), as TRL's num_tokens counts. */
export function tokensPerSecond(r: PlannedResult, tokensPerStep: number): number {
  return ((r.step - r.startStep) * tokensPerStep) / Math.max(r.seconds, 1e-9);
}

/** Perplexity of a logged training loss (exp of the token-weighted mean NLL), beside it. */
export function withPerplexity(m: Record<string, number>): Record<string, number> {
  return 'loss' in m ? { ...m, perplexity: Math.exp(m.loss!) } : m;
}

export async function runSft(o: SftRunOptions): Promise<SftRunResult> {
  const h = o.hyper;
  const task = prepareSftTask({
    model: o.model,
    tokenizer: o.tokenizer,
    train: o.train,
    ...(o.eval ? { eval: o.eval } : {}),
    maxLength: h.maxLength,
    packing: h.packing,
    addEos: h.addEos,
    evalBatchSize: h.evalBatchSize ?? h.batchSize,
    seed: h.seed,
    ...(o.log ? { log: o.log } : {}),
  });
  const result = await runTraining(
    h,
    { params: o.params ?? o.model.params, units: task.rows.length, data: new ExampleBatches(task.rows, h.batchSize, task.padId, deriveSeed(h.seed, 'data')), lossFn: task.lossFn, ...(task.evalFn ? { evalFn: task.evalFn } : {}) },
    {
      ...(o.resume ? { resume: o.resume } : {}),
      ...(o.onCheckpoint ? { onCheckpoint: o.onCheckpoint } : {}),
      onMetrics: (step, m) => o.onMetrics?.(step, withPerplexity(m)),
      ...(o.onProgress ? { onProgress: o.onProgress } : {}),
      ...(o.signal ? { signal: o.signal } : {}),
    },
  );
  const out: SftRunResult = {
    ...result,
    data: task.data,
    trainRuntime: result.seconds,
    trainTokensPerSecond: tokensPerSecond(result, task.targetTokensPerRow * h.batchSize * h.gradAccum),
  };
  const first = result.evals.find((e) => e.step === 0);
  if (first) out.initialEvalLoss = first.metrics.eval_loss;
  const last = result.evals.at(-1);
  if (last) out.finalEvalLoss = last.metrics.eval_loss;
  return out;
}
