import { headDimOf } from '../model/model-config';
import { GraphBuilder } from './graph-builder';
import { IO } from './graph-io';
import { GraphVariant } from './graph-variant';
import { GraphWeights } from './layer-weights-layout';
import { buildLlamaGraph } from './llama-graph';

/** Inputs and outputs of the mass-threshold scoring graph beyond those of IO. */
export const MASS_IO = {
  /** [1] float: probability mass each query head must keep. */
  tau: 'mass_tau',
  /** [L', Hkv, G, C]: positions kept per query head and row, in each of the L' TopN layers. */
  keptPerHead: 'kept_per_head',
  /** [L', Hkv, C]: positions kept by any query head of a KV head (the V rows a decode step would fetch). */
  keptPerKvHead: 'kept_per_kv_head',
} as const;

/**
 * Teacher-forced scoring of a whole text with nothing cached (scoring only: the engine's graphs are
 * unchanged). In the variant's TopN layers every query row keeps, per query head, the smallest set
 * of positions whose probabilities sum to at least tau, capped at top_n (mass-threshold selection):
 * the top_n largest probabilities sorted descending, position i kept while the mass before it is
 * below tau. Dense layers use exact attention; renormalisation as the variant says.
 *
 * In:  tokens [C], positions [C], mask [C, C] (causal, -inf above the diagonal),
 *      top_n [1] (already min(N, C)), mass_tau [1] float.
 * Out: logits [C, vocab], kept_per_head [L', Hkv, G, C], kept_per_kv_head [L', Hkv, C].
 */
export function buildMassThresholdScoreGraph(weights: GraphWeights, variant: GraphVariant): Uint8Array {
  const config = weights.config;
  const g = new GraphBuilder(`mass_score_${variant.key}`);
  const names = weights.addTo(g);
  const d = headDimOf(config);
  const mask = g.input(IO.mask, 'float32', ['rows', 'rows']);
  const topN = g.input(IO.topN, 'int64', [1]);
  const tau = g.input(MASS_IO.tau, 'float32', [1]);
  const zero = g.constFloat([0], []);
  const lastAxis = g.constInt([-1]); // axes of ReduceSum: a vector
  const lastAxisScalar = g.constInt([-1], []); // axis of CumSum: a scalar
  const keptPerHead: string[] = [];
  const keptPerKvHead: string[] = [];

  buildLlamaGraph(
    g,
    config,
    names,
    (g, layer, heads) => {
      const [q, k, v] = heads.split();
      // q: [C, Hkv, G, d]; k, v: [C, Hkv, 1, d]
      const byHead = { perm: [1, 2, 0, 3] };
      const kHeads = g.op('Transpose', [k], byHead); // [Hkv, 1, C, d]
      const scores = g.contribOp('FusedMatMul', [g.op('Transpose', [q], byHead), kHeads], { transB: 1, alpha: { float: 1 / Math.sqrt(d) } });
      const p = g.op('Softmax', [g.op('Add', [scores, mask])], { axis: -1 }); // [Hkv, G, C, C]
      const vHeads = g.op('Transpose', [v], byHead); // [Hkv, 1, C, d]

      let w = p;
      if (!variant.isDenseLayer[layer]) {
        const [sorted, index] = g.opMulti('TopK', [p, topN], 2, { axis: -1, largest: 1, sorted: 1 }); // [Hkv, G, C, n]
        const massBefore = g.op('Sub', [g.op('CumSum', [sorted, lastAxisScalar]), sorted]);
        // Masked (future) positions have p = 0 exactly: never kept, so counts are the rows really read.
        const keep = g.op('And', [g.op('Less', [massBefore, tau]), g.op('Greater', [sorted, zero])]);
        const empty = g.op('Mul', [p, zero]); // zeros [Hkv, G, C, C]
        w = g.op('ScatterElements', [empty, index, g.op('Where', [keep, sorted, zero])], { axis: -1 });
        if (variant.renormalize) w = g.op('Div', [w, g.op('ReduceSum', [w, lastAxis], { keepdims: 1 })]);

        const keptFlags = g.op('Cast', [keep], { to: 1 }); // [Hkv, G, C, n]
        keptPerHead.push(g.op('Unsqueeze', [g.op('ReduceSum', [keptFlags, lastAxis], { keepdims: 0 }), g.constInt([0])])); // [1, Hkv, G, C]
        const keptPositions = g.op('ScatterElements', [empty, index, keptFlags], { axis: -1 }); // [Hkv, G, C, C]
        const anyHead = g.op('ReduceMax', [keptPositions], { axes: [1], keepdims: 0 }); // [Hkv, C, C]
        keptPerKvHead.push(g.op('Unsqueeze', [g.op('ReduceSum', [anyHead, lastAxis], { keepdims: 0 }), g.constInt([0])])); // [1, Hkv, C]
      }
      const out = g.op('MatMul', [w, vHeads]); // [Hkv, G, C, d]
      const byToken = g.op('Transpose', [out], { perm: [2, 0, 1, 3] }); // [C, Hkv, G, d]
      return g.op('Reshape', [byToken, g.constInt([0, config.dim])]);
    },
    { lastRowLogitsOnly: false },
  );
  if (keptPerHead.length === 0) throw new Error(`mass-threshold scoring needs a TopN layer; variant ${variant.key} has none`);
  const group = config.numHeads / config.numKvHeads;
  const concat = (parts: string[]) => (parts.length === 1 ? g.op('Identity', parts) : g.op('Concat', parts, { axis: 0 }));
  g.output(concat(keptPerHead), MASS_IO.keptPerHead, 'float32', [keptPerHead.length, config.numKvHeads, group, 'rows']);
  g.output(concat(keptPerKvHead), MASS_IO.keptPerKvHead, 'float32', [keptPerKvHead.length, config.numKvHeads, 'rows']);
  return g.toBytes();
}
