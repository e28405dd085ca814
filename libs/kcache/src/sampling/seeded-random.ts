const MASK_64 = (1n << 64n) - 1n;
const GOLDEN_GAMMA = 0x9e3779b97f4a7c15n;
const TWO_POW_53 = 2 ** 53;

/** splitmix64's output function: a bijective 64-bit mix. */
function mix64(z: bigint): bigint {
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK_64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK_64;
  return z ^ (z >> 31n);
}

/**
 * Draw number index of the stream of seed, as 64 random bits: splitmix64's (index + 1)-th output,
 * mix64(seed + (index + 1) · γ mod 2^64). Counter based: a pure function of (seed, index), so a
 * request gets the same draws whatever else is in the batch, and after a resume at any index.
 */
export function randomBitsAt(seed: number, index: number): bigint {
  if (!Number.isSafeInteger(seed)) throw new RangeError(`seed must be a safe integer, got ${seed}`);
  if (!Number.isSafeInteger(index) || index < 0) throw new RangeError(`index must be a non-negative integer, got ${index}`);
  const state = (BigInt.asUintN(64, BigInt(seed)) + (BigInt(index) + 1n) * GOLDEN_GAMMA) & MASK_64;
  return mix64(state);
}

/** Draw number index of the stream of seed, uniform in [0, 1) with 53 random bits. */
export function uniformAt(seed: number, index: number): number {
  return Number(randomBitsAt(seed, index) >> 11n) / TWO_POW_53;
}

/** A sequential view of one stream (tests, property loops): next() is uniformAt(seed, 0), (seed, 1), ... */
export class SeededRandom {
  private index = 0;

  constructor(readonly seed: number) {
    if (!Number.isSafeInteger(seed)) throw new RangeError(`seed must be a safe integer, got ${seed}`);
  }

  /** Uniform in [0, 1). */
  next(): number {
    return uniformAt(this.seed, this.index++);
  }

  /** Uniform integer in [0, n). */
  nextInt(n: number): number {
    return Math.floor(this.next() * n);
  }
}
