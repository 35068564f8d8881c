// A toy preference task with a learnable feature, generated in the tests: prompts of 3–6 random
// tokens; chosen and rejected are DIFFERENT random 4-token bodies, with a GOOD token inserted in the
// chosen one and a BAD token in the rejected one, at random slots. Nothing but GOOD/BAD separates them.
import { Rng } from '../../src/ml/train/rng.js';
import type { TokenPair } from '../../src/ml/preference-data.js';

export const PAD = 0;
export const GOOD = 3;
export const BAD = 4;

export function toyPairs(n: number, seed: number, vocab = 32): TokenPair[] {
  const rng = new Rng(seed);
  const tok = () => 5 + Math.floor(rng.next() * (vocab - 5));
  const completion = (marker: number) => {
    const body = Array.from({ length: 4 }, tok);
    const at = Math.floor(rng.next() * 5);
    return [...body.slice(0, at), marker, ...body.slice(at)];
  };
  return Array.from({ length: n }, () => ({
    promptIds: Array.from({ length: 3 + Math.floor(rng.next() * 4) }, tok),
    chosenIds: completion(GOOD),
    rejectedIds: completion(BAD),
  }));
}
