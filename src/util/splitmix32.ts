/**
 * splitmix32: expands a 32-bit seed into a stream of well-mixed uint32 words. Our PRNGs use it
 * only for seeding, so that nearby seeds give unrelated streams (constants from Steele, Lea &
 * Flood, "Fast splittable pseudorandom number generators", 2014, in their 32-bit variant).
 */
export function splitmix32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x9e3779b9) >>> 0;
    let z = a;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}
