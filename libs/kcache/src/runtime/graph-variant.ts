import { AttentionConfig, numDenseLayers } from '../attention/attention-config';

/**
 * What a compiled graph bakes in: which layers use exact attention (V in the device tier)
 * and whether kept probabilities are renormalised. topN stays a runtime input.
 */
export interface GraphVariant {
  readonly key: string;
  /** Per layer: true = exact attention, V rows from the device tier; false = TopN, V from the host tier. */
  readonly isDenseLayer: readonly boolean[];
  readonly renormalize: boolean;
}

/** graphVariantOf's results per config object (a request's config is used every step). */
const variants = new WeakMap<AttentionConfig, GraphVariant>();

export function graphVariantOf(attention: AttentionConfig, numLayers: number): GraphVariant {
  const known = variants.get(attention);
  if (known && known.isDenseLayer.length === numLayers) return known;
  const variant = deriveVariant(attention, numLayers);
  variants.set(attention, variant);
  return variant;
}

function deriveVariant(attention: AttentionConfig, numLayers: number): GraphVariant {
  const numDense = numDenseLayers(attention, numLayers);
  const isDenseLayer = Array.from({ length: numLayers }, (_, l) => l < numDense);
  const renormalize = attention.mode === 'kcache' && attention.renormalize && numDense < numLayers;
  const key = numDense === numLayers ? 'full' : `kcache:d${numDense}:r${renormalize ? 1 : 0}`;
  return { key, isDenseLayer, renormalize };
}

export function hasDenseLayer(v: GraphVariant): boolean {
  return v.isDenseLayer.some(Boolean);
}

export function hasTopNLayer(v: GraphVariant): boolean {
  return v.isDenseLayer.some((dense) => !dense);
}
