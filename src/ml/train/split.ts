// The held-out split every training stage uses when it has no separate eval dataset.
import { Rng, deriveSeed } from './rng.js';

/**
 * A seeded split of `items`: eval gets round(fraction · n) of them, at least 1 and at most n − 1
 * when fraction > 0 and n ≥ 2 (none otherwise). Both halves keep the items' original order. The
 * permutation is drawn from its own stream (deriveSeed(seed, 'eval-split')), so the split does not
 * move when the data order's stream does.
 */
export function splitEval<T>(items: readonly T[], fraction: number, seed: number): { train: T[]; eval: T[] } {
  if (!(fraction > 0) || items.length < 2) return { train: [...items], eval: [] };
  const k = Math.min(items.length - 1, Math.max(1, Math.round(items.length * fraction)));
  const held = new Set(new Rng(deriveSeed(seed, 'eval-split')).permutation(items.length).slice(0, k));
  return { train: items.filter((_, i) => !held.has(i)), eval: items.filter((_, i) => held.has(i)) };
}
