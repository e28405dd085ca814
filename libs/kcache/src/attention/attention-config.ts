export type AttentionMode = 'full' | 'kcache';

/** What ../shared/KCACHE.md calls mode, topN, denseLayers and renormalize. */
export interface AttentionConfig {
  readonly mode: AttentionMode;
  /** Positions kept per query head per decode step (kcache only). */
  readonly topN: number;
  /** Number of leading layers that keep exact attention with V in the device tier (kcache only). */
  readonly denseLayers: number;
  /** Divide the kept probabilities by their sum (kcache only). */
  readonly renormalize: boolean;
}

export const FULL_ATTENTION: AttentionConfig = { mode: 'full', topN: 0, denseLayers: 0, renormalize: false };

export function isDenseLayer(config: AttentionConfig, layer: number): boolean {
  return config.mode === 'full' || layer < config.denseLayers;
}

/** Stable key: requests with equal keys can share one decode graph run. */
export function attentionKey(config: AttentionConfig): string {
  return config.mode === 'full' ? 'full' : `kcache:d${config.denseLayers}:r${config.renormalize ? 1 : 0}`;
}
