import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NativeOrt } from '../ort-native/native-ort';
import { GraphBuilder } from './graph-builder';
import { pagedDecodeAttention } from './paged-attention-op';

/**
 * The com.kcache PagedDecodeAttention operator alone, on the CPU provider through the kcache_ort addon: one node
 * over hand-made arenas. It rotates the step's query and K rows (RoPE), appends K and V in place, then attends;
 * checked against the same computed here in float64. Its refusals name the input at fault.
 * Shapes: 2 sequences, 1 KV head, 2 query heads per KV head, head dim 4, blocks of 2 positions, 2 blocks.
 */
const [B, HKV, G, D, BS, NB] = [2, 1, 2, 4, 2, 2];
const T = NB * BS;
const SLICES = 5;
const ROPE_POSITIONS = 8;

function graph(topN: boolean, renormalize = false): Uint8Array {
  const g = new GraphBuilder('paged_attention_op');
  const projected = g.input('projected', 'float32', [B, HKV * (G + 2) * D]);
  const positions = g.input('positions', 'int64', [B]);
  const rope = { cos: g.input('cos', 'float32', [ROPE_POSITIONS, D / 2]), sin: g.input('sin', 'float32', [ROPE_POSITIONS, D / 2]) };
  const kArena = g.input('k_arena', 'float32', ['k_slices_n', BS, D]);
  const kSlices = g.input('k_slices', 'int32', [B, HKV, NB]);
  const kWrites = g.input('k_writes', 'int64', [B, HKV, 1, 2]);
  const vArena = g.input('v_arena', 'float32', ['v_rows_n', D]);
  const vSlices = g.input('v_slices', 'int32', [B, HKV, NB]);
  const vWrites = g.input('v_writes', 'int64', [B, HKV, 1, 1]);
  const mask = g.input('mask', 'float32', [B, 1, 1, 'columns']);
  const top = topN ? g.input('top_n', 'int64', [1]) : '';
  const out = pagedDecodeAttention(g, { projected, positions, rope, kArena, kSlices, kWrites, vArena, vSlices, vWrites, mask, topN: top }, 0.5, renormalize);
  g.output(out, 'out', 'float32', [B, HKV * G * D]);
  return g.toBytes();
}

const values = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 7.1 + i * 1.3) * 2);
const qkv = values(B * HKV * (G + 2) * D, 1); // per sequence: G query rows, K, V (one KV head)
// RoPE tables: row p, pair j at angle p · 0.3 · (j + 1).
const cos = Float32Array.from({ length: ROPE_POSITIONS * (D / 2) }, (_, i) => Math.cos(Math.floor(i / (D / 2)) * 0.3 * ((i % (D / 2)) + 1)));
const sin = Float32Array.from({ length: ROPE_POSITIONS * (D / 2) }, (_, i) => Math.sin(Math.floor(i / (D / 2)) * 0.3 * ((i % (D / 2)) + 1)));
/** Row `slot` of sequence b's projection, rotated by RoPE at position p (interleaved pairs) unless it is V. */
function row(b: number, slot: number, p: number): number[] {
  const x = Array.from(qkv.subarray((b * (G + 2) + slot) * D, (b * (G + 2) + slot + 1) * D));
  if (slot === G + 1) return x;
  const out = x.slice();
  for (let j = 0; j < D / 2; j++) {
    const [c, s] = [cos[p * (D / 2) + j], sin[p * (D / 2) + j]];
    out[2 * j] = x[2 * j] * c - x[2 * j + 1] * s;
    out[2 * j + 1] = x[2 * j + 1] * c + x[2 * j] * s;
  }
  return out;
}
// Sequence 0 reads slices 3 then 1 (3 positions, the last masked); sequence 1 reads slices 0 then 4 (all 4).
const slices = Int32Array.from([3, 1, 0, 4]);
const lengths = [3, 4];
const mask = Float32Array.from({ length: B * T }, (_, i) => (i % T < lengths[Math.floor(i / T)] ? 0 : -Infinity));
// This step's position is each sequence's last open one: 2 (slice 1, row 0) and 3 (slice 4, row 1). K's table
// names (slice, row in the block), V's the arena row.
const kWrites = BigInt64Array.from([1n, 0n, 4n, 1n]);
const vWrites = BigInt64Array.from([1n * BigInt(BS), 4n * BigInt(BS) + 1n]);
const arenaRow = (b: number, t: number) => slices[b * NB + Math.floor(t / BS)] * BS + (t % BS);

/** The arenas as they are before the step, and as the step leaves them (each sequence's new K and V row written). */
function arenas(): { k: Float32Array; v: Float32Array; kAfter: Float32Array; vAfter: Float32Array } {
  const k = values(SLICES * BS * D, 2);
  const v = values(SLICES * BS * D, 3);
  const kAfter = k.slice();
  const vAfter = v.slice();
  for (let b = 0; b < B; b++) {
    kAfter.set(row(b, G, lengths[b] - 1), arenaRow(b, lengths[b] - 1) * D);
    vAfter.set(row(b, G + 1, lengths[b] - 1), arenaRow(b, lengths[b] - 1) * D);
  }
  return { k, v, kAfter, vAfter };
}

/** The attention of query head (b, g) in float64 over the written arenas: weights over positions, then the chosen ones' V rows summed. */
function expected(b: number, g: number, topN: number, renormalize: boolean): number[] {
  const { kAfter, vAfter } = arenas();
  const at = (arena: Float32Array, t: number) => Array.from(arena.subarray(arenaRow(b, t) * D, arenaRow(b, t) * D + D));
  const qv = row(b, g, lengths[b] - 1);
  const positions = Array.from({ length: lengths[b] }, (_, t) => t);
  const scores = positions.map((t) => 0.5 * at(kAfter, t).reduce((s, k, i) => s + k * qv[i], 0));
  const max = Math.max(...scores);
  const exps = scores.map((s) => Math.exp(s - max));
  const sum = exps.reduce((a, e) => a + e, 0);
  const p = exps.map((e) => e / sum);
  const chosen = topN > 0 ? [...positions].sort((x, y) => p[y] - p[x] || x - y).slice(0, topN) : positions;
  const kept = chosen.reduce((a, t) => a + p[t], 0);
  const out = [0, 0, 0, 0];
  for (const t of chosen) at(vAfter, t).forEach((v, i) => (out[i] += ((renormalize ? p[t] / kept : p[t]) * v)));
  return out;
}

interface Feeds {
  topN?: number;
  kSlices?: Int32Array;
  kWrites?: BigInt64Array;
  positions?: BigInt64Array;
  mask?: { values: Float32Array; dims: number[] };
}

/** One run; returns the output and the arenas as the run left them. */
function run(model: Uint8Array, feeds: Feeds = {}): { out: Float32Array; k: Float32Array; v: Float32Array } {
  const native = NativeOrt.load();
  const session = native.session(model, { provider: 'cpu', intraOpNumThreads: 1, pagedAttention: true });
  const { k, v } = arenas();
  try {
    const out = new Float32Array(B * HKV * G * D);
    const maskFeed = feeds.mask ?? { values: mask, dims: [B, 1, 1, T] };
    session.bind(
      {
        projected: native.hostTensor(qkv, 'float32', [B, HKV * (G + 2) * D]),
        positions: native.hostTensor(feeds.positions ?? BigInt64Array.from(lengths.map((n) => BigInt(n - 1))), 'int64', [B]),
        cos: native.hostTensor(cos, 'float32', [ROPE_POSITIONS, D / 2]),
        sin: native.hostTensor(sin, 'float32', [ROPE_POSITIONS, D / 2]),
        k_arena: native.hostTensor(k, 'float32', [SLICES, BS, D]),
        k_slices: native.hostTensor(feeds.kSlices ?? slices, 'int32', [B, HKV, NB]),
        k_writes: native.hostTensor(feeds.kWrites ?? kWrites, 'int64', [B, HKV, 1, 2]),
        v_arena: native.hostTensor(v, 'float32', [SLICES * BS, D]),
        v_slices: native.hostTensor(slices, 'int32', [B, HKV, NB]),
        v_writes: native.hostTensor(vWrites, 'int64', [B, HKV, 1, 1]),
        mask: native.hostTensor(maskFeed.values, 'float32', maskFeed.dims),
        ...(feeds.topN === undefined ? {} : { top_n: native.hostTensor(BigInt64Array.of(BigInt(feeds.topN)), 'int64', [1]) }),
      },
      { out: native.hostTensor(out, 'float32', [B, HKV * G * D]) },
    );
    session.run();
    return { out, k, v };
  } finally {
    session.release();
  }
}

function assertClose(actual: Float32Array, topN: number, renormalize: boolean): void {
  for (let b = 0; b < B; b++) {
    for (let g = 0; g < G; g++) {
      const want = expected(b, g, topN, renormalize);
      want.forEach((w, i) => assert.ok(Math.abs(actual[(b * G + g) * D + i] - w) < 1e-5, `b ${b} g ${g} [${i}]: ${actual[(b * G + g) * D + i]} vs ${w}`));
    }
  }
}

describe('PagedDecodeAttention (the CPU kernel, through the addon)', () => {
  it("appends the step's K row (rotated) and V row in place, at the rows the write tables name, and nowhere else", () => {
    const { k, v } = run(graph(false));
    const { kAfter, vAfter } = arenas();
    // K as rotated here in float64 (the kernel rounds in float32); V and the untouched rows exactly.
    k.forEach((x, i) => assert.ok(Math.abs(x - kAfter[i]) <= 1e-6, `K [${i}]: ${x} vs ${kAfter[i]}`));
    assert.deepEqual(Array.from(v), Array.from(vAfter));
  });

  it('exact: softmax of the rotated query over the unmasked positions of each sequence (the new one included), through its slice table', () => {
    assertClose(run(graph(false)).out, 0, false);
  });

  it('TopN: only the N most likely positions, weights as they are or renormalised; N past the length takes them all', () => {
    assertClose(run(graph(true), { topN: 2 }).out, 2, false);
    assertClose(run(graph(true, true), { topN: 2 }).out, 2, true);
    assertClose(run(graph(true), { topN: 9 }).out, 0, false);
  });

  it('refuses a slice or a write outside its arena, a position outside the RoPE tables and a mask of the wrong shape, naming the input', () => {
    assert.throws(() => run(graph(false), { positions: BigInt64Array.from([2n, BigInt(ROPE_POSITIONS)]) }), /PagedDecodeAttention: positions holds a position outside the cos and sin tables/);
    assert.throws(() => run(graph(false), { kSlices: Int32Array.from([3, 1, 0, SLICES]) }), /PagedDecodeAttention: k_slices holds a slice outside k_arena/);
    assert.throws(() => run(graph(false), { kWrites: BigInt64Array.from([1n, 0n, BigInt(SLICES), 0n]) }), /PagedDecodeAttention: k_writes names a row outside k_arena/);
    assert.throws(() => run(graph(false), { kWrites: BigInt64Array.from([1n, 0n, 4n, BigInt(BS)]) }), /PagedDecodeAttention: k_writes names a row outside k_arena/);
    assert.throws(() => run(graph(false), { mask: { values: new Float32Array(B * (T + 1)), dims: [B, 1, 1, T + 1] } }), /PagedDecodeAttention: mask must be \[batch, 1, 1, blocks x block size\]/);
  });
});
