// KTO (Ethayarajh et al. 2024, "KTO: Model Alignment as Prospect Theoretic Optimization",
// arXiv:2402.01306, eq. 7) for unpaired data, as TRL's KTOTrainer.kto_loss computes it.
import * as tf from '@tensorflow/tfjs';

export interface KtoInputs {
  /** Σ log π(y|x) over completion tokens, [B]; the differentiable side. */
  logps: tf.Tensor1D;
  /** Σ log π_ref(y|x), [B]. */
  refLogps: tf.Tensor1D;
  /** 1 for desirable, 0 for undesirable, [B]. */
  desirable: tf.Tensor1D;
}

export interface KtoOptions {
  beta: number;
  desirableWeight?: number;
  undesirableWeight?: number;
  /** The reference point z₀ from ktoBaseline (a plain number: no gradient flows through it). */
  kl: number;
  /** Divide the summed losses by this (the accumulated batch size); default B. */
  examples?: number;
}

/**
 * z₀ = max(0, mean(log π(y'|x) − log π_ref(y'|x))) over MISMATCHED (x, y') pairs of the batch —
 * TRL pairs each prompt with the completion of another example (shifted by one) — detached and
 * clamped at 0 (KTOTrainer: `.detach()` then `.clamp(min=0)`).
 */
export function ktoBaseline(klLogps: ArrayLike<number>, refKlLogps: ArrayLike<number>): number {
  if (klLogps.length === 0) return 0;
  let s = 0;
  for (let i = 0; i < klLogps.length; i++) s += klLogps[i]! - refKlLogps[i]!;
  return Math.max(0, s / klLogps.length);
}

/** Pairs example i's prompt with example (i−1 mod B)'s completion, as TRL's _get_kl_dataset does. */
export function mismatchedIndex(batchSize: number): number[] {
  return Array.from({ length: batchSize }, (_, i) => (i - 1 + batchSize) % batchSize);
}

/**
 * Desirable:   w_D·(1 − σ(β(r − z₀)));  undesirable: w_U·(1 − σ(β(z₀ − r))),  r = log π − log π_ref.
 * Returns per-example losses and their mean (TRL concatenates both groups and takes the mean).
 */
export function ktoLoss(x: KtoInputs, o: KtoOptions): { losses: tf.Tensor1D; loss: tf.Scalar } {
  const wd = o.desirableWeight ?? 1;
  const wu = o.undesirableWeight ?? 1;
  const r = tf.sub(x.logps, x.refLogps);
  const good = tf.mul(tf.sub(1, tf.sigmoid(tf.mul(tf.sub(r, o.kl), o.beta))), wd);
  const bad = tf.mul(tf.sub(1, tf.sigmoid(tf.mul(tf.sub(o.kl, r), o.beta))), wu);
  const losses = tf.add(tf.mul(x.desirable, good), tf.mul(tf.sub(1, x.desirable), bad)) as tf.Tensor1D;
  const n = o.examples ?? x.logps.shape[0];
  return { losses, loss: tf.div(tf.sum(losses), n) as tf.Scalar };
}
