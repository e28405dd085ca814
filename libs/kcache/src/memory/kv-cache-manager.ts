import assert from 'node:assert/strict';
import { AttentionConfig } from '../attention/attention-config';
import { ModelConfig, kvDimOf } from '../model/model-config';
import { BlockPool } from './block-pool';
import { MemoryConfigError, OutOfBlocksError } from './memory-errors';
import { BytesPerToken, ExternalHostTier, IdSpaceSizes, KvCacheUsage, KvSequence, TierUsage } from './kv-cache-types';
import { SequenceBlocks } from './sequence-blocks';
import { chargesPerBlock, fitsTierCapacity, TierCapacity } from './tier-capacity';

/** K and V are stored as fp32. */
const BYTES_PER_ELEMENT = 4;

export interface KvCacheManagerOptions {
  readonly model: ModelConfig;
  /** Token positions per block. Default 16. */
  readonly blockSize?: number;
  /** Device tier budget, shared by K blocks and dense-layer V blocks. Must hold one K block. */
  readonly deviceCapacityBytes: number;
  /** Host tier budget for the V of non-dense layers. Must hold one single-layer V block. Ignored with externalHostTier. */
  readonly hostCapacityBytes: number;
  /**
   * Host-V ids from a tier outside this manager (the node's shared host tier, see host-tier/)
   * instead of this process's own pool. Default: none (the in-process host tier).
   */
  readonly externalHostTier?: ExternalHostTier;
}

export const DEFAULT_BLOCK_SIZE = 16;

/**
 * Block tables over two tiers. Per block of blockSize positions a sequence holds one K id
 * (device, charged numLayers layer blocks), one device-V id if it has dense layers (device,
 * charged numDenseLayers layer blocks) and one host-V id if it has non-dense layers (host, charged
 * the other layers). A layer block is blockSize × kvDim fp32 values. Byte accounting is exact.
 */
export class KvCacheManager {
  readonly blockSize: number;
  readonly numLayers: number;
  /** blockSize × kvDim × 4: one layer's K (or V) for one block. */
  readonly layerBlockBytes: number;
  readonly deviceCapacityBytes: number;
  readonly hostCapacityBytes: number;
  /** The sizes fitsCapacity decides by, as plain data. */
  readonly capacity: TierCapacity;
  private readonly kPool: BlockPool;
  private readonly deviceVPool: BlockPool;
  private readonly hostVPool: BlockPool;
  private readonly externalHost: ExternalHostTier | null;

  constructor(opts: KvCacheManagerOptions) {
    const blockSize = opts.blockSize ?? DEFAULT_BLOCK_SIZE;
    if (!Number.isSafeInteger(blockSize) || blockSize <= 0) {
      throw new MemoryConfigError(`blockSize must be a positive integer, got ${blockSize}`, 'blockSize');
    }
    const numLayers = opts.model.numLayers;
    const kvDim = kvDimOf(opts.model);
    if (!Number.isSafeInteger(numLayers) || numLayers <= 0 || !Number.isSafeInteger(kvDim) || kvDim <= 0) {
      throw new MemoryConfigError(`model needs positive integer numLayers and kvDim, got ${numLayers}, ${kvDim}`, 'model');
    }
    this.blockSize = blockSize;
    this.numLayers = numLayers;
    this.layerBlockBytes = blockSize * kvDim * BYTES_PER_ELEMENT;
    const kBlockBytes = numLayers * this.layerBlockBytes;
    if (!Number.isSafeInteger(opts.deviceCapacityBytes) || opts.deviceCapacityBytes < kBlockBytes) {
      throw new MemoryConfigError(
        `deviceCapacityBytes ${opts.deviceCapacityBytes} is below one K block (${kBlockBytes} bytes = ` +
          `${numLayers} layers × ${blockSize} positions × ${kvDim} kvDim × 4 bytes)`,
        'deviceCapacityBytes',
      );
    }
    this.externalHost = opts.externalHostTier ?? null;
    const hostCapacityBytes = this.externalHost ? this.externalHost.numBlocks * this.externalHost.blockBytes : opts.hostCapacityBytes;
    if (!Number.isSafeInteger(hostCapacityBytes) || hostCapacityBytes < this.layerBlockBytes) {
      throw new MemoryConfigError(
        `hostCapacityBytes ${hostCapacityBytes} is below one single-layer V block (${this.layerBlockBytes} bytes)`,
        'hostCapacityBytes',
      );
    }
    this.deviceCapacityBytes = opts.deviceCapacityBytes;
    this.hostCapacityBytes = hostCapacityBytes;
    // K and device-V are separate id spaces under one device budget: each pool may use all of it,
    // and this class checks their sum (deviceUsedBytes) before every allocation.
    this.kPool = new BlockPool({ name: 'device-k', capacityBytes: opts.deviceCapacityBytes });
    this.deviceVPool = new BlockPool({ name: 'device-v', capacityBytes: opts.deviceCapacityBytes });
    this.hostVPool = new BlockPool({ name: 'host-v', capacityBytes: hostCapacityBytes });
    this.capacity = {
      blockSize,
      numLayers,
      layerBlockBytes: this.layerBlockBytes,
      deviceCapacityBytes: opts.deviceCapacityBytes,
      hostCapacityBytes,
      externalHostNumBlocks: this.externalHost ? this.externalHost.numBlocks : null,
    };
  }

  blocksNeeded(numTokens: number): number {
    return Math.ceil(numTokens / this.blockSize);
  }

  /** Bytes one cached token position costs in each tier. */
  bytesPerToken(attention: AttentionConfig): BytesPerToken {
    const charges = this.chargesPerBlock(attention);
    return {
      deviceBytes: (charges.kBytes + charges.deviceVBytes) / this.blockSize,
      hostBytes: charges.hostVBytes / this.blockSize,
    };
  }

  /** Do seq's tables already cover numTokensTotal positions (allocate would add nothing)? */
  covers(seq: KvSequence, numTokensTotal: number): boolean {
    return numTokensTotal <= seq.blocks.kBlockIds.length * this.blockSize;
  }

  /** Would growing seq's tables to cover numTokensTotal positions fit both tiers now? */
  canAllocate(seq: KvSequence, numTokensTotal: number): boolean {
    const need = this.bytesToGrow(seq, numTokensTotal);
    if (need.deviceBytes > this.deviceFreeBytes()) return false;
    if (this.externalHost && need.hostBytes > 0) return this.externalHost.canGrow(seq, need.numNewBlocks);
    return need.hostBytes <= this.hostVPool.freeBytes;
  }

  /** Could a sequence with this attention cover numTokensTotal positions if it were alone in the cache? */
  fitsCapacity(attention: AttentionConfig, numTokensTotal: number): boolean {
    return fitsTierCapacity(this.capacity, attention, numTokensTotal);
  }

  /** Grows seq's tables to cover numTokensTotal positions. All or nothing: throws OutOfBlocksError. */
  allocate(seq: KvSequence, numTokensTotal: number): void {
    const need = this.bytesToGrow(seq, numTokensTotal);
    if (need.deviceBytes > this.deviceFreeBytes()) {
      throw new OutOfBlocksError(
        `device tier: need ${need.deviceBytes} bytes for ${numTokensTotal} positions, ${this.deviceFreeBytes()} free`,
        'device',
        need.deviceBytes,
        this.deviceFreeBytes(),
      );
    }
    if (!this.externalHost && need.hostBytes > this.hostVPool.freeBytes) {
      throw new OutOfBlocksError(
        `host tier: need ${need.hostBytes} bytes for ${numTokensTotal} positions, ${this.hostVPool.freeBytes} free`,
        'host',
        need.hostBytes,
        this.hostVPool.freeBytes,
      );
    }
    const charges = this.chargesPerBlock(seq.attention);
    const blocks = seq.blocks;
    for (let i = 0; i < need.numNewBlocks; i++) {
      blocks.kBlockIds.push(this.kPool.allocateId(charges.kBytes));
      if (charges.deviceVBytes > 0) blocks.deviceVBlockIds.push(this.deviceVPool.allocateId(charges.deviceVBytes));
      if (charges.hostVBytes > 0 && !this.externalHost) blocks.hostVBlockIds.push(this.hostVPool.allocateId(charges.hostVBytes));
    }
    // grow is all or nothing; when it throws, the device ids taken above go back.
    if (this.externalHost && charges.hostVBytes > 0 && need.numNewBlocks > 0) {
      try {
        this.externalHost.grow(seq, need.numNewBlocks);
      } catch (error) {
        for (const id of blocks.kBlockIds.splice(blocks.kBlockIds.length - need.numNewBlocks)) this.kPool.freeId(id, charges.kBytes);
        if (charges.deviceVBytes > 0) {
          for (const id of blocks.deviceVBlockIds.splice(blocks.deviceVBlockIds.length - need.numNewBlocks)) this.deviceVPool.freeId(id, charges.deviceVBytes);
        }
        throw error;
      }
    }
    assert.ok(this.deviceUsedBytes() <= this.deviceCapacityBytes, 'device tier over budget');
  }

  /**
   * Positions of seq (just admitted: canAllocate said yes, no blocks yet) that a prefix cache holds;
   * allocate restores them into seq's blocks, and the scheduler counts them computed (vLLM's prefix cache).
   */
  numCachedTokens(seq: KvSequence): number {
    if (seq.blocks.kBlockIds.length > 0) return 0;
    return this.externalHost?.numCachedTokens?.(seq) ?? 0;
  }

  /** seq's positions below numComputedTokens are computed (a prefix cache may publish its prompt blocks). */
  noteComputed(seq: KvSequence, numComputedTokens: number): void {
    this.externalHost?.noteComputed?.(seq, numComputedTokens);
  }

  /** Returns every block of seq and empties its tables (in place). */
  free(seq: KvSequence): void {
    const charges = this.chargesPerBlock(seq.attention);
    const blocks = seq.blocks;
    this.assertTablesConsistent(blocks, charges);
    for (const id of blocks.kBlockIds) this.kPool.freeId(id, charges.kBytes);
    for (const id of blocks.deviceVBlockIds) this.deviceVPool.freeId(id, charges.deviceVBytes);
    if (this.externalHost) this.externalHost.release(seq);
    else for (const id of blocks.hostVBlockIds) this.hostVPool.freeId(id, charges.hostVBytes);
    blocks.kBlockIds.length = 0;
    blocks.deviceVBlockIds.length = 0;
    blocks.hostVBlockIds.length = 0;
  }

  usage(): KvCacheUsage {
    const deviceUsedBytes = this.deviceUsedBytes();
    return {
      device: {
        usedBytes: deviceUsedBytes,
        freeBytes: this.deviceCapacityBytes - deviceUsedBytes,
        capacityBytes: this.deviceCapacityBytes,
      },
      host: this.hostUsage(),
      numKBlockIds: this.kPool.numIdsInUse,
      numDeviceVBlockIds: this.deviceVPool.numIdsInUse,
      numHostVBlockIds: this.externalHost ? this.externalHost.numIdsHeld() : this.hostVPool.numIdsInUse,
    };
  }

  /**
   * The most ids each space can ever hold at once under the budgets, so every id stays below it
   * (ids are reused lowest first). Physical storage sized by these never overflows. A device-V id
   * always comes with a K id of the same block, and a host-V id with a K id too, so those spaces are
   * bounded by the device budget as well as their own minimum charge of one layer block.
   */
  arenaCapacity(): IdSpaceSizes {
    const kBlockBytes = this.numLayers * this.layerBlockBytes;
    const kIds = Math.floor(this.deviceCapacityBytes / kBlockBytes);
    return {
      kIds,
      deviceVIds: Math.floor(this.deviceCapacityBytes / (kBlockBytes + this.layerBlockBytes)),
      hostVIds: this.externalHost ? this.externalHost.numBlocks : Math.min(kIds, Math.floor(this.hostCapacityBytes / this.layerBlockBytes)),
    };
  }

  /** Per id space, 1 + the largest live id: the part of the arenas in use now. */
  maxIdsInUsePlusOne(): IdSpaceSizes {
    return {
      kIds: this.kPool.maxIdInUsePlusOne,
      deviceVIds: this.deviceVPool.maxIdInUsePlusOne,
      hostVIds: this.externalHost ? this.externalHost.numBlocks : this.hostVPool.maxIdInUsePlusOne,
    };
  }

  private hostUsage(): TierUsage {
    if (!this.externalHost) {
      return { usedBytes: this.hostVPool.usedBytes, freeBytes: this.hostVPool.freeBytes, capacityBytes: this.hostCapacityBytes };
    }
    const usage = this.externalHost.usage();
    return { usedBytes: usage.usedBytes, freeBytes: usage.capacityBytes - usage.usedBytes, capacityBytes: usage.capacityBytes };
  }

  private chargesPerBlock(attention: AttentionConfig): { kBytes: number; deviceVBytes: number; hostVBytes: number } {
    return chargesPerBlock(this.capacity, attention);
  }

  private bytesToGrow(
    seq: KvSequence,
    numTokensTotal: number,
  ): { numNewBlocks: number; deviceBytes: number; hostBytes: number } {
    assert.ok(Number.isSafeInteger(numTokensTotal) && numTokensTotal >= 0, `bad numTokensTotal ${numTokensTotal}`);
    const charges = this.chargesPerBlock(seq.attention);
    this.assertTablesConsistent(seq.blocks, charges);
    const numNewBlocks = Math.max(0, this.blocksNeeded(numTokensTotal) - seq.blocks.kBlockIds.length);
    return {
      numNewBlocks,
      deviceBytes: numNewBlocks * (charges.kBytes + charges.deviceVBytes),
      hostBytes: numNewBlocks * charges.hostVBytes,
    };
  }

  private assertTablesConsistent(
    blocks: SequenceBlocks,
    charges: { deviceVBytes: number; hostVBytes: number },
  ): void {
    const numBlocks = blocks.kBlockIds.length;
    assert.equal(blocks.deviceVBlockIds.length, charges.deviceVBytes > 0 ? numBlocks : 0, 'device-V table out of step');
    assert.equal(blocks.hostVBlockIds.length, charges.hostVBytes > 0 ? numBlocks : 0, 'host-V table out of step');
  }

  private deviceUsedBytes(): number {
    return this.kPool.usedBytes + this.deviceVPool.usedBytes;
  }

  private deviceFreeBytes(): number {
    return this.deviceCapacityBytes - this.deviceUsedBytes();
  }
}
