import { headDimOf, ModelConfig } from '../../model/model-config';
import type { NativeMemory, NativeOrt, NativeTensor } from '../../ort-native/native-ort';
import { ArenaGroup, KvArenas } from '../kv-arenas';

/** The onnxruntime provider a native session runs on. */
export type NativeProvider = 'cpu' | 'cuda';

/** An arena (or a group of them) in native memory: where its first float is. */
export interface ArenaPlace {
  readonly memory: NativeMemory;
  readonly byteOffset: number;
  readonly floats: number;
}

type DeviceKind = 'k' | 'deviceV';

/**
 * The KV arenas in memory the provider reads and writes in place (IO binding), for the native backend.
 *
 * - cuda: K and exact-layer V groups in device memory, persistent across steps; the runs write new rows
 *   there themselves. KvArenas' K and device-V arrays stay a host mirror: rows written there by someone
 *   else (a restored shared prefix, a benchmark's fill, prefill's rows) are copied up block by block
 *   (uploadBlocks) or wholesale (reload). Host-tier V is pinned, mapped host memory (the in-process tier,
 *   allocated here) or host memory registered with the GPU in place (a given tier such as the node's
 *   /dev/shm mapping): KvArenas' host-V arrays are that memory, and the GPU reads TopN rows from it over the bus.
 * - cpu: every arena is KvArenas' own host array, bound as it is: nothing is copied, ever.
 */
export class NativeKvMemory {
  private constructor(
    readonly arenas: KvArenas,
    /** True when K and device V live apart from KvArenas' arrays (device memory), so host writes must be copied up. */
    readonly hasDeviceCopy: boolean,
    private readonly kPlaces: readonly ArenaPlace[],
    private readonly hostVPlaces: readonly ArenaPlace[],
    /** Memory to free on release (device V joins it when placed). */
    private readonly owned: NativeMemory[],
    private readonly placeDeviceV: (group: ArenaGroup) => ArenaPlace,
  ) {}

  private readonly deviceVPlaces: Array<ArenaPlace | undefined> = [];

  /**
   * Arenas for `provider`: `given.arenas` (a second runner over the same cache), or new ones, with host V
   * from `given.hostVArenas` (the node's shared host tier maps it; registered with the GPU on cuda) or,
   * on cuda, in pinned memory allocated here.
   */
  static create(
    native: NativeOrt,
    provider: NativeProvider,
    config: ModelConfig,
    blockSize: number,
    capacity: { kIds: number; deviceVIds: number; hostVIds: number },
    given: {
      arenas?: KvArenas;
      hostVArenas?: readonly Float32Array[];
      deviceId?: number;
      /**
       * cpu only: K and device V in host memory apart from KvArenas' arrays, kept in step exactly as
       * device memory is on cuda (uploads, reload), so the CPU provider checks that path: a missed upload shows.
       */
      deviceCopyOnHost?: boolean;
      /** cuda: host V allocated here in transparent huge pages (NativeOrt.pinnedMemory's hugePages). */
      hugePages?: boolean;
    } = {},
  ): NativeKvMemory {
    const deviceId = given.deviceId ?? 0;
    const owned: NativeMemory[] = [];
    try {
      let arenas = given.arenas;
      if (!arenas) {
        const hostV = given.hostVArenas ?? (provider === 'cuda' ? pinnedHostV(native, config, blockSize, capacity.hostVIds, owned, given.hugePages ?? false) : undefined);
        arenas = new KvArenas(config, blockSize, capacity, hostV);
      }
      const hostMemories = new Map<ArrayBufferLike, NativeMemory>();
      const hostPlace = (view: Float32Array): ArenaPlace => {
        let memory = hostMemories.get(view.buffer) ?? owned.find((m) => m.buffer === view.buffer);
        if (!memory) {
          memory = provider === 'cuda' ? native.registeredMemory(view.buffer as ArrayBuffer, deviceId) : native.hostMemory(view.buffer as ArrayBuffer);
          if (provider === 'cuda') owned.push(memory);
        }
        hostMemories.set(view.buffer, memory);
        return { memory, byteOffset: view.byteOffset, floats: view.length };
      };
      const separate = provider === 'cuda' || given.deviceCopyOnHost === true;
      const placeGroup = (group: ArenaGroup, copyHostView: boolean): ArenaPlace => {
        if (!separate) return hostPlace(group.buffer);
        const memory = provider === 'cuda' ? native.deviceMemory(group.buffer.byteLength, deviceId) : native.hostMemory(new ArrayBuffer(group.buffer.byteLength));
        owned.push(memory);
        if (copyHostView) memory.copy('toDevice', 0, group.buffer);
        else memory.fill(0, group.buffer.byteLength, 0);
        return { memory, byteOffset: 0, floats: group.buffer.length };
      };
      // K now (new arenas are zeros: cudaMemset, no host read; given ones hold rows already); device V at first use.
      const k = arenas.kGroups.map((group) => placeGroup(group, given.arenas !== undefined));
      return new NativeKvMemory(arenas, separate, k, arenas.hostV.map(hostPlace), owned, (group) => placeGroup(group, true));
    } catch (error) {
      for (const memory of owned) memory.release();
      throw error;
    }
  }

  kGroup(group: number): ArenaPlace {
    return this.kPlaces[group];
  }

  /**
   * A device-V group, placed at its first use: only graphs with exact layers read device V, so a worker
   * serving KCache with no exact layers never holds that memory. Placed from the host view (rows restored
   * there before the first use come along).
   */
  deviceVGroup(group: number): ArenaPlace {
    let place = this.deviceVPlaces[group];
    if (!place) {
      place = this.placeDeviceV(this.arenas.deviceVGroups[group]);
      this.deviceVPlaces[group] = place;
    }
    return place;
  }

  /** One layer's K (device V) arena inside its group. */
  layerArena(kind: DeviceKind, layer: number): ArenaPlace {
    const groups = kind === 'k' ? this.arenas.kGroups : this.arenas.deviceVGroups;
    const index = groups.findIndex((g) => layer >= g.firstLayer && layer < g.firstLayer + g.numLayers);
    if (index < 0) throw new RangeError(`layer ${layer} is in no ${kind} arena group`);
    const place = kind === 'k' ? this.kGroup(index) : this.deviceVGroup(index);
    const floatsPerLayer = (kind === 'k' ? this.arenas.kIdsPerLayer : this.arenas.deviceVIdsPerLayer) * this.arenas.rowsPerBlock * this.arenas.headDim;
    return { memory: place.memory, byteOffset: place.byteOffset + (layer - groups[index].firstLayer) * floatsPerLayer * 4, floats: floatsPerLayer };
  }

  hostV(layer: number): ArenaPlace {
    return this.hostVPlaces[layer];
  }

  /** A float32 tensor over an arena place with these dims (their product must not exceed the place). */
  tensor(native: NativeOrt, place: ArenaPlace, dims: readonly number[]): NativeTensor {
    return native.tensor(place.memory, 'float32', dims, place.byteOffset);
  }

  /**
   * Copies positions [from, to) of one layer's K (device V) from KvArenas' host mirror to the device:
   * a block the range covers whole in one copy, a partly covered block one copy per KV head (the rest of
   * such a block may hold rows only the device has, written by decode). Nothing to do on cpu.
   */
  uploadPositions(kind: DeviceKind, layer: number, blockIds: readonly number[], from: number, to: number): void {
    if (!this.hasDeviceCopy) return;
    const a = this.arenas;
    const host = kind === 'k' ? a.k[layer] : a.deviceV[layer];
    const place = this.layerArena(kind, layer);
    const bs = a.blockSize;
    const d = a.headDim;
    const copy = (floatOffset: number, floats: number) => place.memory.copy('toDevice', place.byteOffset + floatOffset * 4, host.subarray(floatOffset, floatOffset + floats));
    for (let b = Math.floor(from / bs); b * bs < to; b++) {
      const lo = Math.max(from, b * bs) - b * bs;
      const hi = Math.min(to, (b + 1) * bs) - b * bs;
      const firstRow = blockIds[b] * a.rowsPerBlock;
      if (lo === 0 && hi === bs) copy(firstRow * d, a.rowsPerBlock * d);
      else for (let h = 0; h < a.rowsPerBlock / bs; h++) copy((firstRow + h * bs + lo) * d, (hi - lo) * d);
    }
  }

  /** Copies every K and (placed) device-V group from the host mirror again (after it was written wholesale). */
  reload(): void {
    if (!this.hasDeviceCopy) return;
    this.arenas.kGroups.forEach((group, i) => this.kPlaces[i].memory.copy('toDevice', 0, group.buffer));
    this.arenas.deviceVGroups.forEach((group, i) => this.deviceVPlaces[i]?.memory.copy('toDevice', 0, group.buffer));
  }

  /** Frees device memory and unregisters registered memory (pinned memory goes with its last JavaScript view). */
  release(): void {
    for (const memory of this.owned) memory.release();
  }
}

/** numLayers host-V arenas of hostVIds blocks in pinned, mapped host memory (the GPU reads them in place). */
function pinnedHostV(native: NativeOrt, config: ModelConfig, blockSize: number, hostVIds: number, owned: NativeMemory[], hugePages: boolean): Float32Array[] {
  const floats = Math.max(hostVIds, 1) * config.numKvHeads * blockSize * headDimOf(config);
  return Array.from({ length: config.numLayers }, () => {
    const memory = native.pinnedMemory(floats * 4, { hugePages });
    owned.push(memory);
    return new Float32Array(memory.buffer!, 0, floats);
  });
}
