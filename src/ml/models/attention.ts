// Pieces every decoder family shares: the key padding mask over cached + new positions, the additive
// causal mask, scaled dot-product attention with grouped-query heads, and per-tensor init seeds.
import * as tf from '@tensorflow/tfjs';
import { fusedAttentionSoftmax } from '../kernels/fused.js';
import { AlignflowError } from '../../errors.js';
import type { ForwardOptions, KVCache } from './types.js';

/** Call inside tf.tidy. The [B, past + T] key mask (1 real, 0 padding), or undefined when every key is real. */
export function keyPaddingMask(opts: ForwardOptions, B: number, T: number, past: number): tf.Tensor2D | undefined {
  const S = past + T;
  if (opts.attentionMask) {
    const m = tf.cast(opts.attentionMask, 'float32') as tf.Tensor2D;
    if (m.shape[1] === S) return m;
    if (m.shape[1] === T) {
      const prev = opts.cache?.mask ?? (past > 0 ? tf.ones([B, past]) : undefined);
      return prev ? (tf.concat([prev, m], 1) as tf.Tensor2D) : m;
    }
    throw new AlignflowError('internal', `attentionMask has ${m.shape[1]} columns; expected ${T} or ${S}`);
  }
  if (opts.cache?.mask) return tf.concat([opts.cache.mask, tf.ones([B, T])], 1) as tf.Tensor2D;
  return undefined;
}

/** Additive mask bias [B|1, 1, T, S]: 0 where query t may attend key s, a large negative number elsewhere. */
export function maskBias(T: number, past: number, keyMask: tf.Tensor2D | undefined): tf.Tensor4D {
  const S = past + T;
  const causal = new Float32Array(T * S);
  for (let t = 0; t < T; t++) for (let s = past + t + 1; s < S; s++) causal[t * S + s] = -1e9;
  const c = tf.tensor4d(causal, [1, 1, T, S]);
  if (!keyMask) return c;
  const pad = tf.mul(tf.sub(1, tf.cast(keyMask, 'float32')), -1e9).reshape([keyMask.shape[0], 1, 1, S]);
  return tf.add(c, pad) as tf.Tensor4D;
}

/**
 * softmax(q kᵀ · scale + bias) v with grouped-query attention: q [B, H, T, D], k and v [B, KV, S, D],
 * query head h reads key/value head ⌊h / (H/KV)⌋ (transformers' repeat_kv). The KV heads are not
 * copied: q's heads of one group are stacked along the time axis, [B, KV, G·T, D], and the mask is
 * tiled to match. Returns [B, H, T, D].
 */
export function attend(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, bias: tf.Tensor4D, scale: number): tf.Tensor4D {
  const [B, H, T, D] = q.shape;
  const KV = k.shape[1];
  if (H % KV !== 0) throw new AlignflowError('internal', `attend: ${H} query heads are not a multiple of ${KV} key/value heads`);
  const G = H / KV;
  if (G === 1) {
    const scores = tf.matMul(q, k, false, true) as tf.Tensor4D;
    const probs = fusedAttentionSoftmax(scores, bias, scale) ?? tf.softmax(tf.add(tf.mul(scores, scale), bias), -1); // one pass on native
    return tf.matMul(probs, v) as tf.Tensor4D;
  }
  const qg = tf.reshape(q, [B, KV, G * T, D]);
  const bg = tf.tile(bias, [1, 1, G, 1]);
  const scores = tf.add(tf.mul(tf.matMul(qg, k, false, true), scale), bg); // [B, KV, G·T, S]
  return tf.reshape(tf.matMul(tf.softmax(scores, -1), v), [B, H, T, D]) as tf.Tensor4D;
}

/** Per-tensor seeds (never 0: tfjs reads 0 as "unseeded"): the one function in ../tensor-seed.ts. */
export { tensorSeed } from '../tensor-seed.js';

/**
 * Call inside the forward's tidy. The forward's result from the final hidden states [B·T, C]: hidden
 * [B, T, C], logits through `head` [V, C] when asked, and the new KV cache when asked.
 */
export function forwardResult(
  hidden2: tf.Tensor2D,
  o: { B: number; T: number; head: tf.Tensor | undefined; opts: ForwardOptions; layers: { k: tf.Tensor4D; v: tf.Tensor4D }[]; length: number; keyMask: tf.Tensor2D | undefined },
): tf.TensorContainer {
  const hidden = tf.reshape(hidden2, [o.B, o.T, hidden2.shape[1]]) as tf.Tensor3D;
  if (!o.head) return { hidden } as unknown as tf.TensorContainer;
  const logits = tf.reshape(tf.matMul(hidden2, o.head, false, true), [o.B, o.T, o.head.shape[0]!]) as tf.Tensor3D;
  if (!o.opts.useCache) return { logits, hidden };
  const cache: KVCache = { layers: o.layers, length: o.length };
  if (o.keyMask) cache.mask = o.keyMask === o.opts.attentionMask ? (tf.clone(o.keyMask) as tf.Tensor2D) : o.keyMask;
  return { logits, hidden, cache } as unknown as tf.TensorContainer;
}

export function disposeParams(params: Map<string, tf.Variable>): void {
  for (const v of params.values()) v.dispose();
  params.clear();
}
