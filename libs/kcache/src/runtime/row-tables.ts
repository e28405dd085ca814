import * as ort from 'onnxruntime-node';
import { KvArenas } from './kv-arenas';

/**
 * int64 tensors filled through an Int32 view: every value here is a row or position in [-2^31, 2^31), so the
 * high word is the sign. Avoids one BigInt per element on the hot path.
 */
export class Int64Builder {
  readonly values: BigInt64Array;
  private readonly words: Int32Array;

  /** A new zeroed table of `length` values, or a view of `values` (zeroed by the caller). */
  constructor(length: number, values?: BigInt64Array) {
    this.values = values ?? new BigInt64Array(length);
    this.words = new Int32Array(this.values.buffer, this.values.byteOffset, 2 * this.values.length);
  }

  set(index: number, value: number): void {
    this.words[2 * index] = value;
    this.words[2 * index + 1] = value < 0 ? -1 : 0;
  }

  clear(): void {
    this.words.fill(0);
  }
}

/** A table of indices written one entry at a time (Int64Builder, Int32Table). */
export interface IndexTable {
  set(index: number, value: number): void;
}

/** int32 tables (indices below 2^31), for inputs a GPU provider should index with directly (it has no int64 arithmetic). */
export class Int32Table implements IndexTable {
  constructor(readonly values: Int32Array) {}

  set(index: number, value: number): void {
    this.values[index] = value;
  }
}

/**
 * The small per-run input tables, in typed arrays kept from run to run: a new typed array each
 * step costs an off-heap allocation and its later sweep, more than filling its few values; the
 * tensor over a slot is kept too while its shape stays the same (every step of a decode batch but
 * one in blockSize). Each slot's table comes back zeroed, at the shape asked for (a view of the
 * slot's buffer, grown as needed). One run at a time may use a FeedBuffers: the tables must stay
 * untouched until onnxruntime has read them.
 */
export class FeedBuffers {
  private readonly int64Slots = new Map<string, Slot<BigInt64Array, Int64Builder>>();
  private readonly int32Slots = new Map<string, Slot<Int32Array, Int32Table>>();
  private readonly float32Slots = new Map<string, Slot<Float32Array, Float32Array>>();

  int64(slot: string, dims: readonly number[]): { table: Int64Builder; tensor: ort.Tensor } {
    const entry = take(this.int64Slots, slot, dims, INT64_SLOT);
    entry.table.clear();
    return { table: entry.table, tensor: entry.tensor };
  }

  int32(slot: string, dims: readonly number[]): { table: Int32Table; tensor: ort.Tensor } {
    const entry = take(this.int32Slots, slot, dims, INT32_SLOT);
    entry.table.values.fill(0);
    return { table: entry.table, tensor: entry.tensor };
  }

  float32(slot: string, dims: readonly number[]): { values: Float32Array; tensor: ort.Tensor } {
    const entry = take(this.float32Slots, slot, dims, FLOAT32_SLOT);
    entry.table.fill(0);
    return { values: entry.table, tensor: entry.tensor };
  }
}

type TypedTable = BigInt64Array | Int32Array | Float32Array;

interface Slot<T extends TypedTable, Table> {
  readonly buffer: T;
  readonly dims: readonly number[];
  readonly tensor: ort.Tensor;
  /** How the runner writes the view of the buffer the tensor holds. */
  readonly table: Table;
}

interface SlotKind<T extends TypedTable, Table> {
  readonly type: 'int64' | 'int32' | 'float32';
  allocate(length: number): T;
  table(values: T): Table;
}

const INT64_SLOT: SlotKind<BigInt64Array, Int64Builder> = { type: 'int64', allocate: (n) => new BigInt64Array(n), table: (values) => new Int64Builder(values.length, values) };
const INT32_SLOT: SlotKind<Int32Array, Int32Table> = { type: 'int32', allocate: (n) => new Int32Array(n), table: (values) => new Int32Table(values) };
const FLOAT32_SLOT: SlotKind<Float32Array, Float32Array> = { type: 'float32', allocate: (n) => new Float32Array(n), table: (values) => values };

/** The slot's entry at `dims`: kept while the shape stays, else a view of its buffer (grown if needed). */
function take<T extends TypedTable, Table>(slots: Map<string, Slot<T, Table>>, slot: string, dims: readonly number[], kind: SlotKind<T, Table>): Slot<T, Table> {
  let entry = slots.get(slot);
  if (!entry || !sameDims(entry.dims, dims)) {
    const length = sizeOf(dims);
    const buffer = entry && entry.buffer.length >= length ? entry.buffer : kind.allocate(grow(entry?.buffer.length ?? 0, length));
    const values = buffer.subarray(0, length) as T;
    entry = { buffer, dims: [...dims], tensor: new ort.Tensor(kind.type, values, [...dims]), table: kind.table(values) };
    slots.set(slot, entry);
  }
  return entry;
}

function sameDims(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function sizeOf(dims: readonly number[]): number {
  let size = 1;
  for (const d of dims) size *= d;
  return size;
}

function grow(current: number, needed: number): number {
  return Math.max(needed, 2 * current, 64);
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
 * Writes the arena slice indices of one layer for a sequence's first numBlocks blocks: for KV head
 * h, at offset + h · headStride + j, slice firstSlice + blockIds[j] · Hkv + h (the arena viewed as
 * [numIds · Hkv, blockSize · d]; firstSlice places the layer in a buffer shared by several).
 * Entries past numBlocks are left as they are (0: a valid slice, masked).
 */
export function fillSliceTable(
  table: IndexTable,
  offset: number,
  blockIds: readonly number[],
  numBlocks: number,
  numKvHeads: number,
  headStride: number,
  firstSlice: number,
): void {
  for (let h = 0; h < numKvHeads; h++) {
    const row = offset + h * headStride;
    for (let j = 0; j < numBlocks; j++) table.set(row + j, firstSlice + blockIds[j] * numKvHeads + h);
  }
}

/** An int64 tensor over a builder's values. */
export function int64Tensor(builder: Int64Builder, dims: readonly number[]): ort.Tensor {
  return new ort.Tensor('int64', builder.values, dims);
}

/** A one-element int64 tensor ([1]). */
export function scalarInt64Tensor(value: number): ort.Tensor {
  return new ort.Tensor('int64', BigInt64Array.of(BigInt(value)), [1]);
}
