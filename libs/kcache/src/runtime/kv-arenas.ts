import { headDimOf, ModelConfig } from '../model/model-config';

/**
 * Physical storage behind the block ids of the KV cache manager: one fp32 arena per layer for
 * K (device tier), for exact-layer V (device tier) and for TopN-layer V (host tier).
 *
 * Arena layout: block id b holds rows [b·Hkv·bs, (b+1)·Hkv·bs), head-major inside the block, so
 * position t of KV head h is row (b·Hkv + h)·bs + t mod bs, and a row is headDim floats.
 * Arenas are sized for the most ids each space can ever hold; the OS commits pages only when a
 * block is first written, so capacity that is never used costs no memory.
 */
export class KvArenas {
  readonly k: Float32Array[];
  readonly deviceV: Float32Array[];
  readonly hostV: Float32Array[];
  readonly headDim: number;
  readonly rowsPerBlock: number;

  constructor(
    config: ModelConfig,
    readonly blockSize: number,
    capacity: { kIds: number; deviceVIds: number; hostVIds: number },
    /** Host-V arenas living elsewhere (the node's shared host tier: a mapping), one per layer, same layout. */
    hostV?: readonly Float32Array[],
  ) {
    this.headDim = headDimOf(config);
    this.rowsPerBlock = config.numKvHeads * blockSize;
    const floatsPerBlock = this.rowsPerBlock * this.headDim;
    const arena = (ids: number) => new Float32Array(checkedLength(Math.max(ids, 1) * floatsPerBlock));
    this.k = Array.from({ length: config.numLayers }, () => arena(capacity.kIds));
    this.deviceV = Array.from({ length: config.numLayers }, () => arena(capacity.deviceVIds));
    if (hostV && (hostV.length !== config.numLayers || hostV.some((a) => a.length < capacity.hostVIds * floatsPerBlock))) {
      throw new RangeError(`given host-V arenas must be ${config.numLayers} of at least ${capacity.hostVIds * floatsPerBlock} floats`);
    }
    this.hostV = hostV ? [...hostV] : Array.from({ length: config.numLayers }, () => arena(capacity.hostVIds));
  }

  /** Row of (block id, KV head 0, position) — add head · blockSize for other heads. */
  rowOf(blockIds: readonly number[], position: number): number {
    const id = blockIds[Math.floor(position / this.blockSize)];
    return id * this.rowsPerBlock + (position % this.blockSize);
  }

  /**
   * Writes one position of one layer from a graph output: KV head h's d values start at
   * source[at.offset + h · at.headStride].
   */
  writePosition(
    arena: Float32Array,
    blockIds: readonly number[],
    position: number,
    source: Float32Array,
    at: { offset: number; headStride: number },
  ): void {
    const d = this.headDim;
    const numKv = this.rowsPerBlock / this.blockSize;
    const base = this.rowOf(blockIds, position);
    for (let h = 0; h < numKv; h++) {
      const from = at.offset + h * at.headStride;
      const to = (base + h * this.blockSize) * d;
      for (let i = 0; i < d; i++) arena[to + i] = source[from + i];
    }
  }
}

const MAX_ARENA_FLOATS = 2 ** 32 - 1;

function checkedLength(floats: number): number {
  if (floats > MAX_ARENA_FLOATS) {
    throw new RangeError(`one layer's arena would need ${floats} floats (limit ${MAX_ARENA_FLOATS}); lower the tier capacity`);
  }
  return floats;
}
