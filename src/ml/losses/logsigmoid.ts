import * as tf from '@tensorflow/tfjs';

/**
 * log σ(z) = −softplus(−z). tf.logSigmoid's gradient breaks inside tf.variableGrads
 * (measured.md), and this form is also the numerically stable one for large |z|.
 */
export function logSigmoid(z: tf.Tensor): tf.Tensor {
  return tf.neg(tf.softplus(tf.neg(z)));
}

