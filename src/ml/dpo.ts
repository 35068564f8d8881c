// The DPO step on a causal LM: chosen and rejected go through the policy in ONE batched forward
// pass ([2B, T], padded to the longest row), completion log-probs are summed per row, and the
// selected losses (./losses) turn them into the loss the training loop minimises.
import * as tf from '@tensorflow/tfjs';
import type { CausalLM } from './models/types.js';
import { tokenLogps } from './logprobs.js';
import type { MicroBatchOutput } from './train/loop.js';
import type { PairBatch, PreparedPair } from './preference-data.js';
import { sequentialPairBatches } from './preference-data.js';
import { implicitRewards, ktoLoss, lossesNeedReference, preferenceLoss, type PreferenceInputs, type PreferenceLossName } from './losses/index.js';

/**
 * Σ_t log p(ids[t] | ids[<t]) over the positions where lossMask[t] = 1, per row: [N].
 * Uses ML core's tokenLogps (a flat gather: wasm's gather with batchDims > 0 is wrong, measured.md).
 */
export function sequenceLogps(logits: tf.Tensor3D, ids: Int32Array, lossMask: Float32Array, rows: number, seqLen: number): tf.Tensor1D {
  return tf.tidy(() => {
    if (seqLen < 2) return tf.zeros([rows]) as tf.Tensor1D;
    const lp = tokenLogps(logits, tf.tensor2d(ids, [rows, seqLen], 'int32')); // [N, T−1], flat gather (ML core)
    const m = tf.slice(tf.tensor2d(lossMask, [rows, seqLen]), [0, 1], [rows, seqLen - 1]);
    return tf.sum(tf.mul(lp, m), -1) as tf.Tensor1D;
  });
}

/** One forward of [chosen; rejected]: summed completion log-probs of each half, [B] each. */
export function pairLogps(model: CausalLM, b: PairBatch): { chosen: tf.Tensor1D; rejected: tf.Tensor1D } {
  return tf.tidy(() => {
    const rows = 2 * b.pairs;
    const ids = tf.tensor2d(b.ids, [rows, b.seqLen], 'int32');
    const mask = tf.tensor2d(b.attentionMask, [rows, b.seqLen]);
    const { logits } = model.forward(ids, { attentionMask: mask });
    const all = sequenceLogps(logits, b.ids, b.lossMask, rows, b.seqLen);
    return { chosen: tf.slice(all, [0], [b.pairs]) as tf.Tensor1D, rejected: tf.slice(all, [b.pairs], [b.pairs]) as tf.Tensor1D };
  });
}

export interface RefLogps {
  /** Summed reference log-probs per prepared pair (same order as the prepared list). */
  chosen: Float32Array;
  rejected: Float32Array;
}

/** Reference log-probs of every prepared pair, without gradients, batch by batch. */
export async function computeRefLogps(
  ref: CausalLM,
  prepared: readonly PreparedPair[],
  o: { batchSize: number; padId: number; onBatch?: (done: number, total: number) => void },
): Promise<RefLogps> {
  const chosen = new Float32Array(prepared.length);
  const rejected = new Float32Array(prepared.length);
  let done = 0;
  for (const b of sequentialPairBatches(prepared, o.batchSize, o.padId)) {
    const r = pairLogps(ref, b);
    const [c, rj] = await Promise.all([r.chosen.data(), r.rejected.data()]);
    r.chosen.dispose();
    r.rejected.dispose();
    b.positions.forEach((p, i) => {
      chosen[p] = c[i]!;
      rejected[p] = rj[i]!;
    });
    done += b.pairs;
    o.onBatch?.(done, prepared.length);
    await new Promise<void>((res) => setImmediate(res));
  }
  return { chosen, rejected };
}

export interface DpoLossConfig {
  beta: number;
  losses: readonly PreferenceLossName[];
  weights?: readonly number[];
  labelSmoothing?: number;
  simpoGamma?: number;
  orpoLambda?: number;
  rpoAlpha?: number;
}

/**
 * The training loop's lossFn for DPO-family losses. Returns the SUM of per-pair losses (weight =
 * pairs), so the loop's Σloss/Σweight is the mean over the whole accumulated step; the token-level
 * NLL term (sft/orpo/rpo_alpha) is normalised by the step's chosen tokens via batch.group.
 * Metrics are per-micro-batch means with TRL's names.
 */
export function dpoLossFn(model: CausalLM, cfg: DpoLossConfig, ref: RefLogps | undefined): (b: PairBatch) => MicroBatchOutput {
  const needRef = lossesNeedReference(cfg.losses);
  return (b) => {
    const { chosen, rejected } = pairLogps(model, b);
    const r = needRef && ref ? { chosen: b.positions.map((p) => ref.chosen[p]!), rejected: b.positions.map((p) => ref.rejected[p]!) } : undefined;
    return dpoLossOnLogps(cfg, b, chosen, rejected, r);
  };
}

/**
 * The DPO-family loss of a pair batch whose policy log-probs are already computed (summed, [B]
 * each), with the batch's reference log-probs as plain numbers (in batch order) when the losses
 * need them. dpoLossFn and the online DPO stage (which samples its pairs, ml/online-dpo.ts) share it.
 */
export function dpoLossOnLogps(cfg: DpoLossConfig, b: PairBatch, chosen: tf.Tensor1D, rejected: tf.Tensor1D, ref: { chosen: number[]; rejected: number[] } | undefined): MicroBatchOutput {
  const needRef = lossesNeedReference(cfg.losses);
  const averaged = cfg.losses.includes('ipo');
  const x: PreferenceInputs = {
    chosenLogps: chosen,
    rejectedLogps: rejected,
    chosenLengths: tf.tensor1d(b.targetCounts.slice(0, b.pairs)),
    rejectedLengths: tf.tensor1d(b.targetCounts.slice(b.pairs)),
  };
  if (needRef && ref) {
    x.refChosenLogps = tf.tensor1d(ref.chosen);
    x.refRejectedLogps = tf.tensor1d(ref.rejected);
  }
  // pairs normaliser 1 → Σ over pairs; tokens: Σ(−log p)/T_step · P_step, so that after the
  // loop divides by P_step the NLL term is the token-level mean over the step
  const n = { pairs: 1, chosenTokens: b.group.chosenTokens / b.group.pairs };
  const { loss } = preferenceLoss(x, { ...cfg, normaliser: n });
  const rw = implicitRewards(x, { beta: cfg.beta, losses: cfg.losses });
  const lp = (t: tf.Tensor1D, len: tf.Tensor1D) => (averaged ? tf.div(t, len) : t);
  const metrics = {
    'rewards/chosen': tf.mean(rw.chosen) as tf.Scalar,
    'rewards/rejected': tf.mean(rw.rejected) as tf.Scalar,
    // strictly greater, as TRL: (chosen_rewards > rejected_rewards).float().mean()
    'rewards/accuracies': tf.mean(tf.cast(tf.greater(rw.chosen, rw.rejected), 'float32')) as tf.Scalar,
    'rewards/margins': tf.mean(tf.sub(rw.chosen, rw.rejected)) as tf.Scalar,
    'logps/chosen': tf.mean(lp(chosen, x.chosenLengths)) as tf.Scalar,
    'logps/rejected': tf.mean(lp(rejected, x.rejectedLengths)) as tf.Scalar,
  };
  return { loss, weight: b.pairs, metrics };
}

/** Summed completion log-probs of one half of a pair batch (0: chosen rows, 1: rejected rows). */
function halfLogps(model: CausalLM, b: PairBatch, half: 0 | 1): tf.Tensor1D {
  return tf.tidy(() => {
    const n = b.pairs * b.seqLen;
    const ids = b.ids.subarray(half * n, (half + 1) * n);
    const mask = b.attentionMask.subarray(half * n, (half + 1) * n);
    const { logits } = model.forward(tf.tensor2d(ids, [b.pairs, b.seqLen], 'int32'), { attentionMask: tf.tensor2d(mask, [b.pairs, b.seqLen]) });
    return sequenceLogps(logits, ids, b.lossMask.subarray(half * n, (half + 1) * n), b.pairs, b.seqLen);
  });
}

export interface KtoLossConfig {
  beta: number;
  desirableWeight?: number;
  undesirableWeight?: number;
}

/**
 * The training loop's lossFn for KTO on rows from prepareUnpaired: the examples go through the
 * policy with gradients; the mismatched (x, y') rows go through it in a separate forward whose
 * value only feeds z₀ = max(0, mean(log π(y'|x) − log π_ref(y'|x))) as a plain number (no gradient,
 * as TRL detaches it). Metrics use sums over the micro-batch divided by its size, so the loop's
 * weighted averages become totals / examples; ktoMetrics() turns them into TRL's per-class means.
 */
export function ktoLossFn(model: CausalLM, cfg: KtoLossConfig, ref: RefLogps): (b: PairBatch) => MicroBatchOutput {
  return (b) => {
    const klPolicy = halfLogps(model, b, 1);
    const klVals = klPolicy.dataSync();
    klPolicy.dispose();
    let s = 0;
    b.positions.forEach((p, i) => (s += klVals[i]! - ref.rejected[p]!));
    const kl = Math.max(0, s / b.pairs);
    const logps = halfLogps(model, b, 0);
    const refLogps = tf.tensor1d(b.positions.map((p) => ref.chosen[p]!));
    const labels: number[] = b.positions.map((_, i) => (b.desirable?.[i] ? 1 : 0));
    const desirable = tf.tensor1d(labels);
    const { losses } = ktoLoss({ logps, refLogps, desirable }, { beta: cfg.beta, kl, desirableWeight: cfg.desirableWeight ?? 1, undesirableWeight: cfg.undesirableWeight ?? 1 });
    const rewards = tf.mul(tf.sub(logps, refLogps), cfg.beta);
    const und = tf.sub(1, desirable);
    const per = (t: tf.Tensor) => tf.div(tf.sum(t), b.pairs) as tf.Scalar;
    return {
      loss: tf.sum(losses) as tf.Scalar,
      weight: b.pairs,
      metrics: {
        kl,
        'count/chosen': labels.reduce((a: number, c: number) => a + c, 0) / b.pairs,
        'count/rejected': labels.reduce((a: number, c: number) => a + 1 - c, 0) / b.pairs,
        'rewards/chosen_sum': per(tf.mul(rewards, desirable)),
        'rewards/rejected_sum': per(tf.mul(rewards, und)),
        'logps/chosen_sum': per(tf.mul(logps, desirable)),
        'logps/rejected_sum': per(tf.mul(logps, und)),
      },
    };
  };
}

/** TRL's KTO logging: class sums / class counts → rewards/chosen, rewards/rejected, rewards/margins, logps/*. */
export function ktoMetrics(m: Record<string, number>, prefix = ''): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(m)) if (!/(_sum|count\/(chosen|rejected))$/.test(k)) out[k] = v;
  const div = (a: string, c: string) => {
    const n = m[prefix + c];
    return n ? m[prefix + a]! / n : NaN;
  };
  const rc = div('rewards/chosen_sum', 'count/chosen');
  const rr = div('rewards/rejected_sum', 'count/rejected');
  out[prefix + 'rewards/chosen'] = rc;
  out[prefix + 'rewards/rejected'] = rr;
  out[prefix + 'rewards/margins'] = rc - rr;
  out[prefix + 'logps/chosen'] = div('logps/chosen_sum', 'count/chosen');
  out[prefix + 'logps/rejected'] = div('logps/rejected_sum', 'count/rejected');
  return out;
}
