// Reward-model loss: Bradley–Terry pairwise logistic loss (Bradley & Terry 1952; Ouyang et al.
// 2022, eq. 1), with TRL RewardTrainer's per-pair `margin` (Llama 2, Touvron et al. 2023, eq. 2)
// and `center_rewards_coefficient` term (Eisenstein et al. 2023).
import * as tf from '@tensorflow/tfjs';
import { logSigmoid } from './logsigmoid.js';

export interface BradleyTerryOptions {
  /** Per-pair margin m, [B] (optional in the data). */
  margin?: tf.Tensor1D;
  /** λ of the centring term λ·mean((r⁺ + r⁻)²); TRL's center_rewards_coefficient. */
  centerCoefficient?: number;
  /** Divide sums by this (the accumulated batch size); default B. */
  pairs?: number;
}

/** −log σ(r⁺ − r⁻ − m) + λ·(r⁺ + r⁻)² per pair; the scalar is their mean. */
export function bradleyTerryLoss(
  chosen: tf.Tensor1D,
  rejected: tf.Tensor1D,
  o: BradleyTerryOptions = {},
): { losses: tf.Tensor1D; loss: tf.Scalar } {
  let diff: tf.Tensor = tf.sub(chosen, rejected);
  if (o.margin) diff = tf.sub(diff, o.margin);
  let losses: tf.Tensor = tf.neg(logSigmoid(diff));
  if (o.centerCoefficient) losses = tf.add(losses, tf.mul(tf.square(tf.add(chosen, rejected)), o.centerCoefficient));
  const n = o.pairs ?? chosen.shape[0];
  return { losses: losses as tf.Tensor1D, loss: tf.div(tf.sum(losses), n) as tf.Scalar };
}
