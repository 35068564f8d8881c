// Deterministic test inputs: xorshift32 floats uniform in [-scale, scale).
export function xorshiftFloats(n: number, seed: number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    a[i] = ((s >>> 0) / 2 ** 32) * 2 * scale - scale;
  }
  return a;
}
