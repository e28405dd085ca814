import { GraphBuilder } from './graph-builder';
import { IO } from './graph-io';
import { GraphVariant } from './graph-variant';
import { LayerAttention } from './llama-graph';
import { pagedDecodeAttention } from './paged-attention-op';
import { PagedGather } from './paged-gather';

/** How inArenaAttention's layers attend (its `kernel`). */
export type InArenaKernel = 'onnx' | 'fused' | 'paged';

/**
 * Decode attention with the current row written into the arena first (buildDecodeGraph's
 * currentRowInArena): per layer a ScatterND writes the step's k (and v) rows into the layer's arena
 * (its output, IO.written(arena), is bound to the arena's own memory, so only the rows are written) and
 * the past is gathered from that output, so it holds position t_b as one more column (the mask leaves
 * columns 0..t_b open). No separate score and value terms for the current token.
 *
 * Exact layers: out = softmax(q·K[0..T)ᵀ / √d + mask) · V[0..T).
 * TopN layers: [w, idx] = TopK(P, N), out = Σ_i w_i · V_host[row(idx_i)] (the row table covers t_b).
 * Same math as the current-token-apart graph; the softmax and P·V sum the current column at t_b rather
 * than last, so the rounding differs.
 */
export function inArenaAttention(
  g: GraphBuilder,
  variant: GraphVariant,
  shape: { blockSize: number; d: number; numKv: number; numHeads: number; dim: number },
  /**
   * How a layer attends once its rows are written:
   * - 'onnx': gather the past (Gather over the slice tables), then FusedMatMul, Add, Softmax and MatMul (exact) or
   *   TopK and a Gather of the N host-V rows (TopN);
   * - 'fused': exact layers as one com.microsoft MultiHeadAttention node (q [B, 1, dim], the gathered K and V as
   *   [B, H, T, d], the mask as its attention bias), only where every query head has its own KV head (Hkv = H;
   *   otherwise as 'onnx'); TopN layers as 'onnx';
   * - 'paged': every layer as one com.kcache PagedDecodeAttention node over the arenas themselves, which also
   *   rotates and writes the step's rows (no gather, no RotaryEmbedding, ScatterND or Split; pagedDecodeAttention). TopN layers read host V
   *   through IO.vSlicesHost. The graph then has no IO.written outputs: the arenas are inputs only.
   */
  kernel: InArenaKernel = 'onnx',
): LayerAttention {
  const { blockSize, d, numKv } = shape;
  const tables = decodeTables(g, variant, numKv);
  if (kernel === 'paged') return pagedLayers(g, variant, shape, tables);
  const { mask, kSlices, vSlicesDevice, kWrites, vWritesDevice, vWritesHost, topN } = tables;
  const fused = kernel === 'fused' && shape.numHeads === numKv;
  const dense = variant.isDenseLayer;
  const anyTopN = dense.some((x) => !x);
  // TopN layers: the flattened host row table [B · T] and each sequence's offset in it, b · T.
  const vRowsHostFlat = anyTopN ? g.op('Reshape', [g.input(IO.vRowsHost, 'int64', ['batch', 'past']), g.constInt([-1])]) : '';
  const tableOffsets = anyTopN ? g.op('Reshape', [g.input(IO.rowTableOffsets, 'int64', ['batch']), g.constInt([-1, 1, 1, 1])]) : '';
  const headRowOffsets = g.constInt(Array.from({ length: numKv }, (_, h) => h * blockSize), [1, numKv, 1, 1]);
  const gather = new PagedGather(g, numKv, d);
  const alpha = { float: 1 / Math.sqrt(d) };

  const blocksArena = (name: string, writes: string, rows: string) => {
    g.input(name, 'float32', [`${name}_slices`, blockSize, d]);
    const written = g.op('ScatterND', [name, writes, rows], {}, IO.written(name));
    g.output(written, written, 'float32', [`${name}_slices`, blockSize, d]);
    return written;
  };

  const hostVWritten = (layer: number, v: string) => {
    const arena = IO.vArena(layer);
    g.input(arena, 'float32', [`v_arena_rows_${layer}`, d]);
    const written = g.op('ScatterND', [arena, vWritesHost, v], {}, IO.written(arena));
    g.output(written, written, 'float32', [`v_arena_rows_${layer}`, d]);
    return written;
  };

  return (g, layer, heads) => {
    const [q, k, v] = heads.split();
    // q: [B, Hkv, G, d]; k, v (the current token): [B, Hkv, 1, d]
    const kPast = gather.gather(blocksArena(IO.kArena(layer), kWrites, k), kSlices); // [B, Hkv, T, d]
    if (fused && dense[layer]) {
      const vPast = gather.gather(blocksArena(IO.vArena(layer), vWritesDevice, v), vSlicesDevice);
      const query = g.op('Reshape', [q, g.constInt([0, 1, shape.dim])]); // [B, 1, H · d]: the heads' rows are consecutive
      const attended = g.contribOp('MultiHeadAttention', [query, kPast, vPast, '', '', mask], { num_heads: numKv, scale: alpha });
      return g.op('Reshape', [attended, g.constInt([0, shape.dim])]);
    }
    const p = g.op('Softmax', [g.op('Add', [g.contribOp('FusedMatMul', [q, kPast], { transB: 1, alpha }), mask])], { axis: -1 }); // [B, Hkv, G, T]
    let out: string; // [B, Hkv, G, d]
    if (dense[layer]) {
      out = g.op('MatMul', [p, gather.gather(blocksArena(IO.vArena(layer), vWritesDevice, v), vSlicesDevice)]);
    } else {
      const written = hostVWritten(layer, v);
      const [kept, index] = g.opMulti('TopK', [p, topN], 2, { axis: -1, largest: 1, sorted: 1 }); // [B, Hkv, G, n]
      const weights = variant.renormalize ? g.op('Div', [kept, g.op('ReduceSum', [kept, g.constInt([-1])], { keepdims: 1 })]) : kept;
      const rows = g.op('Add', [g.op('Gather', [vRowsHostFlat, g.op('Add', [index, tableOffsets])], { axis: 0 }), headRowOffsets]);
      const selected = g.op('Gather', [written, rows], { axis: 0 }); // [B, Hkv, G, n, d]
      out = g.op('Squeeze', [g.op('MatMul', [g.op('Unsqueeze', [weights, g.constInt([3])]), selected]), g.constInt([3])]);
    }
    return g.op('Reshape', [out, g.constInt([0, shape.dim])]);
  };
}

/** The decode inputs every in-arena kernel reads: the mask, the slice tables, the write tables and N. */
interface DecodeTables {
  readonly mask: string;
  readonly kSlices: string;
  readonly vSlicesDevice: string;
  readonly kWrites: string;
  readonly vWritesDevice: string;
  readonly vWritesHost: string;
  readonly topN: string;
}

function decodeTables(g: GraphBuilder, variant: GraphVariant, numKv: number): DecodeTables {
  const anyDense = variant.isDenseLayer.some(Boolean);
  const anyTopN = variant.isDenseLayer.some((x) => !x);
  return {
    mask: g.input(IO.mask, 'float32', ['batch', 1, 1, 'past']), // [B, 1, 1, T]
    kSlices: g.input(IO.kSlices, 'int32', ['batch', numKv, 'past_blocks']),
    vSlicesDevice: anyDense ? g.input(IO.vSlicesDevice, 'int32', ['batch', numKv, 'past_blocks']) : '',
    // Where this step's rows go: (slice of the layer's arena viewed as [slices, blockSize, d], row in the block), the same for every layer.
    kWrites: g.input(IO.kWrites, 'int64', ['batch', numKv, 1, 2]),
    vWritesDevice: anyDense ? g.input(IO.vWritesDevice, 'int64', ['batch', numKv, 1, 2]) : '',
    vWritesHost: anyTopN ? g.input(IO.vWritesHost, 'int64', ['batch', numKv, 1, 1]) : '',
    topN: anyTopN ? g.input(IO.topN, 'int64', [1]) : '',
  };
}

/**
 * inArenaAttention's 'paged' kernel: the operator rotates and writes the step's rows itself from the projection (no
 * Reshape, RotaryEmbedding, Split or ScatterND; no written outputs). TopN layers read host V by slice, like K.
 */
function pagedLayers(g: GraphBuilder, variant: GraphVariant, shape: { blockSize: number; d: number; numKv: number }, t: DecodeTables): LayerAttention {
  const { blockSize, d, numKv } = shape;
  const dense = variant.isDenseLayer;
  const vSlicesHost = dense.some((x) => !x) ? g.input(IO.vSlicesHost, 'int32', ['batch', numKv, 'past_blocks']) : '';
  return (g, layer, heads) => {
    const kArena = g.input(IO.kArena(layer), 'float32', [`${IO.kArena(layer)}_slices`, blockSize, d]);
    const [vArena, vSlices, vWrites] = dense[layer]
      ? [g.input(IO.vArena(layer), 'float32', [`${IO.vArena(layer)}_slices`, blockSize, d]), t.vSlicesDevice, t.vWritesDevice]
      : [g.input(IO.vArena(layer), 'float32', [`v_arena_rows_${layer}`, d]), vSlicesHost, t.vWritesHost]; // host V's rows of a block are consecutive
    const { projected, positions, rope } = heads;
    const inputs = { projected, positions, rope, kArena, kSlices: t.kSlices, kWrites: t.kWrites, vArena, vSlices, vWrites, mask: t.mask, topN: dense[layer] ? '' : t.topN };
    return pagedDecodeAttention(g, inputs, 1 / Math.sqrt(d), variant.renormalize);
  };
}
