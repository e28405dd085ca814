import assert from 'node:assert/strict';
import { closeSync, readFileSync } from 'node:fs';
import { HostTierLeaseLostError, HostTierSpaceError } from './host-tier-errors';
import { ResolvedSharedHostTierOptions } from './host-tier-options';
import { HeartbeatHandle, loadNativeShm, NativeShm } from './native-shm';
import { BlockHash, PrefixIndex } from './prefix-index';
import { openTierFile, TierFile } from './tier-file';
import {
  BLOCK,
  BLOCK_CACHED,
  BLOCK_FREE,
  BLOCK_PRIVATE,
  C,
  COUNTER_F64,
  FLAG_RECENT,
  S,
  SLOT,
  SLOT_BYTES,
  SLOT_FREE,
  SLOT_LIVE,
  STATE_WORD,
  TierLayout,
} from './tier-layout';

/** The model's side of the tier's shape. */
export interface TierModelShape {
  readonly blockSize: number;
  readonly numLayers: number;
  readonly numKvHeads: number;
  readonly headDim: number;
}

/** Which regions of a block hold data, for deduplication (a region never written is not compared). */
export interface BlockContent {
  /** Per layer: V of that layer is written. */
  readonly vLayers: readonly boolean[];
  readonly keys: boolean;
}

export interface SharedHostTierStats {
  readonly path: string;
  readonly slot: number;
  readonly numLiveWorkers: number;
  readonly numBlocks: number;
  readonly blockBytes: number;
  /** numBlocks · blockBytes. */
  readonly capacityBytes: number;
  /** Blocks some live worker holds, node-wide. */
  readonly usedBytes: number;
  /** Promised to admitted sequences for their growth, not yet taken. */
  readonly reservedBytes: number;
  /** Prefix blocks no one holds: kept for later hits, evicted when space runs out. */
  readonly evictableBytes: number;
  readonly numReferencedBlocks: number;
  /** Blocks in the prefix index (content-addressed, immutable). */
  readonly numCachedBlocks: number;
  /** Prefix blocks held by at least one sequence: stored once however many sequences use them. */
  readonly numSharedBlocks: number;
  /** Blocks this worker holds. */
  readonly numHeldBlocks: number;
  /** References of this worker's sequences to blocks, counted per sequence (>= numHeldBlocks when sharing). */
  readonly numBlockReferences: number;
  readonly prefixLookups: number;
  readonly prefixHits: number;
  /** prefixHits / prefixLookups (blocks of prompts eligible for sharing), node-wide; 0 before any lookup. */
  readonly prefixHitRate: number;
  readonly numReclaimedBlocks: number;
  readonly numReclaimedWorkers: number;
  readonly numEvictions: number;
  readonly numDedupedBlocks: number;
}

/**
 * A host tier in a file that every worker process of the node maps (tier-layout.ts has the layout):
 * blocks of V (and K of prefix blocks) readable in place by any worker, a cross-process allocator
 * guarded by flock on the file, worker slots with heartbeat leases, and a content-addressed prefix
 * index with reference counting by holder bits.
 *
 * Lock discipline: every change to the control region happens under the file lock, in withLock.
 * The block and slot tables are the truth; the free stack, index and counters derive from them, so
 * a lock holder that dies mid-change (the dirty flag stays set) is repaired by the next one.
 * Accounting: referenced + reserved <= numBlocks always; a sequence's growth is reserved at
 * admission, so it never fails later.
 */
export class SharedHostTier {
  readonly path: string;
  readonly layout: TierLayout;
  readonly numBlocks: number;
  readonly blockBytes: number;
  /** Per layer, V of every block: [numBlocks · Hkv · blockSize, headDim] fp32, in the mapping. */
  readonly v: readonly Float32Array[];
  /** Per layer, K of prefix blocks (prefixKeys 'spill'); null otherwise. */
  readonly k: readonly Float32Array[] | null;
  readonly slot: number;
  readonly leaseMs: number;
  private readonly native: NativeShm;
  private readonly fd: number;
  private readonly control: ArrayBuffer;
  private readonly u32: Uint32Array;
  private readonly f64: Float64Array;
  private readonly index: PrefixIndex;
  private readonly token: number;
  /** This worker's references per block (a block's holder bit is set while its count is > 0). */
  private readonly localRefs = new Map<number, number>();
  private localReserved = 0;
  private heartbeat: HeartbeatHandle | null = null;
  private reaper: NodeJS.Timeout | null = null;
  private isClosed = false;
  private isLeaseLost = false;
  private numRepairs = 0;
  /** The last error of the reaping timer, if any (it runs outside any caller). */
  lastReapError: unknown = null;

  static open(options: ResolvedSharedHostTierOptions, model: TierModelShape, native: NativeShm = loadNativeShm()): SharedHostTier {
    const hasKeys = options.prefixKeys === 'spill';
    const perBlock = model.numLayers * model.numKvHeads * model.blockSize * model.headDim * 4 * (hasKeys ? 2 : 1);
    const numBlocks = Math.floor(options.capacityBytes / perBlock);
    if (numBlocks < 1) {
      throw new HostTierSpaceError(
        `hostTier.capacityBytes ${options.capacityBytes} is below one block (${perBlock} bytes: ${model.numLayers} layers × ` +
          `${model.blockSize} positions × ${model.numKvHeads * model.headDim} kvDim × 4 bytes${hasKeys ? ' × 2 (V and K)' : ''})`,
      );
    }
    const file = openTierFile(native, {
      directory: options.directory,
      name: options.name,
      shape: { ...model, numBlocks, maxWorkers: options.maxWorkers, hasKeys },
      capacityBytes: options.capacityBytes,
      populate: options.populate,
    });
    try {
      return new SharedHostTier(native, file, options.leaseMs);
    } catch (error) {
      closeSync(file.fd);
      throw error;
    }
  }

  private constructor(native: NativeShm, file: TierFile, leaseMs: number) {
    this.native = native;
    this.path = file.path;
    this.fd = file.fd;
    this.layout = file.layout;
    this.numBlocks = file.layout.numBlocks;
    this.blockBytes = file.layout.blockBytes;
    this.v = file.v;
    this.k = file.k;
    this.control = file.control;
    this.leaseMs = leaseMs;
    this.u32 = new Uint32Array(file.control);
    this.f64 = new Float64Array(file.control);
    this.index = new PrefixIndex(file.control, file.layout, this.u32);
    this.token = (Math.floor(Math.random() * 0xfffffffe) + 1) >>> 0;
    this.slot = this.attach();
    this.heartbeat = native.startHeartbeat(this.control, this.heartbeatByte(this.slot), Math.max(1, Math.floor(leaseMs / 8)));
    this.reaper = setInterval(() => this.reapIfStale(), Math.max(10, Math.floor(leaseMs / 4)));
    this.reaper.unref();
  }

  // ---- admission, growth, release ------------------------------------------------------------

  /**
   * Admission of one sequence: takes references to the longest run of prefixHashes found in the
   * index, and reserves numBlocksMax minus that many blocks for the sequence's growth. Both or
   * neither: when they do not fit the node's free blocks now, the epoch at which that was decided.
   */
  reserve(numBlocksMax: number, prefixHashes: readonly BlockHash[]): { readonly hitIds: number[] } | { readonly failedAtEpoch: number } {
    return this.withLock(() => {
      const hitIds: number[] = [];
      let numNewlyReferenced = 0;
      for (const hash of prefixHashes) {
        const id = this.index.find(hash);
        if (id < 0) break;
        hitIds.push(id);
        if (this.isUnheld(id)) numNewlyReferenced++;
      }
      const numToReserve = Math.max(0, numBlocksMax - hitIds.length);
      if (this.numReferenced + this.totalReserved + numNewlyReferenced + numToReserve > this.numBlocks) return { failedAtEpoch: this.epoch };
      for (const id of hitIds) this.addRef(id);
      this.addReservation(numToReserve);
      this.f64[COUNTER_F64 + C.prefixLookups] += prefixHashes.length;
      this.f64[COUNTER_F64 + C.prefixHits] += hitIds.length;
      return { hitIds };
    });
  }

  /** Reserves count more blocks for this worker; false when they do not fit now. */
  reserveMore(count: number): boolean {
    return this.withLock(() => {
      if (this.numReferenced + this.totalReserved + count > this.numBlocks) return false;
      this.addReservation(count);
      return true;
    });
  }

  /** count new private blocks, taken from this worker's reservation (which must cover them). */
  allocate(count: number): number[] {
    return this.withLock(() => {
      assert.ok(count <= this.localReserved, `allocate ${count} blocks with ${this.localReserved} reserved`);
      const ids: number[] = [];
      for (let i = 0; i < count; i++) {
        const id = this.popFree() ?? this.evictOne();
        assert.ok(id !== null, 'host tier: reserved blocks but none free or evictable');
        const e = this.entry(id);
        this.u32[e + BLOCK.state] = BLOCK_PRIVATE;
        this.u32[e + BLOCK.flags] = 0;
        this.addReservation(-1);
        this.addRef(id);
        ids.push(id);
      }
      return ids;
    });
  }

  /** Drops one reference per listed id (a block may be listed once per sequence) and returns unused reservation. */
  release(ids: readonly number[], numUnusedReserved: number): void {
    // After close or a lost lease, nothing here is this worker's any more.
    if ((ids.length === 0 && numUnusedReserved === 0) || !this.isAttached) return;
    this.withLock(() => {
      for (const id of ids) this.dropRef(id);
      this.addReservation(-numUnusedReserved);
      this.u32[STATE_WORD + S.epoch]++;
    });
  }

  /**
   * Offers completed private blocks to the prefix index under their content hashes. Returns, per
   * block, the block the sequence should use from now on: its own (now cached, immutable), or an
   * equal cached block that was already indexed (its own goes back: stored once). A block equal in
   * hash but not in bytes stays private.
   */
  publish(blocks: ReadonlyArray<{ readonly id: number; readonly hash: BlockHash }>, content: BlockContent): number[] {
    return this.withLock(() =>
      blocks.map(({ id, hash }) => {
        const e = this.entry(id);
        assert.equal(this.u32[e + BLOCK.state], BLOCK_PRIVATE, `publish of block ${id}, which is not private`);
        const existing = this.index.find(hash);
        if (existing < 0) {
          this.u32.set(hash, e + BLOCK.hash);
          this.u32[e + BLOCK.state] = BLOCK_CACHED;
          this.index.insert(id);
          this.u32[STATE_WORD + S.numCached]++;
          return id;
        }
        if (!this.sameContent(existing, id, content)) return id;
        this.addRef(existing);
        this.dropRef(id);
        this.f64[COUNTER_F64 + C.dedupedBlocks]++;
        return existing;
      }),
    );
  }

  /** A cached block is immutable: nobody writes it again. */
  isSealed(id: number): boolean {
    return this.u32[this.entry(id) + BLOCK.state] === BLOCK_CACHED;
  }

  /** Bumped whenever blocks or reservations come back: an admission that failed may retry once it moves. */
  get epoch(): number {
    return this.u32[STATE_WORD + S.epoch];
  }

  get numIdsHeld(): number {
    return this.localRefs.size;
  }

  get isAttached(): boolean {
    return !this.isClosed && !this.isLeaseLost;
  }

  stats(): SharedHostTierStats {
    const referenced = this.numReferenced;
    const lookups = this.f64[COUNTER_F64 + C.prefixLookups];
    const hits = this.f64[COUNTER_F64 + C.prefixHits];
    let numLiveWorkers = 0;
    for (let s = 0; s < this.layout.maxWorkers; s++) if (this.u32[this.slotWord(s) + SLOT.state] === SLOT_LIVE) numLiveWorkers++;
    let numBlockReferences = 0;
    for (const count of this.localRefs.values()) numBlockReferences += count;
    const numCached = this.u32[STATE_WORD + S.numCached];
    const numEvictable = this.u32[STATE_WORD + S.numEvictable];
    return {
      path: this.path,
      slot: this.slot,
      numLiveWorkers,
      numBlocks: this.numBlocks,
      blockBytes: this.blockBytes,
      capacityBytes: this.numBlocks * this.blockBytes,
      usedBytes: referenced * this.blockBytes,
      reservedBytes: this.totalReserved * this.blockBytes,
      evictableBytes: numEvictable * this.blockBytes,
      numReferencedBlocks: referenced,
      numCachedBlocks: numCached,
      numSharedBlocks: numCached - numEvictable,
      numHeldBlocks: this.localRefs.size,
      numBlockReferences,
      prefixLookups: lookups,
      prefixHits: hits,
      prefixHitRate: lookups > 0 ? hits / lookups : 0,
      numReclaimedBlocks: this.f64[COUNTER_F64 + C.reclaimedBlocks],
      numReclaimedWorkers: this.f64[COUNTER_F64 + C.reclaimedWorkers],
      numEvictions: this.f64[COUNTER_F64 + C.evictions],
      numDedupedBlocks: this.f64[COUNTER_F64 + C.dedupedBlocks],
    };
  }

  /** Times a lock holder found the state dirty (a previous holder died mid-change) and rebuilt it. */
  get repairs(): number {
    return this.numRepairs;
  }

  /** Reclaims the slots of workers whose lease ran out (also runs on a timer). Returns how many. */
  reapNow(): number {
    return this.withLock(() => this.reapStale());
  }

  /** Gives back every block and reservation of this worker and leaves its slot. Idempotent. */
  close(): void {
    if (this.isClosed) return;
    if (this.reaper) clearInterval(this.reaper);
    this.reaper = null;
    try {
      if (!this.isLeaseLost) {
        this.withLock(() => {
          for (const [id, count] of [...this.localRefs]) for (let i = 0; i < count; i++) this.dropRef(id);
          this.addReservation(-this.localReserved);
          const w = this.slotWord(this.slot);
          this.u32[w + SLOT.state] = SLOT_FREE;
          this.u32[w + SLOT.numHeld] = 0;
          this.u32[STATE_WORD + S.epoch]++;
        });
      }
    } finally {
      this.isClosed = true;
      if (this.heartbeat) this.native.stopHeartbeat(this.heartbeat);
      this.heartbeat = null;
      closeSync(this.fd);
    }
  }

  // ---- the lock ----------------------------------------------------------------------------------

  private withLock<T>(fn: () => T, options: { checkLease: boolean } = { checkLease: true }): T {
    if (this.isClosed) throw new Error(`host tier ${this.path} is closed`);
    if (this.isLeaseLost) throw this.leaseLostError();
    this.native.flock(this.fd, 'ex');
    try {
      if (this.u32[STATE_WORD + S.dirty] !== 0) {
        this.repair();
        this.numRepairs++;
      }
      if (options.checkLease) this.checkLease();
      this.u32[STATE_WORD + S.dirty] = 1;
      let result: T;
      try {
        result = fn();
      } catch (error) {
        this.repair();
        this.u32[STATE_WORD + S.dirty] = 0;
        throw error;
      }
      this.u32[STATE_WORD + S.dirty] = 0;
      return result;
    } finally {
      this.native.flock(this.fd, 'un');
    }
  }

  private checkLease(): void {
    const w = this.slotWord(this.slot);
    if (this.u32[w + SLOT.state] !== SLOT_LIVE || this.u32[w + SLOT.token] !== this.token) {
      this.isLeaseLost = true;
      this.localRefs.clear();
      this.localReserved = 0;
      throw this.leaseLostError();
    }
  }

  private leaseLostError(): HostTierLeaseLostError {
    return new HostTierLeaseLostError(
      `this worker (pid ${process.pid}) lost its slot ${this.slot} of host tier ${this.path}: its heartbeat was older than ` +
        `${this.leaseMs} ms (process stopped?) and the other workers reclaimed its blocks`,
    );
  }

  // ---- slots and leases --------------------------------------------------------------------------

  private attach(): number {
    return this.withLock(
      () => {
        const bootId = readBootId();
        const stored = this.u32.subarray(STATE_WORD + S.bootId, STATE_WORD + S.bootId + 4);
        if (!stored.every((word, i) => word === bootId[i])) {
          // Written before this boot: nobody in it is alive, and their heartbeats are from another clock.
          for (let s = 0; s < this.layout.maxWorkers; s++) {
            if (this.u32[this.slotWord(s) + SLOT.state] === SLOT_LIVE) this.reclaimSlot(s);
          }
          stored.set(bootId);
        }
        this.reapStale();
        for (let s = 0; s < this.layout.maxWorkers; s++) {
          const w = this.slotWord(s);
          if (this.u32[w + SLOT.state] !== SLOT_FREE) continue;
          this.f64[this.heartbeatByte(s) / 8] = this.native.monotonicMs();
          this.u32[w + SLOT.pid] = process.pid;
          this.u32[w + SLOT.token] = this.token;
          this.u32[w + SLOT.reserved] = 0;
          this.u32[w + SLOT.numHeld] = 0;
          this.u32[w + SLOT.generation]++;
          this.u32[w + SLOT.state] = SLOT_LIVE;
          return s;
        }
        throw new HostTierSpaceError(`all ${this.layout.maxWorkers} worker slots of host tier ${this.path} are held by live workers`);
      },
      { checkLease: false },
    );
  }

  private reapIfStale(): void {
    if (!this.isAttached) return;
    const now = this.native.monotonicMs();
    let anyStale = false;
    for (let s = 0; s < this.layout.maxWorkers && !anyStale; s++) anyStale = s !== this.slot && this.isStale(s, now);
    if (!anyStale) return;
    try {
      this.withLock(() => this.reapStale());
    } catch (error) {
      // A timer must not throw: a lost lease shows on this worker's next allocation; anything else is kept.
      if (!(error instanceof HostTierLeaseLostError)) this.lastReapError = error;
    }
  }

  private reapStale(): number {
    const now = this.native.monotonicMs();
    let numReaped = 0;
    for (let s = 0; s < this.layout.maxWorkers; s++) {
      if (s !== this.slot && this.isStale(s, now)) {
        this.reclaimSlot(s);
        numReaped++;
      }
    }
    return numReaped;
  }

  private isStale(s: number, now: number): boolean {
    return this.u32[this.slotWord(s) + SLOT.state] === SLOT_LIVE && now - this.f64[this.heartbeatByte(s) / 8] > this.leaseMs;
  }

  /** Takes slot s's bits off every block and returns its reservation; the slot becomes free. */
  private reclaimSlot(s: number): void {
    const maskWord = BLOCK.mask + (s >>> 5);
    const bit = 1 << (s & 31);
    let numReclaimed = 0;
    for (let id = 0; id < this.numBlocks; id++) {
      const e = this.entry(id);
      if ((this.u32[e + maskWord] & bit) === 0) continue;
      this.u32[e + maskWord] &= ~bit;
      numReclaimed++;
      if (this.isUnheld(id)) this.becameUnheld(id);
    }
    const w = this.slotWord(s);
    this.u32[STATE_WORD + S.totalReserved] -= this.u32[w + SLOT.reserved];
    this.u32[w + SLOT.reserved] = 0;
    this.u32[w + SLOT.numHeld] = 0;
    this.u32[w + SLOT.state] = SLOT_FREE;
    this.u32[STATE_WORD + S.epoch]++;
    this.f64[COUNTER_F64 + C.reclaimedBlocks] += numReclaimed;
    this.f64[COUNTER_F64 + C.reclaimedWorkers]++;
  }

  // ---- blocks ------------------------------------------------------------------------------------

  private addRef(id: number): void {
    const count = this.localRefs.get(id) ?? 0;
    this.localRefs.set(id, count + 1);
    const e = this.entry(id);
    this.u32[e + BLOCK.flags] |= FLAG_RECENT;
    if (count > 0) return;
    if (this.isUnheld(id)) {
      this.u32[STATE_WORD + S.numReferenced]++;
      if (this.u32[e + BLOCK.state] === BLOCK_CACHED) this.u32[STATE_WORD + S.numEvictable]--;
    }
    this.u32[e + BLOCK.mask + (this.slot >>> 5)] |= 1 << (this.slot & 31);
    this.u32[this.slotWord(this.slot) + SLOT.numHeld]++;
  }

  private dropRef(id: number): void {
    const count = this.localRefs.get(id);
    assert.ok(count !== undefined && count > 0, `host tier: release of block ${id}, which this worker does not hold`);
    if (count > 1) {
      this.localRefs.set(id, count - 1);
      return;
    }
    this.localRefs.delete(id);
    this.u32[this.entry(id) + BLOCK.mask + (this.slot >>> 5)] &= ~(1 << (this.slot & 31));
    this.u32[this.slotWord(this.slot) + SLOT.numHeld]--;
    if (this.isUnheld(id)) this.becameUnheld(id);
  }

  /** The last holder of id let go: a private block is free, a cached one evictable. */
  private becameUnheld(id: number): void {
    const e = this.entry(id);
    this.u32[STATE_WORD + S.numReferenced]--;
    if (this.u32[e + BLOCK.state] === BLOCK_CACHED) {
      this.u32[STATE_WORD + S.numEvictable]++;
    } else {
      this.u32[e + BLOCK.state] = BLOCK_FREE;
      this.pushFree(id);
    }
  }

  private addReservation(count: number): void {
    this.localReserved += count;
    this.u32[this.slotWord(this.slot) + SLOT.reserved] += count;
    this.u32[STATE_WORD + S.totalReserved] += count;
    assert.ok(this.localReserved >= 0, 'host tier: negative reservation');
  }

  private popFree(): number | null {
    const top = this.u32[STATE_WORD + S.freeTop];
    if (top === 0) return null;
    this.u32[STATE_WORD + S.freeTop] = top - 1;
    return this.u32[this.layout.freeStackOffset / 4 + top - 1];
  }

  private pushFree(id: number): void {
    const top = this.u32[STATE_WORD + S.freeTop];
    this.u32[this.layout.freeStackOffset / 4 + top] = id;
    this.u32[STATE_WORD + S.freeTop] = top + 1;
  }

  /** Clock sweep over cached blocks no one holds: a recently used one gets a second chance. */
  private evictOne(): number | null {
    if (this.u32[STATE_WORD + S.numEvictable] === 0) return null;
    for (let n = 0; n < 2 * this.numBlocks + 1; n++) {
      const id = this.u32[STATE_WORD + S.clockHand];
      this.u32[STATE_WORD + S.clockHand] = (id + 1) % this.numBlocks;
      const e = this.entry(id);
      if (this.u32[e + BLOCK.state] !== BLOCK_CACHED || !this.isUnheld(id)) continue;
      if (this.u32[e + BLOCK.flags] & FLAG_RECENT) {
        this.u32[e + BLOCK.flags] &= ~FLAG_RECENT;
        continue;
      }
      this.index.remove(id);
      this.u32[e + BLOCK.state] = BLOCK_FREE;
      this.u32[STATE_WORD + S.numCached]--;
      this.u32[STATE_WORD + S.numEvictable]--;
      this.f64[COUNTER_F64 + C.evictions]++;
      return id;
    }
    return null;
  }

  private sameContent(a: number, b: number, content: BlockContent): boolean {
    const floats = this.layout.layerBlockFloats;
    const equal = (arena: Float32Array) =>
      Buffer.from(arena.buffer, arena.byteOffset + a * floats * 4, floats * 4).equals(Buffer.from(arena.buffer, arena.byteOffset + b * floats * 4, floats * 4));
    for (let l = 0; l < this.layout.numLayers; l++) {
      if (content.vLayers[l] && !equal(this.v[l])) return false;
      if (content.keys && this.k && !equal(this.k[l])) return false;
    }
    return true;
  }

  /**
   * Rebuilds what derives from the block and slot tables after a lock holder died mid-change:
   * holder bits of slots that are not live, the state of blocks no one holds, the prefix index,
   * the free stack and the counters.
   */
  private repair(): void {
    const maxWorkers = this.layout.maxWorkers;
    const liveMask = new Uint32Array(this.layout.maskWords);
    let totalReserved = 0;
    for (let s = 0; s < maxWorkers; s++) {
      const w = this.slotWord(s);
      if (this.u32[w + SLOT.state] === SLOT_LIVE) {
        liveMask[s >>> 5] |= 1 << (s & 31);
        totalReserved += this.u32[w + SLOT.reserved];
      } else {
        this.u32[w + SLOT.reserved] = 0;
      }
      this.u32[w + SLOT.numHeld] = 0;
    }
    this.index.clear();
    let numReferenced = 0;
    let numEvictable = 0;
    let numCached = 0;
    const free: number[] = [];
    for (let id = 0; id < this.numBlocks; id++) {
      const e = this.entry(id);
      let isHeld = false;
      for (let m = 0; m < this.layout.maskWords; m++) {
        const bits = (this.u32[e + BLOCK.mask + m] &= liveMask[m]);
        isHeld ||= bits !== 0;
        for (let s = m * 32; s < Math.min(maxWorkers, m * 32 + 32); s++) if (bits & (1 << (s & 31))) this.u32[this.slotWord(s) + SLOT.numHeld]++;
      }
      let state = this.u32[e + BLOCK.state];
      if (state === BLOCK_CACHED) {
        if (this.index.find(this.u32.subarray(e + BLOCK.hash, e + BLOCK.hash + 4)) >= 0) {
          state = BLOCK_PRIVATE; // a duplicate of an indexed block: keep it out of the index
        } else {
          this.index.insert(id);
          numCached++;
          if (!isHeld) numEvictable++;
        }
      }
      if (state === BLOCK_FREE && isHeld) state = BLOCK_PRIVATE;
      if (state === BLOCK_PRIVATE && !isHeld) state = BLOCK_FREE;
      if (state !== BLOCK_CACHED && state !== BLOCK_PRIVATE) state = BLOCK_FREE;
      this.u32[e + BLOCK.state] = state;
      if (state === BLOCK_FREE) free.push(id);
      if (isHeld) numReferenced++;
    }
    const freeStack = this.layout.freeStackOffset / 4;
    for (let i = 0; i < free.length; i++) this.u32[freeStack + i] = free[free.length - 1 - i];
    this.u32[STATE_WORD + S.freeTop] = free.length;
    this.u32[STATE_WORD + S.numReferenced] = numReferenced;
    this.u32[STATE_WORD + S.numEvictable] = numEvictable;
    this.u32[STATE_WORD + S.numCached] = numCached;
    this.u32[STATE_WORD + S.totalReserved] = totalReserved;
    this.u32[STATE_WORD + S.clockHand] %= this.numBlocks;
    this.u32[STATE_WORD + S.epoch]++;
  }

  private isUnheld(id: number): boolean {
    const e = this.entry(id) + BLOCK.mask;
    for (let m = 0; m < this.layout.maskWords; m++) if (this.u32[e + m] !== 0) return false;
    return true;
  }

  private get numReferenced(): number {
    return this.u32[STATE_WORD + S.numReferenced];
  }

  private get totalReserved(): number {
    return this.u32[STATE_WORD + S.totalReserved];
  }

  private entry(id: number): number {
    return this.layout.blocksOffset / 4 + id * this.layout.blockEntryWords;
  }

  private slotWord(s: number): number {
    return (this.layout.slotsOffset + s * SLOT_BYTES) / 4;
  }

  private heartbeatByte(s: number): number {
    return this.layout.slotsOffset + s * SLOT_BYTES;
  }
}

/** The kernel's boot id as 4 words (zeros where it cannot be read: then reboots go unnoticed). */
function readBootId(): Uint32Array {
  const words = new Uint32Array(4);
  try {
    const hex = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').replace(/[^0-9a-f]/gi, '');
    for (let i = 0; i < 4; i++) words[i] = parseInt(hex.slice(8 * i, 8 * i + 8), 16) >>> 0;
  } catch {
    words.fill(0);
  }
  return words;
}
