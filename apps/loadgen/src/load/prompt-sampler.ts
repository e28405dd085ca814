/**
 * Prompts for `kcache load`: request i of a run with seed s always gets the same token ids, whichever
 * stream sends it. Ids are uniform in [0, vocabSize).
 */
export function promptTokenIds(seed: number, requestIndex: number, promptLen: number, vocabSize: number): number[] {
  const next = mulberry32(mix(seed, requestIndex));
  return Array.from({ length: promptLen }, () => Math.floor(next() * vocabSize));
}

/** The request's sampling seed (a uint32), also from (seed, request index). */
export function samplingSeed(seed: number, requestIndex: number): number {
  return mix(seed ^ 0x9e3779b9, requestIndex);
}

/** mulberry32: a small 32-bit PRNG, uniform in [0, 1). */
function mulberry32(state: number): () => number {
  let a = state >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Two integers → one well-mixed uint32 (murmur3's finalizer). */
function mix(a: number, b: number): number {
  let h = (Math.imul(a >>> 0, 0x85ebca6b) ^ Math.imul(b >>> 0, 0xc2b2ae35)) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
