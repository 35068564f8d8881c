// The RL training loss of one micro-batch of sampled answers (the training loop's lossFn contract:
// the SUM of per-answer losses, weight = answers). Per answer i with completion tokens t:
//   importance_sampling_level: token (GRPO, TRL GRPOTrainer):
//     L_i = (1/|y_i|) Σ_t [ −min(ρ_t A_i, clip(ρ_t) A_i) + β·kl_t·[kl_in = loss] ]
//   importance_sampling_level: sequence (TRL 1.13 RLOOTrainer):
//     L_i = −min(ρ_i A_i, clip(ρ_i) A_i) + β·(1/|y_i|) Σ_t kl_t·[kl_in = loss],  ρ_i = exp(Σ_t logp_t − old_t)
// kl_t is the configured estimator (./kl.ts) against the frozen reference. With kl_in = reward the
// penalty is already in A (see ./rollout.ts) and the loss has no KL term.
import * as tf from '@tensorflow/tfjs';
import type { CausalLM } from '../models/types.js';
import type { MicroBatchOutput } from '../train/loop.js';
import { rowTokenLogps, type CollatedRows } from './batch.js';
import { klEstimateTensor, type KlEstimator } from './kl.js';
import { clippedLossTensor, type ClipRange } from './policy-loss.js';

export interface RlBatch extends CollatedRows {
  /** Sampling-time policy log-probs, [rows, seqLen−1] (0 off the completion). */
  old: Float32Array;
  /** Reference log-probs, same layout. */
  ref: Float32Array;
  /** Advantage per row. */
  adv: Float32Array;
  /** Rollout statistics of these rows (TRL names), passed through as metrics. */
  stats: Record<string, number>;
}

export interface RlLossConfig {
  level: 'token' | 'sequence';
  eps: ClipRange;
  beta: number;
  klIn: 'reward' | 'loss';
  klEstimator: KlEstimator;
}

export function rlLossFn(model: CausalLM, cfg: RlLossConfig): (b: RlBatch) => MicroBatchOutput {
  return (b) => {
    const N = b.rows;
    const W = b.seqLen - 1;
    const lp = rowTokenLogps(model, b);
    const mask = tf.tensor2d(b.completionMask, [N, W]);
    const old = tf.tensor2d(b.old, [N, W]);
    const lens = tf.maximum(tf.sum(mask, 1), 1);
    const adv = tf.tensor1d(b.adv);
    const perTokenMean = (t: tf.Tensor) => tf.div(tf.sum(tf.mul(t, mask), 1), lens);
    let policy: tf.Tensor; // [N]
    let ratio: tf.Tensor;
    let clipped: tf.Tensor;
    let logDiff: tf.Tensor; // the log-ratio per unit, for approxkl
    if (cfg.level === 'token') {
      const r = clippedLossTensor(lp, old, tf.reshape(adv, [N, 1]), cfg.eps);
      policy = perTokenMean(r.loss);
      ratio = perTokenMean(r.ratio);
      clipped = perTokenMean(r.clipped);
      logDiff = perTokenMean(tf.square(tf.sub(lp, old)));
    } else {
      const d = tf.sum(tf.mul(tf.sub(lp, old), mask), 1);
      const r = clippedLossTensor(d, tf.zerosLike(d), adv, cfg.eps);
      policy = r.loss;
      ratio = r.ratio;
      clipped = r.clipped;
      logDiff = tf.square(d);
    }
    let loss = policy;
    let kl: tf.Tensor | undefined;
    if (cfg.klIn === 'loss' && cfg.beta > 0) {
      kl = perTokenMean(klEstimateTensor(cfg.klEstimator, lp, tf.tensor2d(b.ref, [N, W])));
      loss = tf.add(policy, tf.mul(cfg.beta, kl));
    }
    const mean = (t: tf.Tensor) => tf.mean(t) as tf.Scalar;
    return {
      loss: tf.sum(loss) as tf.Scalar,
      weight: N,
      metrics: {
        ...b.stats,
        'loss/policy': mean(policy),
        'policy/clipfrac': mean(clipped),
        // old PPO/RLOO trainers: approxkl = ½·E[(logp − logp_old)²]
        'policy/approxkl': tf.mul(0.5, mean(logDiff)) as tf.Scalar,
        'val/ratio': mean(ratio),
        ...(kl ? { 'loss/kl': mean(kl) } : {}),
      },
    };
  };
}
