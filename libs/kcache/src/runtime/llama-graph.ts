import { headDimOf, ModelConfig } from '../model/model-config';
import { GraphBuilder } from './graph-builder';
import { IO } from './graph-io';
import { ModelWeightNames } from './layer-weights-layout';
import { addAndRmsNorm, applyRotary, linear, rmsNorm, rotaryPositionIds, swiGlu } from './transformer-ops';

/**
 * A layer's heads for `rows` query tokens. `projected` is its QKV projection [rows, Hkv · (G + 2) · d] (bias
 * added; per KV head its G query heads, then K, then V), not yet rotated; `positions` [rows] and `rope` (cos and
 * sin tables [maxSeqLen, d / 2]) rotate it. split() gives q [rows, Hkv, G, d], k and v [rows, Hkv, 1, d] with q and
 * k rotated (Reshape, RotaryEmbedding and Split nodes, made at the first call): an attention that rotates and
 * writes the rows itself takes `projected` and leaves them unmade.
 */
export interface LayerHeads {
  readonly projected: string;
  readonly positions: string;
  readonly rope: { readonly cos: string; readonly sin: string };
  split(): readonly [q: string, k: string, v: string];
}

/** Attention of one layer for `rows` query tokens. Returns [rows, dim]. */
export type LayerAttention = (g: GraphBuilder, layer: number, heads: LayerHeads) => string;

/**
 * The Llama decoder around a pluggable attention: embedding, per layer RMSNorm → fused QKV
 * (+ bias, Qwen2) → RoPE → attention → Wo → residual → RMSNorm → SwiGLU → residual, then final norm and classifier.
 * Residual adds are fused with the following norm. New K and V rows of every layer are outputs
 * ([rows, Hkv, numLayers, d]), so the runner can append them to the tiers. With packOutputs (every
 * row's logits) they and the logits are one output instead, IO.logitsAndKv (see packedRowWidth):
 * onnxruntime-node pays several microseconds per output tensor, a lot next to a small model's step.
 */
export function buildLlamaGraph(
  g: GraphBuilder,
  config: ModelConfig,
  names: ModelWeightNames,
  attention: LayerAttention,
  options: {
    lastRowLogitsOnly: boolean;
    packOutputs?: boolean;
    /**
     * Takes every layer's new K and V rows ([rows, Hkv, 1, d] each, layer by layer) instead of graph
     * outputs: the graph writes them where they belong itself (buildDecodeGraph's writeKvInPlace), and its
     * only other output is IO.logits of every row.
     */
    writeNewKv?: (newK: () => readonly string[], newV: () => readonly string[]) => void;
    /** The feed-forward gate as one com.kcache SwiGlu node (swiGlu's kcacheOp; sessions with the addon's operators). */
    kcacheSwiGlu?: boolean;
  },
): void {
  if ((options.packOutputs || options.writeNewKv) && options.lastRowLogitsOnly) throw new Error('packOutputs and writeNewKv need the logits of every row');
  const d = headDimOf(config);
  const numKv = config.numKvHeads;
  const group = config.numHeads / numKv;
  const tokens = g.input(IO.tokens, 'int64', ['rows']);
  const positions = g.input(IO.positions, 'int64', ['rows']);
  let positionIds: string | undefined; // made with the first rotation
  const ropeTables = { cos: names.ropeCos, sin: names.ropeSin };
  const groupedShape = g.constInt([0, numKv, group + 2, d]);
  const qkvSizes = g.constInt([group, 1, 1]);
  // Each layer's split(): its new K and V rows, split off when an output needs them (an attention that takes
  // qkv whole and writes the rows itself leaves them unsplit).
  const splits: Array<LayerHeads['split']> = [];
  const newK = () => splits.map((split) => split()[1]);
  const newV = () => splits.map((split) => split()[2]);

  let residual = g.op('Gather', [names.tokenEmbedding, tokens], { axis: 0 }); // [rows, dim]
  let normalized = rmsNorm(g, residual, names.layers[0].attentionNorm, config.normEps);
  names.layers.forEach((w, layer) => {
    const linearQkv = linear(g, normalized, w.wqkvT);
    const projected = w.qkvBias ? g.op('Add', [linearQkv, w.qkvBias]) : linearQkv;
    let parts: readonly [string, string, string] | undefined;
    const split = () => {
      if (!parts) {
        const grouped = g.op('Reshape', [projected, groupedShape]);
        const rotated = applyRotary(g, grouped, (positionIds ??= rotaryPositionIds(g, positions, group)), ropeTables);
        parts = g.opMulti('Split', [rotated, qkvSizes], 3, { axis: 2 }) as [string, string, string];
      }
      return parts;
    };
    splits.push(split);
    const attended = linear(g, attention(g, layer, { projected, positions, rope: ropeTables, split }), w.woT);
    const afterAttention = addAndRmsNorm(g, attended, residual, w.ffnNorm, config.normEps);
    const ffn = swiGlu(g, afterAttention.normalized, w.w13T, w.w2T, config.hiddenDim, options.kcacheSwiGlu ?? false);
    if (layer + 1 < names.layers.length) {
      const next = addAndRmsNorm(g, ffn, afterAttention.sum, names.layers[layer + 1].attentionNorm, config.normEps);
      normalized = next.normalized;
      residual = next.sum;
    } else {
      residual = g.op('Add', [ffn, afterAttention.sum]);
    }
  });
  if (options.writeNewKv) {
    options.writeNewKv(newK, newV);
    const logits = linear(g, rmsNorm(g, residual, names.finalNorm, config.normEps), names.classifierT);
    g.output(logits, IO.logits, 'float32', ['rows', config.vocabSize]);
    return;
  }
  if (options.packOutputs) {
    const logits = linear(g, rmsNorm(g, residual, names.finalNorm, config.normEps), names.classifierT);
    const newKv = g.op('Reshape', [g.op('Concat', [...newK(), ...newV()], { axis: 2 }), g.constInt([0, -1])]); // [rows, Hkv · 2L · d]
    g.output(g.op('Concat', [logits, newKv], { axis: 1 }), IO.logitsAndKv, 'float32', ['rows', packedRowWidth(config)]);
    return;
  }
  g.output(g.op('Concat', newK(), { axis: 2 }), IO.newK, 'float32', ['rows', numKv, config.numLayers, d]);
  g.output(g.op('Concat', newV(), { axis: 2 }), IO.newV, 'float32', ['rows', numKv, config.numLayers, d]);

  if (options.lastRowLogitsOnly) {
    residual = g.op('Slice', [residual, g.constInt([-1]), g.constInt([Number.MAX_SAFE_INTEGER]), g.constInt([0])]);
  }
  const logits = linear(g, rmsNorm(g, residual, names.finalNorm, config.normEps), names.classifierT);
  g.output(logits, IO.logits, 'float32', [options.lastRowLogitsOnly ? 1 : 'rows', config.vocabSize]);
}

/**
 * Width of a row of IO.logitsAndKv: the row's logits (vocab), then its new K and V as
 * [Hkv, 2 · numLayers, d] (per KV head: K of layers 0..L-1, then V of layers 0..L-1).
 */
export function packedRowWidth(config: ModelConfig): number {
  return config.vocabSize + 2 * config.numLayers * config.numKvHeads * headDimOf(config);
}
