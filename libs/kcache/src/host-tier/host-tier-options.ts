import { HostTierConfigError } from './host-tier-errors';

/**
 * Where the V of TopN layers lives. 'process' (the default): this process's own memory.
 * 'shared': a tier shared by every worker process of the node (see SharedHostTier).
 */
export type HostTierOptions = { readonly kind: 'process' } | SharedHostTierOptions;

export interface SharedHostTierOptions {
  readonly kind: 'shared';
  /** Folder of the tier's file; a tmpfs keeps it in memory. Default '/dev/shm'. */
  readonly directory?: string;
  /** Workers with the same directory and name share one tier: `<directory>/kcache-<name>.tier`. Default 'default'. */
  readonly name?: string;
  /**
   * Bytes of blocks for the whole node (metadata comes on top). The worker that creates the file
   * fixes it; the others must ask for the same. Default: the engine's hostCapacityBytes.
   */
  readonly capacityBytes?: number;
  /** A worker whose heartbeat is older than this is dead: the others reclaim its blocks. Default 5000. */
  readonly leaseMs?: number;
  /** Most workers attached at once (fixed at creation, at most 1024). Default 64. */
  readonly maxWorkers?: number;
  /** Requests whose prompts share a block-aligned prefix reuse its blocks. Default true. */
  readonly prefixSharing?: boolean;
  /**
   * K of a reused prefix: 'spill' keeps it in the tier too and copies it back on a hit, so prefill
   * skips the prefix; 'recompute' stores V only and prefill recomputes K (V is not rewritten).
   * Fixed at creation. Default 'spill' (faster; bench:host-tier measures both).
   */
  readonly prefixKeys?: 'spill' | 'recompute';
  /** Fault the whole mapping in at start-up (MAP_POPULATE) rather than on first touch. Default false. */
  readonly populate?: boolean;
}

export interface ResolvedSharedHostTierOptions {
  readonly directory: string;
  readonly name: string;
  readonly capacityBytes: number;
  readonly leaseMs: number;
  readonly maxWorkers: number;
  readonly prefixSharing: boolean;
  readonly prefixKeys: 'spill' | 'recompute';
  readonly populate: boolean;
}

export const DEFAULT_HOST_TIER: HostTierOptions = Object.freeze({ kind: 'process' });
export const MAX_WORKERS_LIMIT = 1024;

export function resolveSharedHostTierOptions(options: SharedHostTierOptions, defaultCapacityBytes: number): ResolvedSharedHostTierOptions {
  const resolved: ResolvedSharedHostTierOptions = {
    directory: options.directory ?? '/dev/shm',
    name: options.name ?? 'default',
    capacityBytes: options.capacityBytes ?? defaultCapacityBytes,
    leaseMs: options.leaseMs ?? 5000,
    maxWorkers: options.maxWorkers ?? 64,
    prefixSharing: options.prefixSharing ?? true,
    prefixKeys: options.prefixKeys ?? 'spill',
    populate: options.populate ?? false,
  };
  if (typeof resolved.directory !== 'string' || resolved.directory.length === 0) {
    throw new HostTierConfigError('hostTier.directory must be a non-empty path', 'directory');
  }
  if (typeof resolved.name !== 'string' || !/^[A-Za-z0-9._-]{1,64}$/.test(resolved.name)) {
    throw new HostTierConfigError(`hostTier.name must be 1-64 of [A-Za-z0-9._-], got '${resolved.name}'`, 'name');
  }
  if (!Number.isSafeInteger(resolved.capacityBytes) || resolved.capacityBytes <= 0) {
    throw new HostTierConfigError(`hostTier.capacityBytes must be a positive integer, got ${resolved.capacityBytes}`, 'capacityBytes');
  }
  if (!Number.isSafeInteger(resolved.leaseMs) || resolved.leaseMs < 50) {
    throw new HostTierConfigError(`hostTier.leaseMs must be an integer of at least 50, got ${resolved.leaseMs}`, 'leaseMs');
  }
  if (!Number.isSafeInteger(resolved.maxWorkers) || resolved.maxWorkers < 1 || resolved.maxWorkers > MAX_WORKERS_LIMIT) {
    throw new HostTierConfigError(`hostTier.maxWorkers must be an integer in 1..${MAX_WORKERS_LIMIT}, got ${resolved.maxWorkers}`, 'maxWorkers');
  }
  if (resolved.prefixKeys !== 'spill' && resolved.prefixKeys !== 'recompute') {
    throw new HostTierConfigError(`hostTier.prefixKeys must be 'spill' or 'recompute', got '${resolved.prefixKeys}'`, 'prefixKeys');
  }
  return resolved;
}
