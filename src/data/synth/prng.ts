// The generators' own small PRNG, so a dataset depends only on (generator version, seed, options)
// and never on another module's RNG changing. Algorithm: sfc32 (Chris Doty-Humphrey's "small fast
// counting" generator from PractRand), seeded through splitmix32 so nearby seeds give unrelated
// streams. Not cryptographic.
import { splitmix32 } from '../../util/splitmix32.js';
import { fisherYates } from '../../util/shuffle.js';

/** FNV-1a over the text's UTF-16 code units, mixed with a seed: a stable 32-bit hash. */
export function hash32(seed: number, text: string): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return splitmix32(h)();
}

export class Prng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  /** `seed` is a uint32; `stream` names an independent stream for the same seed. */
  constructor(seed: number, stream = '') {
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new RangeError(`seed must be an integer in [0, 2^32), got ${seed}`);
    const sm = splitmix32(hash32(seed, stream));
    this.a = sm();
    this.b = sm();
    this.c = sm();
    this.d = sm();
    for (let i = 0; i < 12; i++) this.uint32(); // warm-up, as sfc32's author recommends
  }

  uint32(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0;
    this.c = (this.c + t) >>> 0;
    return t;
  }

  /** Uniform in [0, 1), 32 bits of resolution (plenty for picking among a few hundred words). */
  next(): number {
    return this.uint32() / 4294967296;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    if (!Number.isInteger(n) || n <= 0) throw new RangeError(`int(n) needs a positive integer, got ${n}`);
    return Math.floor(this.next() * n);
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('pick from an empty list');
    return items[this.int(items.length)]!;
  }

  /** Picks by weight from [item, weight] entries (weights need not sum to 1). */
  weighted<T>(entries: readonly (readonly [T, number])[]): T {
    const total = entries.reduce((s, [, w]) => s + w, 0);
    let r = this.next() * total;
    for (const [item, w] of entries) {
      if (r < w) return item;
      r -= w;
    }
    return entries[entries.length - 1]![0];
  }

  /** k distinct items, in random order. */
  sample<T>(items: readonly T[], k: number): T[] {
    if (k > items.length) throw new RangeError(`cannot sample ${k} distinct items from ${items.length}`);
    return this.shuffle([...items]).slice(0, k);
  }

  /** Fisher–Yates, in place. */
  shuffle<T>(arr: T[]): T[] {
    return fisherYates(arr, (n) => this.int(n));
  }
}
