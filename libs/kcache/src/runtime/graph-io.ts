/** Names of graph inputs and outputs shared by the runner and the graph builders. */
export const IO = {
  tokens: 'tokens',
  positions: 'positions',
  /** Decode: [B, T] additive mask over past positions; prefill: [C, T + C] causal mask. */
  mask: 'mask',
  /** [B, T] (decode) or [T] (prefill): arena row of position t for KV head 0 (add head · blockSize). */
  kRows: 'k_rows',
  vRowsDevice: 'v_rows_device',
  vRowsHost: 'v_rows_host',
  /** Decode: [B] = b · T, to index the flattened row tables. */
  rowTableOffsets: 'row_table_offsets',
  /** [1]: positions kept per query head (already min(N, context)). */
  topN: 'top_n',
  /** Prefill: [C] bool, true where the query row is a generated token (uses TopN like decode). */
  isApproximateQuery: 'is_approximate_query',
  kArena: (layer: number) => `k_arena_${layer}`,
  vArena: (layer: number) => `v_arena_${layer}`,
  logits: 'logits',
  /** [rows, numLayers · kvDim]: the new K (V) rows of every layer, layer-major. */
  newK: 'new_k',
  newV: 'new_v',
} as const;

export const INT64_MAX = Number.MAX_SAFE_INTEGER;
