import { ModelConfig } from '../../model/model-config';
import { ExecutionProviderName } from '../execution-provider';
import { KvArenas } from '../kv-arenas';
import { ExecutionBackend } from './execution-backend';
import { HostArenasBackend } from './host-arenas-backend';
import { NativeBackend } from './native-backend';
import { ResidentDeviceTierBackend } from './resident-device-tier-backend';

export interface ExecutionBackendOptions {
  /** onnxruntime execution provider. Default cpu. */
  readonly executionProvider?: ExecutionProviderName;
  readonly blockSize: number;
  readonly arenaCapacity: { kIds: number; deviceVIds: number; hostVIds: number };
  /** onnxruntime intra-op threads; 0 lets onnxruntime choose. */
  readonly numThreads: number;
  /** Writes onnxruntime's per-node profile (JSON) with this file prefix. */
  readonly profileFilePrefix?: string;
  /** Physical KV storage to use instead of allocating it: a second runner over the same cache (e.g. a profiled one). */
  readonly arenas?: KvArenas;
  /** Host-V arenas living elsewhere (the node's shared host tier: a mapping), one per layer; the backend allocates the rest. */
  readonly hostVArenas?: readonly Float32Array[];
  /** Host-V blocks never to write (shared prefix blocks of the node's host tier, sealed). Default: none. */
  readonly isHostVBlockReadOnly?: (blockId: number) => boolean;
  /**
   * Keep the device tier in the provider's memory between steps (ResidentDeviceTierBackend).
   * Default: on for GPU providers, off for cpu (tests turn it on there to check the path).
   */
  readonly residentDeviceTier?: boolean;
  /**
   * Run through onnxruntime's C API with the arenas bound in place (NativeBackend): the device tier in
   * GPU memory on cuda, one graph run per decode step. On cpu it runs the same path on the CPU provider
   * (tests, CI). Default: true for cuda, false otherwise (webgpu has none).
   */
  readonly nativeBackend?: boolean;
  /** The native backend's decode writes the current row before it reads the past (NativeBackendOptions.currentRowInArena). Default off. */
  readonly currentRowInArena?: boolean;
  /** The native backend's exact layers as one MultiHeadAttention node where Hkv = H (NativeBackendOptions.fusedAttention). Default false. */
  readonly fusedAttention?: boolean;
  /** The native backend's decode attention as the addon's PagedDecodeAttention operator (NativeBackendOptions.pagedAttention). Default false. */
  readonly pagedAttention?: boolean;
  /** cuda, native backend: host V in transparent huge pages (NativeBackendOptions.hostTierHugePages). Default false. */
  readonly hostTierHugePages?: boolean;
  /** cuda, native backend with pagedAttention: each decode shape as a CUDA graph (NativeBackendOptions.cudaGraphs). Default false. */
  readonly cudaGraphs?: boolean;
}

/**
 * The backend for the options' provider: cpu → HostArenasBackend (the plain fast path); cuda →
 * NativeBackend (onnxruntime's C API); webgpu → ResidentDeviceTierBackend. nativeBackend picks or
 * refuses the native one (cpu + true: the CUDA path on the CPU provider; cuda + false: cuda through
 * onnxruntime-node's session API, resident device tier). residentDeviceTier overrides the choice
 * between the two onnxruntime-node backends (false on a GPU provider feeds the host arenas, which
 * onnxruntime then uploads every run).
 */
export function createExecutionBackend(config: ModelConfig, options: ExecutionBackendOptions): ExecutionBackend {
  const provider = options.executionProvider ?? 'cpu';
  if (options.nativeBackend ?? provider === 'cuda') {
    if (provider === 'webgpu') throw new RangeError("nativeBackend runs onnxruntime's cpu or cuda provider; webgpu runs through onnxruntime-node only");
    return NativeBackend.create(config, {
      provider,
      blockSize: options.blockSize,
      arenaCapacity: options.arenaCapacity,
      numThreads: options.numThreads,
      ...(options.arenas ? { arenas: options.arenas } : {}),
      ...(options.hostVArenas ? { hostVArenas: options.hostVArenas } : {}),
      ...(options.isHostVBlockReadOnly ? { isHostVBlockReadOnly: options.isHostVBlockReadOnly } : {}),
      ...(options.profileFilePrefix ? { profileFilePrefix: options.profileFilePrefix } : {}),
      ...(options.currentRowInArena === undefined ? {} : { currentRowInArena: options.currentRowInArena }),
      ...(options.fusedAttention === undefined ? {} : { fusedAttention: options.fusedAttention }),
      ...(options.pagedAttention === undefined ? {} : { pagedAttention: options.pagedAttention }),
      ...(options.hostTierHugePages ? { hostTierHugePages: true } : {}),
      ...(options.cudaGraphs ? { cudaGraphs: true } : {}),
    });
  }
  const arenas = options.arenas ?? new KvArenas(config, options.blockSize, options.arenaCapacity, options.hostVArenas);
  const settings = { provider, numThreads: options.numThreads, ...(options.profileFilePrefix ? { profileFilePrefix: options.profileFilePrefix } : {}) };
  const resident = options.residentDeviceTier ?? provider !== 'cpu';
  return resident
    ? new ResidentDeviceTierBackend(config, arenas, settings, options.isHostVBlockReadOnly)
    : new HostArenasBackend(config, arenas, settings, options.isHostVBlockReadOnly);
}
