/**
 * One sequence's block tables. Entry i of each table covers token positions
 * [i * blockSize, (i + 1) * blockSize). The three id spaces are independent:
 * - kBlockIds: device tier, K of every layer;
 * - deviceVBlockIds: device tier, V of the dense layers (empty when there are none);
 * - hostVBlockIds: host tier, V of the non-dense layers (empty when there are none).
 * A non-empty table has as many entries as kBlockIds.
 */
export interface SequenceBlocks {
  kBlockIds: number[];
  deviceVBlockIds: number[];
  hostVBlockIds: number[];
}

export function emptySequenceBlocks(): SequenceBlocks {
  return { kBlockIds: [], deviceVBlockIds: [], hostVBlockIds: [] };
}
