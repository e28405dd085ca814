import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NativeOrt } from '../ort-native/native-ort';
import { GraphBuilder } from './graph-builder';
import { pagedDecodeAttention } from './paged-attention-op';

/**
 * The com.kcache PagedDecodeAttention operator alone, on the CPU provider through the kcache_ort addon: one node
 * over hand-made arenas, against the attention computed here in float64; its refusals name the input at fault.
 * Shapes: 2 sequences, 1 KV head, 2 query heads per KV head, head dim 4, blocks of 2 positions, 2 blocks.
 */
const [B, HKV, G, D, BS, NB] = [2, 1, 2, 4, 2, 2];
const T = NB * BS;
const SLICES = 5;

function graph(topN: boolean, renormalize = false): Uint8Array {
  const g = new GraphBuilder('paged_attention_op');
  const q = g.input('q', 'float32', [B, HKV, G, D]);
  const kArena = g.input('k_arena', 'float32', ['k_slices_n', BS, D]);
  const kSlices = g.input('k_slices', 'int32', [B, HKV, NB]);
  const vArena = g.input('v_arena', 'float32', ['v_slices_n', BS, D]);
  const vSlices = g.input('v_slices', 'int32', [B, HKV, NB]);
  const mask = g.input('mask', 'float32', [B, 1, 1, 'columns']);
  const top = topN ? g.input('top_n', 'int64', [1]) : '';
  const out = pagedDecodeAttention(g, { q, kArena, kSlices, vArena, vSlices, mask, topN: top }, 0.5, renormalize);
  g.output(out, 'out', 'float32', [B, HKV, G, D]);
  return g.toBytes();
}

const values = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 7.1 + i * 1.3) * 2);
const q = values(B * HKV * G * D, 1);
const kArena = values(SLICES * BS * D, 2);
const vArena = values(SLICES * BS * D, 3);
// Sequence 0 reads slices 3 then 1 (3 positions, the last masked); sequence 1 reads slices 0 then 4 (all 4).
const slices = Int32Array.from([3, 1, 0, 4]);
const lengths = [3, 4];
const mask = Float32Array.from({ length: B * T }, (_, i) => (i % T < lengths[Math.floor(i / T)] ? 0 : -Infinity));

/** The attention of query head (b, g) in float64: weights over positions, then the chosen ones' V rows summed. */
function expected(b: number, g: number, topN: number, renormalize: boolean): number[] {
  const row = (arena: Float32Array, t: number) => Array.from(arena.subarray((slices[b * NB + Math.floor(t / BS)] * BS + (t % BS)) * D, (slices[b * NB + Math.floor(t / BS)] * BS + (t % BS)) * D + D));
  const qv = Array.from(q.subarray((b * G + g) * D, (b * G + g) * D + D));
  const positions = Array.from({ length: lengths[b] }, (_, t) => t);
  const scores = positions.map((t) => 0.5 * row(kArena, t).reduce((s, k, i) => s + k * qv[i], 0));
  const max = Math.max(...scores);
  const exps = scores.map((s) => Math.exp(s - max));
  const sum = exps.reduce((a, e) => a + e, 0);
  const p = exps.map((e) => e / sum);
  const chosen = topN > 0 ? [...positions].sort((x, y) => p[y] - p[x] || x - y).slice(0, topN) : positions;
  const kept = chosen.reduce((a, t) => a + p[t], 0);
  const out = [0, 0, 0, 0];
  for (const t of chosen) row(vArena, t).forEach((v, i) => (out[i] += ((renormalize ? p[t] / kept : p[t]) * v)));
  return out;
}

function run(model: Uint8Array, feeds: { topN?: number; kSlices?: Int32Array; mask?: { values: Float32Array; dims: number[] } } = {}): Float32Array {
  const native = NativeOrt.load();
  const session = native.session(model, { provider: 'cpu', intraOpNumThreads: 1, pagedAttention: true });
  try {
    const out = new Float32Array(B * HKV * G * D);
    const maskFeed = feeds.mask ?? { values: mask, dims: [B, 1, 1, T] };
    session.bind(
      {
        q: native.hostTensor(q, 'float32', [B, HKV, G, D]),
        k_arena: native.hostTensor(kArena, 'float32', [SLICES, BS, D]),
        k_slices: native.hostTensor(feeds.kSlices ?? slices, 'int32', [B, HKV, NB]),
        v_arena: native.hostTensor(vArena, 'float32', [SLICES, BS, D]),
        v_slices: native.hostTensor(slices, 'int32', [B, HKV, NB]),
        mask: native.hostTensor(maskFeed.values, 'float32', maskFeed.dims),
        ...(feeds.topN === undefined ? {} : { top_n: native.hostTensor(BigInt64Array.of(BigInt(feeds.topN)), 'int64', [1]) }),
      },
      { out: native.hostTensor(out, 'float32', [B, HKV, G, D]) },
    );
    session.run();
    return out;
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
  it('exact: softmax over the unmasked positions of each sequence, through its slice table', () => {
    assertClose(run(graph(false)), 0, false);
  });

  it('TopN: only the N most likely positions, weights as they are or renormalised; N past the length takes them all', () => {
    assertClose(run(graph(true), { topN: 2 }), 2, false);
    assertClose(run(graph(true, true), { topN: 2 }), 2, true);
    assertClose(run(graph(true), { topN: 9 }), 0, false);
  });

  it('refuses a slice outside its arena and a mask of the wrong shape, naming the input', () => {
    assert.throws(() => run(graph(false), { kSlices: Int32Array.from([3, 1, 0, SLICES]) }), /PagedDecodeAttention: k_slices holds a slice outside k_arena/);
    assert.throws(() => run(graph(false), { mask: { values: new Float32Array(B * (T + 1)), dims: [B, 1, 1, T + 1] } }), /PagedDecodeAttention: mask must be \[batch, 1, 1, blocks x block size\]/);
  });
});
