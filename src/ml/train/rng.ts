// A small seedable PRNG whose whole state is four uint32s, so it can be written into a checkpoint
// and restored exactly. Algorithm: xoshiro128** 1.1 (Blackman & Vigna, "Scrambled linear
// pseudorandom number generators", 2021), seeded through splitmix32 so that nearby seeds give
// unrelated streams. Not cryptographic; used for shuffling, sampling and initialisation.
import { splitmix32 } from '../../util/splitmix32.js';
import { fisherYates } from '../../util/shuffle.js';

/** Serializable RNG state: four uint32 words (never all zero). */
export interface RngState {
  s: [number, number, number, number];
}

const rotl = (x: number, k: number) => ((x << k) | (x >>> (32 - k))) >>> 0;

/** Mixes a seed with labels (strings or numbers) into one uint32: derive independent streams. */
export function deriveSeed(seed: number, ...labels: (string | number)[]): number {
  let h = (seed >>> 0) ^ 0x811c9dc5;
  const text = labels.map(String).join('\u0000');
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return splitmix32(h)();
}

export class Rng {
  private s: Uint32Array;

  constructor(seedOrState: number | RngState) {
    this.s = new Uint32Array(4);
    if (typeof seedOrState === 'number') {
      if (!Number.isFinite(seedOrState)) throw new RangeError(`Rng seed must be a finite number, got ${seedOrState}`);
      const sm = splitmix32(Math.floor(seedOrState));
      for (let i = 0; i < 4; i++) this.s[i] = sm();
      if (this.s.every((w) => w === 0)) this.s[0] = 1;
    } else {
      this.setState(seedOrState);
    }
  }

  /** The next uint32 (xoshiro128**). */
  nextUint32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1]!, 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1]! << 9) >>> 0;
    s[2]! ^= s[0]!;
    s[3]! ^= s[1]!;
    s[1]! ^= s[2]!;
    s[0]! ^= s[3]!;
    s[2]! ^= t;
    s[3] = rotl(s[3]!, 11);
    return result;
  }

  /** Uniform in [0, 1) with 53 random bits. */
  next(): number {
    const hi = this.nextUint32() >>> 5; // 27 bits
    const lo = this.nextUint32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Uniform integer in [0, n), without modulo bias (rejection sampling). */
  int(n: number): number {
    if (!Number.isInteger(n) || n <= 0 || n > 0x100000000) throw new RangeError(`Rng.int needs 1 ≤ n ≤ 2^32, got ${n}`);
    const limit = 0x100000000 - (0x100000000 % n);
    for (;;) {
      const x = this.nextUint32();
      if (x < limit) return x % n;
    }
  }

  /** Standard normal (Box–Muller; one value per call, the pair's second half discarded for simplicity of state). */
  normal(): number {
    let u = 0;
    while (u === 0) u = this.next();
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** Fisher–Yates shuffle in place; returns the array. */
  shuffle<T>(arr: T[]): T[] {
    return fisherYates(arr, (n) => this.int(n));
  }

  /** A random permutation of 0..n-1. */
  permutation(n: number): number[] {
    return this.shuffle(Array.from({ length: n }, (_, i) => i));
  }

  state(): RngState {
    return { s: [this.s[0]!, this.s[1]!, this.s[2]!, this.s[3]!] };
  }

  setState(state: RngState): void {
    const words = state?.s;
    if (!Array.isArray(words) || words.length !== 4 || !words.every((w) => Number.isInteger(w) && w >= 0 && w <= 0xffffffff)) {
      throw new RangeError('invalid RNG state: expected { s: [4 uint32] }');
    }
    if (words.every((w) => w === 0)) throw new RangeError('invalid RNG state: all-zero');
    this.s.set(words);
  }

  clone(): Rng {
    return new Rng(this.state());
  }
}
