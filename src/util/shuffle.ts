/**
 * Fisher–Yates shuffle in place, drawing from `randInt(n)` (uniform in 0..n-1); returns the
 * array. Each PRNG supplies its own draw, so a dataset generator and the trainer keep independent
 * streams while sharing the algorithm.
 */
export function fisherYates<T>(arr: T[], randInt: (n: number) => number): T[] {
  for (let i = arr.length - 1; i > 0; i--) {
    const j = randInt(i + 1);
    const tmp = arr[i]!;
    arr[i] = arr[j]!;
    arr[j] = tmp;
  }
  return arr;
}
