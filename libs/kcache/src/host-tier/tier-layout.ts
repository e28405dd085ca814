import { HostTierConfigError } from './host-tier-errors';

/**
 * The shared host tier's file, `<directory>/kcache-<name>.tier` (little-endian; every worker maps it).
 *
 *   [0, 4096)              header: fixed at creation, checked by every worker that opens the file
 *     u32  0  magic 0x5448434B ('KCHT')      u32  1  version (1)
 *     u32  2  header words (the checksum covers u32 [0, HEADER_WORDS) with word 3 read as 0)
 *     u32  3  checksum (FNV-1a 32)
 *     u32  4  blockSize   u32 5 numLayers   u32 6 numKvHeads   u32 7 headDim
 *     u32  8  numBlocks   u32 9 maxWorkers  u32 10 hasKeys (1: K regions follow the V regions)
 *     u32 11  maskWords (ceil(maxWorkers / 32))   u32 12 blockEntryWords   u32 13 indexSlots (2^k >= 2·numBlocks)
 *     f64 @64 controlBytes   f64 @72 layerRegionBytes   f64 @80 fileBytes   f64 @88 capacityBytes
 *   [4096, 4352)           state, changed under the file lock (flock on the file, exclusive)
 *     u32 +0 dirty: 1 while a lock holder is changing things; a holder that finds it set knows the last
 *            one died mid-change and rebuilds every derived field (free stack, index, counters) from
 *            the block table and slot table, which are the source of truth
 *     u32 +4..+16 boot id (128 bits): heartbeats are CLOCK_MONOTONIC, meaningless after a reboot
 *     u32 +20 numReferenced (blocks held by a live worker)   +24 numEvictable (cached, held by none)
 *     u32 +28 freeTop (entries on the free stack)   +32 totalReserved (sum of the slots' reservations)
 *     u32 +36 clockHand (eviction sweep)   +40 epoch (bumped when blocks or reservations come back)
 *     u32 +44 numCached (blocks in the prefix index)
 *     f64 @+64.. counters: prefix lookups, prefix hits, reclaimed blocks, reclaimed workers, evictions, deduplicated blocks
 *   slots: maxWorkers × 64 bytes, one per attached worker
 *     f64 +0 heartbeat (CLOCK_MONOTONIC ms; written by the worker's heartbeat thread without the lock)
 *     u32 +8 state (0 free, 1 live)  +12 pid  +16 token (random, the owner's proof)  +20 reserved blocks
 *     u32 +24 numHeld (blocks with this slot's bit)  +28 generation
 *   block table: numBlocks × blockEntryWords u32
 *     +0 state (0 free, 1 private: one sequence writes it, 2 cached: in the prefix index, immutable)
 *     +1 flags (bit 0: recently used, for the clock sweep)   +2..+5 content hash (128 bits, cached only)
 *     +6.. holder mask: bit s set while worker slot s holds a reference (the worker counts its own
 *          references); a block with no bit set is free (private) or evictable (cached)
 *   prefix index: indexSlots u32, open addressing (linear probing), blockId + 1 or 0 for empty
 *   free stack: numBlocks u32 (freeTop entries in use)
 *   (padding to a page: controlBytes)
 *   V regions: layer l at controlBytes + l · layerRegionBytes: numBlocks blocks of
 *              Hkv · blockSize · headDim fp32, the engine's arena layout (head-major inside a block)
 *   K regions (hasKeys): layer l at controlBytes + (numLayers + l) · layerRegionBytes, same layout
 *
 * The whole file is allocated (posix_fallocate) when it is created, so a full tmpfs fails then and
 * never later as SIGBUS. A file appears under its name only once complete (written aside, then linked).
 */
export const MAGIC = 0x5448434b;
export const VERSION = 1;
export const PAGE_BYTES = 4096;
export const HEADER_WORDS = 24;

export const H = {
  magic: 0,
  version: 1,
  headerWords: 2,
  checksum: 3,
  blockSize: 4,
  numLayers: 5,
  numKvHeads: 6,
  headDim: 7,
  numBlocks: 8,
  maxWorkers: 9,
  hasKeys: 10,
  maskWords: 11,
  blockEntryWords: 12,
  indexSlots: 13,
  /** f64 indices */
  controlBytes: 8,
  layerRegionBytes: 9,
  fileBytes: 10,
  capacityBytes: 11,
} as const;

/** u32 index of the state region and its fields. */
export const STATE_WORD = PAGE_BYTES / 4;
export const S = {
  dirty: 0,
  bootId: 1,
  numReferenced: 5,
  numEvictable: 6,
  freeTop: 7,
  totalReserved: 8,
  clockHand: 9,
  epoch: 10,
  numCached: 11,
} as const;
/** f64 index of the state counters. */
export const COUNTER_F64 = (PAGE_BYTES + 64) / 8;
export const C = {
  prefixLookups: 0,
  prefixHits: 1,
  reclaimedBlocks: 2,
  reclaimedWorkers: 3,
  evictions: 4,
  dedupedBlocks: 5,
} as const;
const STATE_BYTES = 256;

export const SLOT_BYTES = 64;
/** Word offsets inside a slot (u32), after the f64 heartbeat. */
export const SLOT = { state: 2, pid: 3, token: 4, reserved: 5, numHeld: 6, generation: 7 } as const;
export const SLOT_FREE = 0;
export const SLOT_LIVE = 1;

export const BLOCK = { state: 0, flags: 1, hash: 2, mask: 6 } as const;
export const BLOCK_FREE = 0;
export const BLOCK_PRIVATE = 1;
export const BLOCK_CACHED = 2;
export const FLAG_RECENT = 1;

/** What the engine's model and options fix. */
export interface TierShape {
  readonly blockSize: number;
  readonly numLayers: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  readonly numBlocks: number;
  readonly maxWorkers: number;
  readonly hasKeys: boolean;
}

export interface TierLayout extends TierShape {
  readonly maskWords: number;
  readonly blockEntryWords: number;
  readonly indexSlots: number;
  /** fp32 values of one layer of one block: Hkv · blockSize · headDim. */
  readonly layerBlockFloats: number;
  /** Bytes one block holds over every region (V of every layer, and K when hasKeys). */
  readonly blockBytes: number;
  /** Byte offsets inside the file. */
  readonly slotsOffset: number;
  readonly blocksOffset: number;
  readonly indexOffset: number;
  readonly freeStackOffset: number;
  readonly controlBytes: number;
  readonly layerRegionBytes: number;
  readonly fileBytes: number;
}

export function blockBytesOf(shape: Omit<TierShape, 'numBlocks' | 'maxWorkers'>): number {
  return shape.numLayers * shape.numKvHeads * shape.blockSize * shape.headDim * 4 * (shape.hasKeys ? 2 : 1);
}

export function computeLayout(shape: TierShape): TierLayout {
  if (!Number.isSafeInteger(shape.numBlocks) || shape.numBlocks < 1 || shape.numBlocks >= 2 ** 31) {
    throw new HostTierConfigError(`a host tier needs 1 to 2^31-1 blocks, got ${shape.numBlocks}`, 'capacityBytes');
  }
  const maskWords = Math.ceil(shape.maxWorkers / 32);
  const blockEntryWords = BLOCK.mask + maskWords;
  let indexSlots = 1;
  while (indexSlots < 2 * shape.numBlocks) indexSlots *= 2;
  const layerBlockFloats = shape.numKvHeads * shape.blockSize * shape.headDim;
  const slotsOffset = PAGE_BYTES + STATE_BYTES;
  const blocksOffset = slotsOffset + shape.maxWorkers * SLOT_BYTES;
  const indexOffset = blocksOffset + shape.numBlocks * blockEntryWords * 4;
  const freeStackOffset = indexOffset + indexSlots * 4;
  const controlBytes = pageAlign(freeStackOffset + shape.numBlocks * 4);
  const layerRegionBytes = pageAlign(shape.numBlocks * layerBlockFloats * 4);
  const numRegions = shape.numLayers * (shape.hasKeys ? 2 : 1);
  return {
    ...shape,
    maskWords,
    blockEntryWords,
    indexSlots,
    layerBlockFloats,
    blockBytes: blockBytesOf(shape),
    slotsOffset,
    blocksOffset,
    indexOffset,
    freeStackOffset,
    controlBytes,
    layerRegionBytes,
    fileBytes: controlBytes + numRegions * layerRegionBytes,
  };
}

/** Writes the header into the first page of a new file (u32 and f64 views over it). */
export function writeHeader(u32: Uint32Array, f64: Float64Array, layout: TierLayout, capacityBytes: number): void {
  u32[H.magic] = MAGIC;
  u32[H.version] = VERSION;
  u32[H.headerWords] = HEADER_WORDS;
  u32[H.blockSize] = layout.blockSize;
  u32[H.numLayers] = layout.numLayers;
  u32[H.numKvHeads] = layout.numKvHeads;
  u32[H.headDim] = layout.headDim;
  u32[H.numBlocks] = layout.numBlocks;
  u32[H.maxWorkers] = layout.maxWorkers;
  u32[H.hasKeys] = layout.hasKeys ? 1 : 0;
  u32[H.maskWords] = layout.maskWords;
  u32[H.blockEntryWords] = layout.blockEntryWords;
  u32[H.indexSlots] = layout.indexSlots;
  f64[H.controlBytes] = layout.controlBytes;
  f64[H.layerRegionBytes] = layout.layerRegionBytes;
  f64[H.fileBytes] = layout.fileBytes;
  f64[H.capacityBytes] = capacityBytes;
  u32[H.checksum] = headerChecksum(u32);
}

export type HeaderProblem =
  | { readonly kind: 'foreign'; readonly detail: string }
  | { readonly kind: 'version'; readonly detail: string }
  | { readonly kind: 'corrupt'; readonly detail: string };

/** The shape a header describes, or what is wrong with it. `page` is the file's first page. */
export function readHeader(page: Uint8Array, fileBytes: number): { layout: TierLayout; capacityBytes: number } | HeaderProblem {
  if (page.byteLength < PAGE_BYTES || fileBytes < PAGE_BYTES) {
    return { kind: 'foreign', detail: `it is ${fileBytes} bytes, shorter than a host tier's header page` };
  }
  const buffer = page.buffer.slice(page.byteOffset, page.byteOffset + PAGE_BYTES);
  const u32 = new Uint32Array(buffer);
  const f64 = new Float64Array(buffer);
  if (u32[H.magic] !== MAGIC) return { kind: 'foreign', detail: `its first word is 0x${u32[H.magic].toString(16)}, not the host tier magic 0x${MAGIC.toString(16)}` };
  if (u32[H.version] !== VERSION) return { kind: 'version', detail: `it is version ${u32[H.version]}; this engine reads version ${VERSION}` };
  if (u32[H.headerWords] !== HEADER_WORDS || u32[H.checksum] !== headerChecksum(u32)) {
    return { kind: 'corrupt', detail: 'its header checksum does not match' };
  }
  const shape: TierShape = {
    blockSize: u32[H.blockSize],
    numLayers: u32[H.numLayers],
    numKvHeads: u32[H.numKvHeads],
    headDim: u32[H.headDim],
    numBlocks: u32[H.numBlocks],
    maxWorkers: u32[H.maxWorkers],
    hasKeys: u32[H.hasKeys] === 1,
  };
  let layout: TierLayout;
  try {
    layout = computeLayout(shape);
  } catch {
    return { kind: 'corrupt', detail: `its header describes an impossible shape ${JSON.stringify(shape)}` };
  }
  const derived: Array<[string, number, number]> = [
    ['maskWords', u32[H.maskWords], layout.maskWords],
    ['blockEntryWords', u32[H.blockEntryWords], layout.blockEntryWords],
    ['indexSlots', u32[H.indexSlots], layout.indexSlots],
    ['controlBytes', f64[H.controlBytes], layout.controlBytes],
    ['layerRegionBytes', f64[H.layerRegionBytes], layout.layerRegionBytes],
    ['fileBytes', f64[H.fileBytes], layout.fileBytes],
  ];
  for (const [name, stored, expected] of derived) {
    if (stored !== expected) return { kind: 'corrupt', detail: `its header says ${name} ${stored}, its shape gives ${expected}` };
  }
  if (fileBytes !== layout.fileBytes) {
    return { kind: 'corrupt', detail: `it is ${fileBytes} bytes, its header says ${layout.fileBytes} (truncated?)` };
  }
  return { layout, capacityBytes: f64[H.capacityBytes] };
}

/** State of a new (zero-filled) file: every block free, on the free stack lowest id on top. */
export function initializeState(control: ArrayBuffer, layout: TierLayout): void {
  const freeStack = new Uint32Array(control, layout.freeStackOffset, layout.numBlocks);
  for (let i = 0; i < layout.numBlocks; i++) freeStack[i] = layout.numBlocks - 1 - i;
  new Uint32Array(control)[STATE_WORD + S.freeTop] = layout.numBlocks;
}

/** FNV-1a over the header words, the checksum word read as 0. */
export function headerChecksum(u32: Uint32Array): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < HEADER_WORDS; i++) {
    const word = i === H.checksum ? 0 : u32[i];
    for (let b = 0; b < 4; b++) {
      hash ^= (word >>> (8 * b)) & 0xff;
      hash = Math.imul(hash, 0x01000193) >>> 0;
    }
  }
  return hash >>> 0;
}

function pageAlign(bytes: number): number {
  return Math.ceil(bytes / PAGE_BYTES) * PAGE_BYTES;
}
