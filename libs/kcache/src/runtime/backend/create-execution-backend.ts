import { ModelConfig } from '../../model/model-config';
import { ExecutionProviderName } from '../execution-provider';
import { KvArenas } from '../kv-arenas';
import { ExecutionBackend } from './execution-backend';
import { HostArenasBackend } from './host-arenas-backend';
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
}

/**
 * The backend for the options' provider: cpu → HostArenasBackend (the plain fast path); webgpu and
 * cuda (through onnxruntime-node) → ResidentDeviceTierBackend. residentDeviceTier overrides the choice
 * (false on a GPU provider feeds the host arenas, which onnxruntime then uploads every run).
 */
export function createExecutionBackend(config: ModelConfig, options: ExecutionBackendOptions): ExecutionBackend {
  const provider = options.executionProvider ?? 'cpu';
  const arenas = options.arenas ?? new KvArenas(config, options.blockSize, options.arenaCapacity, options.hostVArenas);
  const settings = { provider, numThreads: options.numThreads, ...(options.profileFilePrefix ? { profileFilePrefix: options.profileFilePrefix } : {}) };
  const resident = options.residentDeviceTier ?? provider !== 'cpu';
  return resident
    ? new ResidentDeviceTierBackend(config, arenas, settings, options.isHostVBlockReadOnly)
    : new HostArenasBackend(config, arenas, settings, options.isHostVBlockReadOnly);
}
