// Log-probabilities of completions given prompts: the scoring primitive behind `alignflow score`,
// reference log-probs and the DPO / reward losses.
//   logp(completion | prompt) = Σ_{t ∈ completion} log softmax(logits[t-1])[ids[t]]
// Prompt and completion ids are concatenated as tokenized separately (TRL's DPO concatenated_forward);
// sequences are right-padded to the longest in the batch with an attention mask. A token at
// position 0 has nothing to condition on and is never scored: with an empty prompt the first
// completion token is skipped (fixtures README; TRL shifts labels the same way).
import * as tf from '@tensorflow/tfjs';
import { AlignflowError } from '../errors.js';
import type { CausalLM } from './models/types.js';
import { fusedTokenLogps } from './kernels/fused.js';

export interface PromptCompletion {
  promptIds: number[];
  completionIds: number[];
}

export interface CompletionLogp {
  /** Σ log p over the scored completion tokens. */
  sum: number;
  /** sum / tokens (0 when no token is scored). */
  mean: number;
  /** Scored tokens. */
  tokens: number;
  /** The sequence was cut to fit the context (see truncatePair). */
  truncated: boolean;
}

/** Right-padded host-side batch. Arrays are row-major [batchSize, seqLen]. */
export interface ScoringBatch {
  batchSize: number;
  seqLen: number;
  ids: Int32Array;
  attentionMask: Float32Array;
  /** 1 where ids[b, t] is a scored completion token (t ≥ 1). */
  scoreMask: Float32Array;
  tokens: number[];
  truncated: boolean[];
}

/**
 * Fits prompt+completion into `maxLength` tokens. Rule (documented in docs/engine-models.md): drop
 * prompt tokens from the left first (the end of the prompt conditions the completion most), then
 * completion tokens from the right — as TRL's keep_end prompt / keep_start completion truncation.
 */
export function truncatePair(p: PromptCompletion, maxLength: number): PromptCompletion & { truncated: boolean } {
  const total = p.promptIds.length + p.completionIds.length;
  if (total <= maxLength) return { ...p, truncated: false };
  const completionIds = p.completionIds.slice(0, maxLength);
  const keepPrompt = maxLength - completionIds.length;
  const promptIds = keepPrompt > 0 ? p.promptIds.slice(p.promptIds.length - keepPrompt) : [];
  return { promptIds, completionIds, truncated: true };
}

export function collateScoring(pairs: PromptCompletion[], opts: { maxLength?: number; padId?: number } = {}): ScoringBatch {
  if (pairs.length === 0) throw new AlignflowError('internal', 'collateScoring: empty batch');
  const fitted = pairs.map((p) => (opts.maxLength ? truncatePair(p, opts.maxLength) : { ...p, truncated: false }));
  const seqLen = Math.max(1, ...fitted.map((p) => p.promptIds.length + p.completionIds.length));
  const B = pairs.length;
  const ids = new Int32Array(B * seqLen).fill(opts.padId ?? 0);
  const attentionMask = new Float32Array(B * seqLen);
  const scoreMask = new Float32Array(B * seqLen);
  const tokens: number[] = [];
  fitted.forEach((p, b) => {
    const row = b * seqLen;
    const P = p.promptIds.length;
    const all = [...p.promptIds, ...p.completionIds];
    let n = 0;
    all.forEach((id, t) => {
      ids[row + t] = id;
      attentionMask[row + t] = 1;
      if (t >= P && t >= 1) {
        scoreMask[row + t] = 1;
        n++;
      }
    });
    tokens.push(n);
  });
  return { batchSize: B, seqLen, ids, attentionMask, scoreMask, tokens, truncated: fitted.map((p) => p.truncated) };
}

/**
 * log p(ids[:, t] | ids[:, <t]) for t = 1..T-1: [B, T-1] (differentiable). The target's log-prob is
 * picked with a flat gather (reshape to [-1] plus row offsets), never gather with batchDims > 0,
 * which returns wrong values on the wasm backend (measured.md).
 */
export function tokenLogps(logits: tf.Tensor3D, ids: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    const fused = fusedTokenLogps(logits, ids); // one pass per row on the native backend
    if (fused) return fused;
    const [B, T, V] = logits.shape;
    const pred = tf.reshape(tf.slice(logits, [0, 0, 0], [B, T - 1, V]), [B * (T - 1), V]) as tf.Tensor2D;
    const targets = tf.reshape(tf.slice(ids, [0, 1], [B, T - 1]), [-1]);
    const flatIdx = tf.add(tf.mul(tf.range(0, B * (T - 1), 1, 'int32'), tf.scalar(V, 'int32')), tf.cast(targets, 'int32'));
    // logSoftmax has a closed-form gradient (dy − Σdy·softmax); logSumExp's goes through max and an
    // Equal mask over the whole [N, V] logits
    const picked = tf.gather(tf.reshape(tf.logSoftmax(pred, -1), [-1]), flatIdx);
    return tf.reshape(picked, [B, T - 1]) as tf.Tensor2D;
  });
}

export interface SequenceLogpsTensors {
  /** [B] Σ log p of the scored tokens. */
  sum: tf.Tensor1D;
  /** [B] number of scored tokens (constant). */
  count: tf.Tensor1D;
  /** [B, T, hiddenSize] hidden states after the final norm (the reward head reads these); only when asked. */
  hidden?: tf.Tensor3D;
}

/**
 * Differentiable per-sequence completion log-probs of a collated batch, for training losses (DPO,
 * SFT-style objectives). Call inside tf.variableGrads / optimizer.minimize or a tidy.
 */
export function sequenceLogpsTensors(model: CausalLM, batch: ScoringBatch, opts: { returnHidden?: boolean } = {}): SequenceLogpsTensors {
  const { batchSize: B, seqLen: T } = batch;
  return tf.tidy(() => {
    const ids = tf.tensor2d(batch.ids, [B, T], 'int32');
    const attentionMask = tf.tensor2d(batch.attentionMask, [B, T], 'float32');
    const count = tf.tensor1d(batch.tokens, 'float32');
    if (T < 2) {
      const zero = tf.zeros([B]) as tf.Tensor1D;
      return { sum: zero, count };
    }
    const { logits, hidden } = model.forward(ids, { attentionMask });
    const lp = tokenLogps(logits, ids);
    const mask = tf.slice(tf.tensor2d(batch.scoreMask, [B, T], 'float32'), [0, 1], [B, T - 1]);
    const sum = tf.sum(tf.mul(lp, mask), 1) as tf.Tensor1D;
    return opts.returnHidden ? { sum, count, hidden } : { sum, count };
  });
}

/**
 * Sum and mean completion log-prob of every pair, in batches of `batchSize` (order preserved).
 * Sequences longer than the model's context are truncated by truncatePair and flagged.
 */
export async function completionLogps(
  model: CausalLM,
  pairs: PromptCompletion[],
  opts: { batchSize?: number; padId?: number; onProgress?: (done: number, total: number) => void } = {},
): Promise<CompletionLogp[]> {
  const bs = Math.max(1, opts.batchSize ?? 8);
  const maxLength = model.contextLength;
  const out: CompletionLogp[] = [];
  for (let i = 0; i < pairs.length; i += bs) {
    const batch = collateScoring(pairs.slice(i, i + bs), { maxLength, padId: opts.padId });
    const sumT = tf.tidy(() => sequenceLogpsTensors(model, batch).sum);
    const sums = await sumT.data();
    sumT.dispose();
    batch.tokens.forEach((n, b) => {
      const sum = sums[b]!;
      out.push({ sum, mean: n > 0 ? sum / n : 0, tokens: n, truncated: batch.truncated[b]! });
    });
    opts.onProgress?.(Math.min(i + bs, pairs.length), pairs.length);
  }
  return out;
}
