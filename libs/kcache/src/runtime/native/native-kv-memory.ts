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
    readonly provider: NativeProvider,
    private readonly groups: Record<DeviceKind, readonly ArenaPlace[]>,
    private readonly hostVPlaces: readonly ArenaPlace[],
    private readonly owned: readonly NativeMemory[],
  ) {}

  /**
   * Arenas for `provider`. `given`: arenas made elsewhere (the node's shared host tier maps its host V);
   * otherwise they are made here, with host V in pinned memory on cuda.
   */
  static create(
    native: NativeOrt,
    provider: NativeProvider,
    config: ModelConfig,
    blockSize: number,
    capacity: { kIds: number; deviceVIds: number; hostVIds: number },
    given?: KvArenas,
    deviceId = 0,
  ): NativeKvMemory {
    const owned: NativeMemory[] = [];
    try {
      let arenas = given;
      if (!arenas) {
        const hostV = provider === 'cuda' ? pinnedHostV(native, config, blockSize, capacity.hostVIds, owned) : undefined;
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
      const groupPlace = (group: ArenaGroup): ArenaPlace => {
        if (provider === 'cpu') return hostPlace(group.buffer);
        const memory = native.deviceMemory(group.buffer.byteLength, deviceId);
        owned.push(memory);
        memory.copy('toDevice', 0, group.buffer);
        return { memory, byteOffset: 0, floats: group.buffer.length };
      };
      const groups = { k: arenas.kGroups.map(groupPlace), deviceV: arenas.deviceVGroups.map(groupPlace) };
      return new NativeKvMemory(arenas, provider, groups, arenas.hostV.map(hostPlace), owned);
    } catch (error) {
      for (const memory of owned) memory.release();
      throw error;
    }
  }

  /** True when K and device V live apart from KvArenas' arrays (device memory), so host writes must be copied up. */
  get hasDeviceCopy(): boolean {
    return this.provider !== 'cpu';
  }

  kGroup(group: number): ArenaPlace {
    return this.groups.k[group];
  }

  deviceVGroup(group: number): ArenaPlace {
    return this.groups.deviceV[group];
  }

  /** One layer's K (device V) arena inside its group. */
  layerArena(kind: DeviceKind, layer: number): ArenaPlace {
    const groups = kind === 'k' ? this.arenas.kGroups : this.arenas.deviceVGroups;
    const index = groups.findIndex((g) => layer >= g.firstLayer && layer < g.firstLayer + g.numLayers);
    const place = this.groups[kind][index];
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

  /** Copies whole blocks of one layer's K (device V) from KvArenas' host mirror to the device. Nothing to do on cpu. */
  uploadBlocks(kind: DeviceKind, layer: number, blockIds: Iterable<number>): void {
    if (!this.hasDeviceCopy) return;
    const host = kind === 'k' ? this.arenas.k[layer] : this.arenas.deviceV[layer];
    const place = this.layerArena(kind, layer);
    const floats = this.arenas.rowsPerBlock * this.arenas.headDim;
    for (const id of blockIds) place.memory.copy('toDevice', place.byteOffset + id * floats * 4, host.subarray(id * floats, (id + 1) * floats));
  }

  /** Copies every K and device-V group from the host mirror again (after it was written wholesale). */
  reload(): void {
    if (!this.hasDeviceCopy) return;
    for (const kind of ['k', 'deviceV'] as const) {
      const hostGroups = kind === 'k' ? this.arenas.kGroups : this.arenas.deviceVGroups;
      hostGroups.forEach((group, i) => this.groups[kind][i].memory.copy('toDevice', 0, group.buffer));
    }
  }

  /** Frees device memory and unregisters registered memory (pinned memory goes with its last JavaScript view). */
  release(): void {
    for (const memory of this.owned) memory.release();
  }
}

/** numLayers host-V arenas of hostVIds blocks in pinned, mapped host memory (the GPU reads them in place). */
function pinnedHostV(native: NativeOrt, config: ModelConfig, blockSize: number, hostVIds: number, owned: NativeMemory[]): Float32Array[] {
  const floats = Math.max(hostVIds, 1) * config.numKvHeads * blockSize * headDimOf(config);
  return Array.from({ length: config.numLayers }, () => {
    const memory = native.pinnedMemory(floats * 4);
    owned.push(memory);
    return new Float32Array(memory.buffer!, 0, floats);
  });
}
