// Per-token estimators of KL(π ‖ π_ref) from tokens sampled from π (Schulman 2020, "Approximating
// KL Divergence", http://joschu.net/blog/kl-approx.html). With x ~ π, logr = log π_ref(x) − log π(x):
//   k1 = −logr                 unbiased, high variance, can be negative per sample
//   k2 = ½ logr²               biased, low variance
//   k3 = (e^logr − 1) − logr   unbiased, always ≥ 0, low variance (GRPO's per-token KL, TRL)
// Each is written once over plain numbers and once over tensors; the tests check the pair agrees
// and that each expectation under π equals the exact KL by enumeration.
import * as tf from '@tensorflow/tfjs';

export type KlEstimator = 'k1' | 'k2' | 'k3';

/** One token's estimate from log π(x) (`logp`) and log π_ref(x) (`refLogp`). */
export function klEstimate(estimator: KlEstimator, logp: number, refLogp: number): number {
  const logr = refLogp - logp;
  if (estimator === 'k1') return -logr;
  if (estimator === 'k2') return 0.5 * logr * logr;
  return Math.expm1(logr) - logr;
}

/** The same estimate elementwise over tensors (differentiable in `logp`). */
export function klEstimateTensor(estimator: KlEstimator, logp: tf.Tensor, refLogp: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const logr = tf.sub(refLogp, logp);
    if (estimator === 'k1') return tf.neg(logr);
    if (estimator === 'k2') return tf.mul(0.5, tf.square(logr));
    return tf.sub(tf.sub(tf.exp(logr), 1), logr);
  });
}

/** Exact KL(p ‖ q) of two discrete distributions (probabilities), for tests and references. */
export function exactKl(p: readonly number[], q: readonly number[]): number {
  let s = 0;
  p.forEach((pi, i) => {
    if (pi > 0) s += pi * Math.log(pi / q[i]!);
  });
  return s;
}
