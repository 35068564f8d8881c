// Per-token log-probs of completions (the KL estimators need each token, not just the sum):
// the engine's collateScoring + tokenLogps, read back row by row over the scored positions.
import * as tf from '@tensorflow/tfjs';
import type { CausalLM } from '../ml/models/types.js';
import { AlignflowError } from '../errors.js';
import { collateScoring, tokenLogps, type PromptCompletion } from '../ml/logprobs.js';

export async function completionTokenLogps(model: CausalLM, items: PromptCompletion[], opts: { batchSize?: number; padId?: number; signal?: AbortSignal } = {}): Promise<Float64Array[]> {
  const bs = Math.max(1, opts.batchSize ?? 8);
  const maxLength = model.contextLength;
  const out: Float64Array[] = [];
  for (let i = 0; i < items.length; i += bs) {
    if (opts.signal?.aborted) throw new AlignflowError('cancelled', 'cancelled while scoring log-probs');
    const batch = collateScoring(items.slice(i, i + bs), { maxLength, padId: opts.padId });
    const { batchSize: B, seqLen: T } = batch;
    if (T < 2) {
      for (let b = 0; b < B; b++) out.push(new Float64Array(0));
      continue;
    }
    const lpT = tf.tidy(() => {
      const ids = tf.tensor2d(batch.ids, [B, T], 'int32');
      const mask = tf.tensor2d(batch.attentionMask, [B, T], 'float32');
      const { logits } = model.forward(ids, { attentionMask: mask });
      return tokenLogps(logits, ids);
    });
    const lp = (await lpT.data()) as Float32Array;
    lpT.dispose();
    for (let b = 0; b < B; b++) {
      const row: number[] = [];
      // lp[b, t-1] is the log-prob of ids[b, t]; scoreMask marks scored completion tokens (t ≥ 1).
      for (let t = 1; t < T; t++) if (batch.scoreMask[b * T + t]) row.push(lp[b * (T - 1) + t - 1]!);
      out.push(Float64Array.from(row));
    }
    await new Promise<void>((r) => setImmediate(r));
  }
  return out;
}
