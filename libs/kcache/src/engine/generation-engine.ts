import type { SharedHostVStats } from '../host-tier/shared-host-v-blocks';
import type { TierUsage } from '../memory/kv-cache-types';
import { GenerationListener, GenerationRequest } from './generation-request';

/** A memory tier's occupancy as the engine reports it: the KV cache manager's TierUsage less its free bytes. */
export type TierOccupancy = Pick<TierUsage, 'usedBytes' | 'capacityBytes'>;

export interface EngineStats {
  readonly numRunning: number;
  readonly numWaiting: number;
  readonly device: TierOccupancy;
  readonly host: TierOccupancy;
  readonly numGeneratedTokens: number;
  readonly numSteps: number;
  readonly numPreemptions: number;
  /** Size of the last decode batch (sequences in one step). */
  readonly lastBatchSize: number;
  /** V rows KCache attention read from the host tier (all TopN layers, heads, sequences). */
  readonly numHostVRowsGathered?: number;
  /** The node's shared host tier, when the engine uses one. */
  readonly hostTier?: SharedHostVStats;
}

/**
 * The engine as the serving apps see it: submit requests, receive events, cancel.
 * Events for one request arrive in order: zero or more 'token', then exactly one 'finish'.
 */
export interface GenerationEngine {
  /** Throws InvalidRequestError (with the offending field) before anything is queued. */
  submit(request: GenerationRequest, listener: GenerationListener): void;
  /** Stops the request within one step and frees its blocks; emits finish 'cancelled'. false if unknown. */
  cancel(requestId: string): boolean;
  /** How many more requests can be admitted now without waiting. */
  numFreeSlots(): number;
  stats(): EngineStats;
  /** Finishes nothing new; resolves when the decode loop has stopped. */
  close(): Promise<void>;
}
