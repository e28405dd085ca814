import { headDimOf } from '../model/model-config';
import { GraphBuilder } from './graph-builder';
import { INT64_MAX, IO } from './graph-io';
import { GraphVariant, hasDenseLayer, hasTopNLayer } from './graph-variant';
import { GraphWeights } from './layer-weights-layout';
import { buildLlamaGraph } from './llama-graph';
import { PagedGather } from './paged-gather';

/**
 * A chunk of C consecutive positions of one sequence, after the cached ones (chunked prefill,
 * and recompute after preemption). The cached past is gathered a block at a time (T columns,
 * padding masked); causal attention over the T + C keys with a [C, T + C] mask.
 *
 * Prompt rows use exact attention (KCACHE.md, prefill). Rows that recompute generated tokens
 * (isApproximateQuery) in TopN layers keep only probabilities >= the N-th largest of their row,
 * which is the decode step's TopN selection, so a recomputed sequence continues as it would have.
 */
export function buildPrefillGraph(
  weights: GraphWeights,
  variant: GraphVariant,
  blockSize: number,
  options: { allLogits: boolean } = { allLogits: false },
): Uint8Array {
  const config = weights.config;
  const g = new GraphBuilder(`prefill_${variant.key}`);
  const names = weights.addTo(g);
  const d = headDimOf(config);
  const numKv = config.numKvHeads;

  const mask = g.input(IO.mask, 'float32', ['rows', 'keys']);
  const kBlocks = g.input(IO.kBlocks, 'int64', ['past_blocks']);
  const vBlocksDevice = hasDenseLayer(variant) ? g.input(IO.vBlocksDevice, 'int64', ['past_blocks']) : '';
  const vBlocksHost = hasTopNLayer(variant) ? g.input(IO.vBlocksHost, 'int64', ['past_blocks']) : '';
  const topN = hasTopNLayer(variant) ? g.input(IO.topN, 'int64', [1]) : '';
  const isApproximate = hasTopNLayer(variant) ? g.input(IO.isApproximateQuery, 'bool', ['rows']) : '';

  const paged = new PagedGather(g, numKv, d);
  const kSlices = paged.sliceIndicesByHead(kBlocks); // [Hkv, 1, nb]
  const vSlicesDevice = vBlocksDevice ? paged.sliceIndicesByHead(vBlocksDevice) : '';
  const vSlicesHost = vBlocksHost ? paged.sliceIndicesByHead(vBlocksHost) : '';
  const isExactRow = isApproximate
    ? g.op('Not', [g.op('Reshape', [isApproximate, g.constInt([1, 1, -1, 1])])]) // [1, 1, C, 1]
    : '';

  buildLlamaGraph(
    g,
    config,
    names,
    (g, layer, heads) => {
      const [q, k, v] = heads.split();
      const kArena = g.input(IO.kArena(layer), 'float32', ['k_arena_slices', blockSize * d]);
      const vArena = g.input(IO.vArena(layer), 'float32', [`v_arena_slices_${layer}`, blockSize * d]);
      const dense = variant.isDenseLayer[layer];
      // q: [C, Hkv, G, d]; k, v: [C, Hkv, 1, d]
      const byHead = { perm: [1, 2, 0, 3] };
      const qHeads = g.op('Transpose', [q], byHead); // [Hkv, G, C, d]
      const kAll = g.op('Concat', [paged.gather(kArena, kSlices), g.op('Transpose', [k], byHead)], { axis: 2 }); // [Hkv, 1, T+C, d]
      const scores = g.contribOp('FusedMatMul', [qHeads, kAll], { transB: 1, alpha: { float: 1 / Math.sqrt(d) } });
      const p = g.op('Softmax', [g.op('Add', [scores, mask])], { axis: -1 }); // [Hkv, G, C, T+C]

      const vPast = paged.gather(vArena, dense ? vSlicesDevice : vSlicesHost);
      const vAll = g.op('Concat', [vPast, g.op('Transpose', [v], byHead)], { axis: 2 }); // [Hkv, 1, T+C, d]

      let weights = p;
      if (!dense) {
        const [kept] = g.opMulti('TopK', [p, topN], 2, { axis: -1, largest: 1, sorted: 1 });
        const threshold = g.op('Slice', [kept, g.constInt([-1]), g.constInt([INT64_MAX]), g.constInt([-1])]); // [Hkv, G, C, 1]
        const keep = g.op('Or', [g.op('GreaterOrEqual', [p, threshold]), isExactRow]);
        weights = g.op('Where', [keep, p, g.constFloat([0], [])]);
        if (variant.renormalize) {
          const renormalized = g.op('Div', [weights, g.op('ReduceSum', [weights, g.constInt([-1])], { keepdims: 1 })]);
          weights = g.op('Where', [isExactRow, p, renormalized]);
        }
      }
      const out = g.op('MatMul', [weights, vAll]); // [Hkv, G, C, d]
      const byToken = g.op('Transpose', [out], { perm: [2, 0, 1, 3] }); // [C, Hkv, G, d]
      return g.op('Reshape', [byToken, g.constInt([0, config.dim])]);
    },
    { lastRowLogitsOnly: !options.allLogits },
  );
  return g.toBytes();
}
