// Sampled answers as training batches: [prompt ‖ completion] rows, right-padded, with a mask over
// the completion tokens in tokenLogps' [N, T−1] layout (position t−1 scores token t), and the
// per-token log-probs of those completion tokens under a model (the sampling policy, the
// reference) read back to the host.
import * as tf from '@tensorflow/tfjs';
import type { CausalLM } from '../models/types.js';
import { tokenLogps } from '../logprobs.js';

export interface RlSample {
  /** Index of the prompt's group within its rollout (k samples share it). */
  group: number;
  promptIds: number[];
  /** Sampled tokens, EOS included when emitted. */
  completionIds: number[];
  eos: boolean;
}

export interface CollatedRows {
  rows: number;
  seqLen: number;
  ids: Int32Array;
  attentionMask: Float32Array;
  /** [rows, seqLen−1]: 1 where position t−1 scores a completion token t. */
  completionMask: Float32Array;
}

export function collateSamples(samples: readonly RlSample[], padId: number): CollatedRows {
  const rows = samples.length;
  const seqLen = Math.max(2, ...samples.map((s) => s.promptIds.length + s.completionIds.length));
  const ids = new Int32Array(rows * seqLen).fill(padId);
  const attentionMask = new Float32Array(rows * seqLen);
  const completionMask = new Float32Array(rows * (seqLen - 1));
  samples.forEach((s, r) => {
    const all = [...s.promptIds, ...s.completionIds];
    all.forEach((id, t) => {
      ids[r * seqLen + t] = id;
      attentionMask[r * seqLen + t] = 1;
    });
    // the prompt is never empty (generate starts an empty one from BOS, and so do we), so the first
    // completion token sits at t ≥ 1 and has a position to be scored from
    for (let j = 0; j < s.completionIds.length; j++) completionMask[r * (seqLen - 1) + s.promptIds.length + j - 1] = 1;
  });
  return { rows, seqLen, ids, attentionMask, completionMask };
}

/** log π(token t | < t) for every position, [rows, seqLen−1], as a tensor (differentiable). */
export function rowTokenLogps(model: CausalLM, c: CollatedRows): tf.Tensor2D {
  return tf.tidy(() => {
    const ids = tf.tensor2d(c.ids, [c.rows, c.seqLen], 'int32');
    const { logits } = model.forward(ids, { attentionMask: tf.tensor2d(c.attentionMask, [c.rows, c.seqLen]) });
    return tokenLogps(logits, ids);
  });
}

/** The completion tokens' log-probs of each row under `model`, no gradient, on the host. */
export async function completionTokenLogps(model: CausalLM, c: CollatedRows): Promise<Float32Array[]> {
  const t = rowTokenLogps(model, c);
  const all = (await t.data()) as Float32Array;
  t.dispose();
  const W = c.seqLen - 1;
  const out: Float32Array[] = [];
  for (let r = 0; r < c.rows; r++) {
    const vals: number[] = [];
    for (let j = 0; j < W; j++) if (c.completionMask[r * W + j]) vals.push(all[r * W + j]!);
    out.push(Float32Array.from(vals));
  }
  return out;
}

/** Spreads per-row completion values back into the [rows, seqLen−1] layout (0 elsewhere). */
export function spread(c: CollatedRows, perRow: readonly ArrayLike<number>[]): Float32Array {
  const W = c.seqLen - 1;
  const out = new Float32Array(c.rows * W);
  for (let r = 0; r < c.rows; r++) {
    let j = 0;
    for (let t = 0; t < W; t++) if (c.completionMask[r * W + t]) out[r * W + t] = perRow[r]![j++]!;
  }
  return out;
}
