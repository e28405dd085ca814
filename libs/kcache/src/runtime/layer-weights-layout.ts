import { headDimOf, kvDimOf, ModelConfig } from '../model/model-config';
import { ModelWeights } from '../model/model-weights';
import { GraphBuilder } from './graph-builder';
import { ropeInverseFrequencies, rotaryTable } from './transformer-ops';

/** Names of one layer's initializers in a graph, laid out for x · W (transposed, fused). */
export interface LayerWeightNames {
  readonly attentionNorm: string;
  /** [dim, dim + 2·kvDim], columns grouped per KV head g: q heads of g, then k_g, then v_g. */
  readonly wqkvT: string;
  /** [dim + 2·kvDim] in wqkvT's column order; absent when the model has no q/k/v biases. */
  readonly qkvBias?: string;
  readonly woT: string; // [dim, dim]
  readonly ffnNorm: string;
  readonly w13T: string; // [dim, 2·hidden]
  readonly w2T: string; // [hidden, dim]
}

export interface ModelWeightNames {
  readonly tokenEmbedding: string; // [vocab, dim]
  readonly layers: readonly LayerWeightNames[];
  readonly finalNorm: string;
  readonly classifierT: string; // [dim, vocab]
  /** RoPE tables (rotaryTable of cos and sin), [maxSeqLen, headDim / 2] each. */
  readonly ropeCos: string;
  readonly ropeSin: string;
}

/** Transposed, fused copies of the weights; computed once per model and shared by every graph. */
export class GraphWeights {
  private readonly cache = new Map<string, Float32Array>();

  constructor(readonly weights: ModelWeights) {}

  get config(): ModelConfig {
    return this.weights.config;
  }

  /**
   * Adds every weight of the model to `g` as initializers, and the RoPE tables of positions below
   * maxSeqLen: a graph computes no position past the model's context.
   */
  addTo(g: GraphBuilder): ModelWeightNames {
    const c = this.config;
    const kvDim = kvDimOf(c);
    const w = this.weights;
    const inverseFrequencies = ropeInverseFrequencies(headDimOf(c), c.ropeTheta, c.ropeScaling ?? null);
    const ropeShape = [c.maxSeqLen, headDimOf(c) / 2];
    return {
      tokenEmbedding: g.weight('token_embedding', w.tokenEmbedding, [c.vocabSize, c.dim]),
      finalNorm: g.weight('final_norm', w.finalNorm, [c.dim]),
      classifierT: g.weight('classifier_t', this.derived('classifier_t', () => transpose(w.classifier, c.vocabSize, c.dim)), [c.dim, c.vocabSize]),
      layers: w.layers.map((layer, l) => ({
        attentionNorm: g.weight(`l${l}_attention_norm`, layer.attentionNorm, [c.dim]),
        ...(w.qkvBiases ? { qkvBias: this.qkvBias(g, l) } : {}),
        wqkvT: g.weight(
          `l${l}_wqkv_t`,
          this.derived(`l${l}_wqkv_t`, () => transpose(groupedQkvRows(c, c.dim, layer.wq, layer.wk, layer.wv), c.dim + 2 * kvDim, c.dim)),
          [c.dim, c.dim + 2 * kvDim],
        ),
        woT: g.weight(`l${l}_wo_t`, this.derived(`l${l}_wo_t`, () => transpose(layer.wo, c.dim, c.dim)), [c.dim, c.dim]),
        ffnNorm: g.weight(`l${l}_ffn_norm`, layer.ffnNorm, [c.dim]),
        w13T: g.weight(
          `l${l}_w13_t`,
          this.derived(`l${l}_w13_t`, () => transpose(concatRows([layer.w1, layer.w3]), 2 * c.hiddenDim, c.dim)),
          [c.dim, 2 * c.hiddenDim],
        ),
        w2T: g.weight(`l${l}_w2_t`, this.derived(`l${l}_w2_t`, () => transpose(layer.w2, c.dim, c.hiddenDim)), [c.hiddenDim, c.dim]),
      })),
      ropeCos: g.weight('rope_cos', this.derived('rope_cos', () => rotaryTable(inverseFrequencies, c.maxSeqLen, Math.cos)), ropeShape),
      ropeSin: g.weight('rope_sin', this.derived('rope_sin', () => rotaryTable(inverseFrequencies, c.maxSeqLen, Math.sin)), ropeShape),
    };
  }

  private qkvBias(g: GraphBuilder, l: number): string {
    const c = this.config;
    const { bq, bk, bv } = this.weights.qkvBiases![l];
    const bias = this.derived(`l${l}_qkv_bias`, () => groupedQkvRows(c, 1, bq, bk, bv));
    return g.weight(`l${l}_qkv_bias`, bias, [c.dim + 2 * kvDimOf(c)]);
  }

  get headDim(): number {
    return headDimOf(this.config);
  }

  private derived(key: string, make: () => Float32Array): Float32Array {
    let value = this.cache.get(key);
    if (!value) {
      value = make();
      this.cache.set(key, value);
    }
    return value;
  }
}

/**
 * Rows of Wq, Wk, Wv ([out, rowWidth]: matrices have rowWidth = dim, biases 1) reordered so that,
 * per KV head g, the G query heads it serves come first, then its K head, then its V head:
 * [Hkv, G + 2, headDim] output columns.
 */
function groupedQkvRows(c: ModelConfig, rowWidth: number, wq: Float32Array, wk: Float32Array, wv: Float32Array): Float32Array {
  const group = c.numHeads / c.numKvHeads;
  const headFloats = headDimOf(c) * rowWidth;
  const out = new Float32Array(wq.length + wk.length + wv.length);
  let offset = 0;
  const copyHead = (w: Float32Array, head: number) => {
    out.set(w.subarray(head * headFloats, (head + 1) * headFloats), offset);
    offset += headFloats;
  };
  for (let g = 0; g < c.numKvHeads; g++) {
    for (let i = 0; i < group; i++) copyHead(wq, g * group + i);
    copyHead(wk, g);
    copyHead(wv, g);
  }
  return out;
}

/** m: [rows, cols] row-major → [cols, rows]. */
function transpose(m: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  const tile = 32;
  for (let r0 = 0; r0 < rows; r0 += tile) {
    for (let c0 = 0; c0 < cols; c0 += tile) {
      const rEnd = Math.min(r0 + tile, rows);
      const cEnd = Math.min(c0 + tile, cols);
      for (let r = r0; r < rEnd; r++) for (let c = c0; c < cEnd; c++) out[c * rows + r] = m[r * cols + c];
    }
  }
  return out;
}

function concatRows(parts: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}
