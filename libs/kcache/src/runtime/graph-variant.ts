import { AttentionConfig, isDenseLayer } from '../attention/attention-config';

/**
 * What a compiled graph bakes in: which layers use exact attention (V in the device tier)
 * and whether kept probabilities are renormalised. topN stays a runtime input.
 */
export interface GraphVariant {
  readonly key: string;
  /** Per layer: true = exact attention, V rows from the device tier; false = TopN, V from the host tier. */
  readonly denseLayers: readonly boolean[];
  readonly renormalize: boolean;
}

export function graphVariantOf(attention: AttentionConfig, numLayers: number): GraphVariant {
  const denseLayers = Array.from({ length: numLayers }, (_, l) => isDenseLayer(attention, l));
  const renormalize = attention.mode === 'kcache' && attention.renormalize;
  const numDense = denseLayers.filter(Boolean).length;
  const key = numDense === numLayers ? 'full' : `kcache:d${numDense}:r${renormalize ? 1 : 0}`;
  return { key, denseLayers, renormalize: renormalize && numDense < numLayers };
}

export function hasDenseLayer(v: GraphVariant): boolean {
  return v.denseLayers.some(Boolean);
}

export function hasTopNLayer(v: GraphVariant): boolean {
  return v.denseLayers.some((dense) => !dense);
}
