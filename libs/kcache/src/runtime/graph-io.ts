/** Names of graph inputs and outputs shared by the runner and the graph builders. */
export const IO = {
  tokens: 'tokens',
  positions: 'positions',
  /**
   * Past positions are gathered a block at a time, so the past spans T = numBlocks · blockSize
   * columns (positions past the sequence's end are masked). Decode: [B, 1, 1, T + 1], the last
   * column being the current token (with currentRowInArena [B, 1, 1, T], T covering the current
   * position t_b, columns past it masked); prefill: [C, T + C].
   */
  mask: 'mask',
  /** Prefill: block ids of the past, [numBlocks]. */
  kBlocks: 'k_blocks',
  vBlocksDevice: 'v_blocks_device',
  vBlocksHost: 'v_blocks_host',
  /**
   * Decode: arena slice of each KV head and block of the past, one table per layer's K, then per
   * exact layer's device V: [numTables, B, Hkv, numBlocks] int32, table after table. A slice is the
   * block's place in its layer's arena group buffer (KvArenas.kGroups, deviceVGroups):
   * (index in group · ids per layer + block id) · Hkv + h (see PagedGather). The runner computes
   * them, so the graph has no index arithmetic.
   */
  kvSlices: 'kv_slices',
  /**
   * Decode with layerArenaViews: the slices of K (device V) as in kvSlices but in a layer's own arena
   * (no layer offset), one table shared by every layer: [B, Hkv, numBlocks] int32.
   */
  kSlices: 'k_slices',
  vSlicesDevice: 'v_slices_device',
  /**
   * Decode with the paged attention operator (BackendGraphOptions.pagedAttention): the TopN layers' host-V slices,
   * as kSlices but in a host-V arena viewed as [rows / blockSize, blockSize, d]: [B, Hkv, numBlocks] int32.
   */
  vSlicesHost: 'v_slices_host',
  /** Decode: the K (device V) arenas of a group of layers, one buffer ([slices, blockSize · d]). */
  kArenaGroup: (group: number) => `k_arena_group_${group}`,
  vArenaDeviceGroup: (group: number) => `v_arena_device_group_${group}`,
  /** Decode, TopN layers: [B, T] arena row of past position t for KV head 0 (add head · blockSize). */
  vRowsHost: 'v_rows_host',
  /** Decode: [B] = b · T, to index the flattened row table. */
  rowTableOffsets: 'row_table_offsets',
  /** [1]: positions kept per query head (already min(N, context)). */
  topN: 'top_n',
  /** Prefill: [C] bool, true where the query row is a generated token (uses TopN like decode). */
  isApproximateQuery: 'is_approximate_query',
  /**
   * Decode with writeKvInPlace: where the new rows go, as ScatterND indices into the arenas the graph
   * reads. K: [B, Hkv, numLayers, 2] (slice of the layer's K group viewed as [slices, blockSize, d], row
   * in the block); device V: [B, Hkv, numExactLayers, 2] likewise; host V: [B, Hkv, 1, 1] (the row of
   * each TopN layer's host-V arena, [rows, d]).
   */
  kWrites: 'k_writes',
  vWritesDevice: 'v_writes_device',
  vWritesHost: 'v_writes_host',
  /** The output that is `arena` with the new rows written: bound to the arena's own memory, so only the rows are written. */
  written: (arena: string) => `${arena}_written`,
  kArena: (layer: number) => `k_arena_${layer}`,
  vArena: (layer: number) => `v_arena_${layer}`,
  logits: 'logits',
  /** [rows, numLayers · kvDim]: the new K (V) rows of every layer, layer-major. */
  newK: 'new_k',
  newV: 'new_v',
  /** Decode: [rows, vocab + 2 · numLayers · kvDim], each row's logits then its new K/V (packedRowWidth). */
  logitsAndKv: 'logits_and_kv',
} as const;

export const INT64_MAX = Number.MAX_SAFE_INTEGER;
