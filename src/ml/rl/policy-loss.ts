// The PPO-style clipped surrogate (Schulman et al. 2017, eq. 7) used by TRL's RLOO and GRPO
// trainers, per unit u (a token, or a whole sequence):
//   ρ_u = exp(logp_u − logp_old_u)
//   L_u = −min(ρ_u·A, clip(ρ_u, 1−ε_low, 1+ε_high)·A)
// With one update per sampled batch (num_ppo_epochs = num_mini_batches = 1) ρ = 1 and L is the
// plain REINFORCE loss −A·logp (its gradient is −A·∇logp); more updates on the same samples make
// ρ ≠ 1 and the clip bites. Written once over numbers (the reference and the known-answer tests)
// and once over tensors (training, differentiable in logp).
import * as tf from '@tensorflow/tfjs';

export interface ClipRange {
  /** ε_low (TRL's epsilon / cliprange). */
  low: number;
  /** ε_high (TRL's epsilon_high; default ε_low). */
  high: number;
}

/** L for one unit; `clipped` when the clipped branch is the smaller one and differs (TRL's clip ratio). */
export function clippedLoss(logp: number, oldLogp: number, adv: number, eps: ClipRange): { loss: number; ratio: number; clipped: boolean } {
  const ratio = Math.exp(logp - oldLogp);
  const c = Math.min(Math.max(ratio, 1 - eps.low), 1 + eps.high);
  const a = ratio * adv;
  const b = c * adv;
  return { loss: -Math.min(a, b), ratio, clipped: b < a };
}

/** Elementwise L over tensors of one shape (advantages broadcast: [N] against [N] or [N, 1] against [N, T]). */
export function clippedLossTensor(logp: tf.Tensor, oldLogp: tf.Tensor, adv: tf.Tensor, eps: ClipRange): { loss: tf.Tensor; ratio: tf.Tensor; clipped: tf.Tensor } {
  return tf.tidy(() => {
    const ratio = tf.exp(tf.sub(logp, oldLogp));
    const c = tf.clipByValue(ratio, 1 - eps.low, 1 + eps.high);
    const a = tf.mul(ratio, adv);
    const b = tf.mul(c, adv);
    return { loss: tf.neg(tf.minimum(a, b)), ratio, clipped: tf.cast(tf.less(b, a), 'float32') };
  });
}
