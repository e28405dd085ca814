import { AttentionConfig, numDenseLayers } from '../attention/attention-config';

/**
 * The sizes that decide whether a request could ever fit the memory tiers, whatever is in them now.
 * Plain data, so that the engine's admission check can also run away from the engine (ThreadedEngine
 * runs it on the caller's thread).
 */
export interface TierCapacity {
  readonly blockSize: number;
  readonly numLayers: number;
  /** blockSize × kvDim × 4: one layer's K (or V) for one block. */
  readonly layerBlockBytes: number;
  readonly deviceCapacityBytes: number;
  readonly hostCapacityBytes: number;
  /** Blocks of an external host tier (it counts whole blocks, whatever the layers); null for the engine's own. */
  readonly externalHostNumBlocks: number | null;
}

/** Bytes one block of positions charges each store: K and device V (device tier), host V (host tier). */
export function chargesPerBlock(capacity: TierCapacity, attention: AttentionConfig): { kBytes: number; deviceVBytes: number; hostVBytes: number } {
  const numDense = numDenseLayers(attention, capacity.numLayers);
  return {
    kBytes: capacity.numLayers * capacity.layerBlockBytes,
    deviceVBytes: numDense * capacity.layerBlockBytes,
    hostVBytes: (capacity.numLayers - numDense) * capacity.layerBlockBytes,
  };
}

/** Could a sequence of numTokensTotal positions fit the tiers if it were alone in them? */
export function fitsTierCapacity(capacity: TierCapacity, attention: AttentionConfig, numTokensTotal: number): boolean {
  const numBlocks = Math.ceil(numTokensTotal / capacity.blockSize);
  const charges = chargesPerBlock(capacity, attention);
  const fitsHost =
    capacity.externalHostNumBlocks !== null
      ? charges.hostVBytes === 0 || numBlocks <= capacity.externalHostNumBlocks
      : numBlocks * charges.hostVBytes <= capacity.hostCapacityBytes;
  return numBlocks * (charges.kBytes + charges.deviceVBytes) <= capacity.deviceCapacityBytes && fitsHost;
}
