import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Xoshiro128Random } from '../model/xoshiro128-random';
import { interleavedToRotateHalf, rotateHalfToInterleaved } from './rope-layout';

/** Hugging Face's rotary embedding: x·cos + rotate_half(x)·sin, frequency i shared by dims i and i + d/2. */
function rotateHalfRope(x: number[], pos: number): number[] {
  const half = x.length / 2;
  return x.map((v, i) => {
    const j = i % half;
    const angle = pos * 10000 ** ((-2 * j) / x.length);
    const partner = i < half ? -x[i + half] : x[i - half];
    return v * Math.cos(angle) + partner * Math.sin(angle);
  });
}

/** The engine's (llama2.c's) rotary embedding on adjacent pairs. */
function interleavedRope(x: number[], pos: number): number[] {
  return x.map((v, i) => {
    const angle = pos * 10000 ** ((-2 * Math.floor(i / 2)) / x.length);
    return i % 2 === 0 ? v * Math.cos(angle) - x[i + 1] * Math.sin(angle) : x[i - 1] * Math.sin(angle) + v * Math.cos(angle);
  });
}

const dot = (a: number[], b: number[]) => a.reduce((sum, v, i) => sum + v * b[i], 0);

describe('RoPE row layouts', () => {
  it('the two permutations are inverses and move whole rows within each head', () => {
    const heads = 3;
    const d = 8;
    const width = 5;
    const m = Float32Array.from({ length: heads * d * width }, (_, i) => i);
    assert.deepEqual(interleavedToRotateHalf(rotateHalfToInterleaved(m, heads, d), heads, d), m);
    const moved = rotateHalfToInterleaved(m, heads, d);
    // Head 1, HF row d/2 + 1 (second half) becomes interleaved row 3.
    assert.deepEqual(moved.subarray((d + 3) * width, (d + 4) * width), m.subarray((d + d / 2 + 1) * width, (d + d / 2 + 2) * width));
  });

  it('permuted q and k give the interleaved convention the same attention scores', () => {
    const random = new Xoshiro128Random(5);
    const d = 16;
    for (let trial = 0; trial < 20; trial++) {
      const q = Array.from({ length: d }, () => random.nextUint32() / 2 ** 31 - 1);
      const k = Array.from({ length: d }, () => random.nextUint32() / 2 ** 31 - 1);
      const [pq, pk] = [q, k].map((v) => [...rotateHalfToInterleaved(Float32Array.from(v), 1, d)]);
      const hf = dot(rotateHalfRope(q, 7 + trial), rotateHalfRope(k, 3));
      const engine = dot(interleavedRope(pq, 7 + trial), interleavedRope(pk, 3));
      assert.ok(Math.abs(hf - engine) < 1e-5 * (1 + Math.abs(hf)), `${hf} vs ${engine}`);
    }
  });
});
