import { headDimOf, ModelConfig } from '../model/model-config';

/** The three arena spaces: K (device tier), exact layers' V (device tier), TopN layers' V (host tier). */
export type ArenaSpace = 'k' | 'deviceV' | 'hostV';

/** Makes one zero-filled arena buffer of `floats` floats for a space. */
export type ArenaAllocator = (floats: number, space: ArenaSpace) => Float32Array;

/** Consecutive layers whose arenas lie in one buffer, layer after layer (each layer's arena is a view of it). */
export interface ArenaGroup {
  readonly buffer: Float32Array;
  readonly firstLayer: number;
  readonly numLayers: number;
}

/**
 * Physical storage behind the block ids of the KV cache manager: one fp32 arena per layer for
 * K (device tier), for exact-layer V (device tier) and for TopN-layer V (host tier).
 *
 * Arena layout: block id b holds rows [b·Hkv·bs, (b+1)·Hkv·bs), head-major inside the block, so
 * position t of KV head h is row (b·Hkv + h)·bs + t mod bs, and a row is headDim floats.
 * Arenas are sized for the most ids each space can ever hold; the OS commits pages only when a
 * block is first written, so capacity that is never used costs no memory.
 *
 * The K and device-V arenas of consecutive layers share buffers (kGroups, deviceVGroups: all layers
 * in one unless that passes a typed array's 2^32 - 1 floats), so the decode graph reads them as a
 * few inputs instead of one per layer (onnxruntime-node pays for every input of every run).
 */
export class KvArenas {
  readonly k: Float32Array[];
  readonly deviceV: Float32Array[];
  readonly hostV: Float32Array[];
  readonly kGroups: readonly ArenaGroup[];
  readonly deviceVGroups: readonly ArenaGroup[];
  /** Block ids one layer's K arena holds (a group's layer i starts at block i · kIdsPerLayer of its buffer). */
  readonly kIdsPerLayer: number;
  readonly deviceVIdsPerLayer: number;
  readonly headDim: number;
  readonly rowsPerBlock: number;

  constructor(
    config: ModelConfig,
    readonly blockSize: number,
    capacity: { kIds: number; deviceVIds: number; hostVIds: number },
    /** Host-V arenas living elsewhere (the node's shared host tier: a mapping), one per layer, same layout. */
    hostV?: readonly Float32Array[],
    /** Most floats of one K or device-V buffer (layers past it start another group). Default: a typed array's limit. */
    maxBufferFloats = MAX_ARENA_FLOATS,
    /**
     * Makes each buffer, zero-filled (an execution backend may place them: pinned host memory a GPU reads
     * in place, say). Default: a new Float32Array.
     */
    allocate: ArenaAllocator = (floats) => new Float32Array(floats),
  ) {
    this.headDim = headDimOf(config);
    this.rowsPerBlock = config.numKvHeads * blockSize;
    const floatsPerBlock = this.rowsPerBlock * this.headDim;
    const arena = (ids: number) => allocate(checkedLength(Math.max(ids, 1) * floatsPerBlock), 'hostV');
    this.kIdsPerLayer = Math.max(capacity.kIds, 1);
    this.deviceVIdsPerLayer = Math.max(capacity.deviceVIds, 1);
    [this.kGroups, this.k] = groupedArenas(config.numLayers, checkedLength(this.kIdsPerLayer * floatsPerBlock), maxBufferFloats, (n) => allocate(n, 'k'));
    [this.deviceVGroups, this.deviceV] = groupedArenas(config.numLayers, checkedLength(this.deviceVIdsPerLayer * floatsPerBlock), maxBufferFloats, (n) => allocate(n, 'deviceV'));
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

/** The group holding `layer`'s arena, and the layer's place in it. */
export function placeInGroups(groups: readonly ArenaGroup[], layer: number): { group: number; indexInGroup: number } {
  const group = groups.findIndex((g) => layer >= g.firstLayer && layer < g.firstLayer + g.numLayers);
  if (group < 0) throw new RangeError(`layer ${layer} is in no arena group`);
  return { group, indexInGroup: layer - groups[group].firstLayer };
}

/** numLayers arenas of floatsPerLayer each, as few buffers as fit: [groups, one view per layer]. */
function groupedArenas(numLayers: number, floatsPerLayer: number, maxBufferFloats: number, allocate: (floats: number) => Float32Array): [ArenaGroup[], Float32Array[]] {
  const layersPerGroup = Math.max(1, Math.floor(Math.min(maxBufferFloats, MAX_ARENA_FLOATS) / floatsPerLayer));
  const groups: ArenaGroup[] = [];
  const views: Float32Array[] = [];
  for (let firstLayer = 0; firstLayer < numLayers; firstLayer += layersPerGroup) {
    const count = Math.min(layersPerGroup, numLayers - firstLayer);
    const buffer = allocate(count * floatsPerLayer);
    groups.push({ buffer, firstLayer, numLayers: count });
    for (let i = 0; i < count; i++) views.push(buffer.subarray(i * floatsPerLayer, (i + 1) * floatsPerLayer));
  }
  return [groups, views];
}

const MAX_ARENA_FLOATS = 2 ** 32 - 1;

function checkedLength(floats: number): number {
  if (floats > MAX_ARENA_FLOATS) {
    throw new RangeError(`one layer's arena would need ${floats} floats (limit ${MAX_ARENA_FLOATS}); lower the tier capacity`);
  }
  return floats;
}
