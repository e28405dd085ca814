/**
 * xoshiro128** (Blackman & Vigna), seeded through splitmix32 so that nearby seeds give
 * unrelated streams. Deterministic across platforms: 32-bit integer arithmetic only.
 */
export class Xoshiro128Random {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  constructor(seed: number) {
    let state = seed >>> 0;
    const splitmix32 = (): number => {
      state = (state + 0x9e3779b9) | 0;
      let z = state;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = splitmix32();
    this.s1 = splitmix32();
    this.s2 = splitmix32();
    this.s3 = splitmix32();
  }

  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform in [0, 1). */
  nextFloat(): number {
    return this.nextUint32() / 4294967296;
  }

  /**
   * Fills `target` with zero-mean values of standard deviation `std`: a triangular
   * distribution (sum of two 16-bit uniforms), bell-shaped enough and one draw per value.
   */
  fillTriangular(target: Float32Array, std: number): void {
    // Each half is uniform on [0, 65535]; the centred sum has variance 2 * (65536^2 - 1) / 12.
    const scale = std / Math.sqrt((2 * (65536 * 65536 - 1)) / 12);
    for (let i = 0; i < target.length; i++) {
      const bits = this.nextUint32();
      target[i] = ((bits >>> 16) + (bits & 0xffff) - 65535) * scale;
    }
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
