// The one place a seed for tf.random* is made. tfjs reads a falsy seed (0) as "no seed" and draws
// from Math.random (tfjs-core rand_util: `seed ? seed : Math.random()`), so a stage seed of 0 once
// gave two runs with one cache key different reward heads (issue 12, item 12).

/**
 * Stands in for 0, which tfjs cannot take as a seed. Not an integer, so no other seed (stage seeds
 * are integers, mixed ones are uint32) lands on it: seeds 0 and 1 draw different tensors. tfjs
 * seeds its generator with the number's string, so a fraction is as good a seed as any.
 */
const ZERO_STANDIN = 0.5;

/**
 * The seed to hand tf.random*: never 0. Without `index`, `seed` itself (so every nonzero seed draws
 * what it always drew). With `index`, a per-tensor stream mixed from (seed, index) (murmur3's
 * finaliser), so each tensor's values do not depend on the others.
 */
export function tensorSeed(seed: number, index?: number): number {
  let s = seed;
  if (index !== undefined) {
    let h = (seed ^ 0x9e3779b9) >>> 0;
    h = Math.imul(h ^ (index + 1), 0x85ebca6b) >>> 0;
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
    s = (h ^ (h >>> 16)) >>> 0;
  }
  return s === 0 ? ZERO_STANDIN : s;
}
