import { KvArenas } from './kv-arenas';

/**
 * int64 tensors filled through an Int32 view: every value here is a non-negative row or position
 * below 2^31, so the high word is 0. Avoids one BigInt per element on the hot path.
 */
export class Int64Builder {
  readonly values: BigInt64Array;
  private readonly words: Int32Array;

  constructor(length: number) {
    this.values = new BigInt64Array(length);
    this.words = new Int32Array(this.values.buffer);
  }

  set(index: number, value: number): void {
    this.words[2 * index] = value;
  }
}

/** Writes the arena rows of positions [0, length) of one sequence at `offset` of `table`. */
export function fillRowTable(table: Int64Builder, offset: number, arenas: KvArenas, blockIds: readonly number[], length: number): void {
  const blockSize = arenas.blockSize;
  for (let start = 0, b = 0; start < length; start += blockSize, b++) {
    const base = blockIds[b] * arenas.rowsPerBlock;
    const end = Math.min(length, start + blockSize);
    for (let t = start; t < end; t++) table.set(offset + t, base + (t - start));
  }
}

/** Writes the first numBlocks block ids of a table at `offset` (entries past the table stay 0). */
export function fillBlockTable(table: Int64Builder, offset: number, blockIds: readonly number[], numBlocks: number): void {
  for (let j = 0; j < numBlocks; j++) table.set(offset + j, blockIds[j]);
}

/**
 * Writes the arena slice indices of a sequence's first numBlocks blocks, [Hkv, tableBlocks] at
 * `offset` of `table`: slice (id · Hkv + h) holds KV head h of block id (the arena viewed as
 * [numIds · Hkv, blockSize · d]). Entries past numBlocks stay 0.
 */
export function fillSliceTable(
  table: Int64Builder,
  offset: number,
  blockIds: readonly number[],
  numBlocks: number,
  numKvHeads: number,
  tableBlocks: number,
): void {
  for (let h = 0; h < numKvHeads; h++) {
    const row = offset + h * tableBlocks;
    for (let j = 0; j < numBlocks; j++) table.set(row + j, blockIds[j] * numKvHeads + h);
  }
}
