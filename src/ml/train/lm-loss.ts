// The SFT objective: next-token cross-entropy summed over target tokens (completion tokens only;
// prompt and padding are masked by the batch's lossMask). Returned as a SUM with the token count
// as its weight, so the training loop can normalise by the tokens of the whole accumulated batch.
import * as tf from '@tensorflow/tfjs';
import type { CausalLM } from '../models/types.js';
import { fusedTokenLogps } from '../kernels/fused.js';
import type { Batch } from './data.js';
import type { MicroBatchOutput } from './loop.js';

/** Tensors of a collated batch (the caller disposes them, or builds them inside a tidy). */
export function batchTensors(b: Batch): { ids: tf.Tensor2D; attentionMask: tf.Tensor2D; lossMask: tf.Tensor2D } {
  return {
    ids: tf.tensor2d(b.ids, [b.batchSize, b.seqLen], 'int32'),
    attentionMask: tf.tensor2d(b.attentionMask, [b.batchSize, b.seqLen], 'float32'),
    lossMask: tf.tensor2d(b.lossMask, [b.batchSize, b.seqLen], 'float32'),
  };
}

/**
 * Per-token negative log-likelihood of ids[:, 1:] under logits[:, :-1]: [B, T-1].
 * nll = logsumexp(logits) − logit[target]; the target logit is picked with a one-hot product, not
 * gather with batchDims (wrong results on the wasm backend, see measured.md).
 */
export function tokenNll(logits: tf.Tensor3D, ids: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    const fused = fusedTokenLogps(logits, ids); // native backend: log-softmax + pick in one pass per row
    if (fused) return tf.neg(fused) as tf.Tensor2D;
    const [B, T, V] = logits.shape;
    const pred = tf.slice(logits, [0, 0, 0], [B, T - 1, V]);
    const targets = tf.slice(ids, [0, 1], [B, T - 1]);
    const lse = tf.logSumExp(pred, -1);
    // oneHot's int32 default, then a cast: the wasm OneHot kernel ignores dtype 'float32' and writes
    // int32 bit patterns (1 reads as 1.4e-45), which zeroed `picked` and let SFT drive every logit
    // down (negative loss). test/demo/engine-guards.test.ts guards it.
    const picked = tf.sum(tf.mul(pred, tf.cast(tf.oneHot(targets, V), 'float32')), -1);
    return tf.sub(lse, picked) as tf.Tensor2D;
  });
}

/** Σ over target tokens of −log p(token | prefix), and the number of target tokens. */
export function causalLmLoss(model: CausalLM, batch: Batch): MicroBatchOutput {
  const loss = tf.tidy(() => {
    const { ids, attentionMask, lossMask } = batchTensors(batch);
    const { logits } = model.forward(ids, { attentionMask });
    const nll = tokenNll(logits, ids);
    const mask = tf.slice(lossMask, [0, 1], [batch.batchSize, batch.seqLen - 1]);
    return tf.sum(tf.mul(nll, mask)) as tf.Scalar;
  });
  return { loss, weight: batch.targetTokens };
}
