// Shared by the engine tests (train*, checkpoint*, generate*, score*, sft*): a backend, a tiny
// GPT-2 and toy token data. Not a test file itself.
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/ml/backend.js';
import { createGpt2 } from '../../src/ml/models/gpt2.js';
import type { Gpt2Model } from '../../src/ml/models/gpt2.js';
import { Rng } from '../../src/ml/train/rng.js';
import type { Example, SftPair } from '../../src/ml/train/data.js';

export async function backend(): Promise<string> {
  const info = await initBackend();
  return info.name;
}

export const TINY = { vocab_size: 48, n_positions: 32, n_embd: 16, n_layer: 2, n_head: 2 };

export function tinyModel(seed = 1, over: Record<string, unknown> = {}): Gpt2Model {
  return createGpt2({ ...TINY, ...over }, seed);
}

/** Deterministic toy SFT pairs with varying prompt/completion lengths. */
export function toyPairs(n: number, seed = 7, vocab = TINY.vocab_size): SftPair[] {
  const r = new Rng(seed);
  return Array.from({ length: n }, () => {
    const P = r.int(5);
    const C = 2 + r.int(7);
    const start = 1 + r.int(vocab - 1);
    // a learnable pattern: completion counts upward from a random start (mod vocab)
    return {
      promptIds: Array.from({ length: P }, () => 1 + r.int(vocab - 1)),
      completionIds: Array.from({ length: C }, (_, i) => 1 + ((start + i) % (vocab - 1))),
    };
  });
}

export async function weightsBytes(params: Map<string, tf.Variable>): Promise<Map<string, Uint8Array>> {
  const out = new Map<string, Uint8Array>();
  for (const [n, v] of params) out.set(n, new Uint8Array(((await v.data()) as Float32Array).slice().buffer));
  return out;
}

export function examplesEqualLength(ex: Example[]): boolean {
  return ex.every((e) => e.ids.length === e.lossMask.length);
}
