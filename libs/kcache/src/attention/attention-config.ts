/** What ../shared/KCACHE.md calls mode, topN, denseLayers and renormalize. */
export type AttentionConfig = FullAttention | KCacheAttention;

export type AttentionMode = AttentionConfig['mode'];

/** Exact attention in every layer; every layer's V in the device tier. */
export interface FullAttention {
  readonly mode: 'full';
}

/** KCache: TopN attention over host-tier V in all but the leading denseLayers layers. */
export interface KCacheAttention {
  readonly mode: 'kcache';
  /** Positions kept per query head per decode step. */
  readonly topN: number;
  /** Number of leading layers that keep exact attention with V in the device tier. */
  readonly denseLayers: number;
  /** Divide the kept probabilities by their sum. */
  readonly renormalize: boolean;
}

export const FULL_ATTENTION: AttentionConfig = Object.freeze({ mode: 'full' });

/**
 * Layers whose V stays in the device tier (exact attention): all in 'full' mode, the leading
 * denseLayers (clamped to [0, numLayers]) in 'kcache'. The one place dense layers are derived.
 */
export function numDenseLayers(attention: AttentionConfig, numLayers: number): number {
  if (attention.mode === 'full') return numLayers;
  return Math.min(Math.max(attention.denseLayers, 0), numLayers);
}

/** Positions kept per query head in the TopN layers; 0 in 'full' mode (it has none). */
export function topNOf(attention: AttentionConfig): number {
  return attention.mode === 'kcache' ? attention.topN : 0;
}
