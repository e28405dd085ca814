import assert from 'node:assert/strict';
import { MemoryConfigError, OutOfBlocksError } from './memory-errors';
import { MinIdHeap } from './min-id-heap';

export interface BlockPoolOptions {
  /** Shown in errors and metrics, e.g. 'device-k'. */
  readonly name: string;
  /** Byte budget: the sum of live charges never exceeds it. A positive safe integer. */
  readonly capacityBytes: number;
}

/**
 * An id allocator with a byte budget. Each live id carries the charge it was allocated with;
 * usedBytes is always exactly the sum of live charges. Freed ids are reused lowest first, so the
 * ids in use stay dense and a physical arena of maxIdInUsePlusOne slots holds every live block.
 */
export class BlockPool {
  readonly name: string;
  readonly capacityBytes: number;
  private numUsedBytes = 0;
  /** chargeBytesById[id]: the live charge of id, undefined when id is free. */
  private readonly chargeBytesById: Array<number | undefined> = [];
  /** Freed ids below nextNewId. */
  private readonly freeIds = new MinIdHeap();
  private nextNewId = 0;
  private numLiveIds = 0;
  private liveTopPlusOne = 0;

  constructor(opts: BlockPoolOptions) {
    if (typeof opts.name !== 'string' || opts.name.length === 0) {
      throw new MemoryConfigError('BlockPool name must be a non-empty string', 'name');
    }
    if (!Number.isSafeInteger(opts.capacityBytes) || opts.capacityBytes <= 0) {
      throw new MemoryConfigError(
        `BlockPool '${opts.name}': capacityBytes must be a positive safe integer, got ${opts.capacityBytes}`,
        'capacityBytes',
      );
    }
    this.name = opts.name;
    this.capacityBytes = opts.capacityBytes;
  }

  get usedBytes(): number {
    return this.numUsedBytes;
  }

  get freeBytes(): number {
    return this.capacityBytes - this.numUsedBytes;
  }

  get numIdsInUse(): number {
    return this.numLiveIds;
  }

  /** 1 + the largest live id (0 when none): every live id is below it. */
  get maxIdInUsePlusOne(): number {
    return this.liveTopPlusOne;
  }

  /** 1 + the largest id ever handed out: the high-water mark over the pool's life. */
  get maxIdEverUsedPlusOne(): number {
    return this.nextNewId;
  }

  canAllocate(bytes: number): boolean {
    return bytes <= this.freeBytes;
  }

  isLive(id: number): boolean {
    return this.chargeBytesById[id] !== undefined;
  }

  /** Returns the lowest free id, charged chargeBytes. Throws OutOfBlocksError if the charge does not fit. */
  allocateId(chargeBytes: number): number {
    assert.ok(Number.isSafeInteger(chargeBytes) && chargeBytes > 0, `${this.name}: bad charge ${chargeBytes}`);
    if (!this.canAllocate(chargeBytes)) {
      throw new OutOfBlocksError(
        `${this.name}: cannot charge ${chargeBytes} bytes, ${this.freeBytes} of ${this.capacityBytes} free`,
        this.name,
        chargeBytes,
        this.freeBytes,
      );
    }
    const id = this.freeIds.pop() ?? this.nextNewId++;
    assert.equal(this.chargeBytesById[id], undefined, `${this.name}: id ${id} handed out twice`);
    this.chargeBytesById[id] = chargeBytes;
    this.numUsedBytes += chargeBytes;
    this.numLiveIds++;
    if (id >= this.liveTopPlusOne) this.liveTopPlusOne = id + 1;
    return id;
  }

  /** Returns id to the pool. chargeBytes must equal the charge it was allocated with. */
  freeId(id: number, chargeBytes: number): void {
    const charge = this.chargeBytesById[id];
    assert.ok(charge !== undefined, `${this.name}: free of id ${id}, which is not live`);
    assert.equal(chargeBytes, charge, `${this.name}: id ${id} freed with ${chargeBytes} bytes, charged ${charge}`);
    this.chargeBytesById[id] = undefined;
    this.numUsedBytes -= charge;
    this.numLiveIds--;
    this.freeIds.push(id);
    while (this.liveTopPlusOne > 0 && this.chargeBytesById[this.liveTopPlusOne - 1] === undefined) {
      this.liveTopPlusOne--;
    }
    assert.ok(this.numUsedBytes >= 0 && this.numLiveIds >= 0);
  }
}
