import * as tf from '@tensorflow/tfjs';

/**
 * log σ(z) = −softplus(−z). tf.logSigmoid's gradient breaks inside tf.variableGrads
 * (measured.md), and this form is also the numerically stable one for large |z|.
 */
export function logSigmoid(z: tf.Tensor): tf.Tensor {
  return tf.neg(tf.softplus(tf.neg(z)));
}

/** Scalar version for metrics computed on plain numbers. */
export function logSigmoidNum(z: number): number {
  // −softplus(−z), stable on both sides
  return z >= 0 ? -Math.log1p(Math.exp(-z)) : z - Math.log1p(Math.exp(z));
}
