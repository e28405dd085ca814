import assert from 'node:assert/strict';
import { AttentionConfig } from '../attention/attention-config';
import { ExternalHostTier, KvSequence } from '../memory/kv-cache-types';
import { numDenseLayers } from '../attention/attention-config';
import { OutOfBlocksError } from '../memory/memory-errors';
import { SequenceBlocks } from '../memory/sequence-blocks';
import { KvArenas } from '../runtime/kv-arenas';
import { chainBlockHashes, prefixNamespace } from './prefix-hash';
import { BlockHash } from './prefix-index';
import { SharedHostTier, SharedHostTierStats } from './shared-host-tier';

export interface SharedHostVBlocksOptions {
  readonly blockSize: number;
  readonly numLayers: number;
  readonly prefixSharing: boolean;
  /** modelFingerprint() of the engine's model: part of every prefix hash. */
  readonly modelFingerprint: string;
}

/** What one sequence holds in the tier beside its table. */
interface SequenceHostState {
  /** Blocks reserved for its growth, not taken yet. */
  reserved: number;
  /** Prefix hits referenced at admission, not in the table yet (they are its leading blocks). */
  readonly pendingHitIds: number[];
  /** Leading blocks that came from the prefix index (K and V already there). */
  readonly numHitBlocks: number;
  /** Positions restored instead of computed (spill mode): the hit blocks', less the last prompt token. */
  readonly numCachedTokens: number;
  /** Leading blocks offered to the index already (hits included). */
  numPublishedBlocks: number;
  /** Hashes of its full prompt blocks. */
  readonly hashes: readonly BlockHash[];
}

/**
 * This process's arenas, where prefix hits are restored and whence prompt blocks are published, and
 * who must hear of restored rows (a device copy of the arenas).
 */
export interface PrefixStorage {
  readonly arenas: KvArenas;
  rowsRestored(blocks: SequenceBlocks, attention: AttentionConfig, from: number, to: number): void;
}

export interface SharedHostVStats extends SharedHostTierStats {
  /** Prefix blocks whose K (and dense-layer V) was copied back instead of computed. */
  readonly numRestoredBlocks: number;
  /** Prompt positions prefill skipped thanks to restored blocks. */
  readonly numRestoredTokens: number;
  /** Admissions that waited because the node's tier was full. */
  readonly numAdmissionWaits: number;
}

/**
 * The engine's side of the shared host tier: the KV cache manager's ExternalHostTier (sequence
 * tables over the tier's node-wide block ids, a worst-case reservation per admitted sequence,
 * prefix hits attached at admission) and the prefill hooks that restore and publish prefix blocks.
 *
 * Prefix blocks: a full block of the prompt is published once prefill has written it; its hash
 * chains the model, block size, attention parameters and every token up to it. With prefixKeys
 * 'spill' its K (and the V of dense layers) is copied into the tier first, and a later hit copies
 * them back, so prefill starts after the prefix; with 'recompute' prefill recomputes the prefix and
 * skips writing V into the shared (sealed) blocks.
 */
export class SharedHostVBlocks implements ExternalHostTier {
  readonly numBlocks: number;
  readonly blockBytes: number;
  private readonly states = new WeakMap<SequenceBlocks, SequenceHostState>();
  /** Admissions that did not fit, by the tier epoch they failed at: no retry (and no lock) before it moves. */
  private readonly failedAdmissions = new WeakMap<SequenceBlocks, number>();
  private readonly namespaces = new Map<string, Buffer>();
  private counters = { numRestoredBlocks: 0, numRestoredTokens: 0, numAdmissionWaits: 0 };
  private storage: PrefixStorage | null = null;

  constructor(
    readonly tier: SharedHostTier,
    private readonly options: SharedHostVBlocksOptions,
  ) {
    assert.equal(tier.layout.blockSize, options.blockSize);
    this.numBlocks = tier.numBlocks;
    this.blockBytes = tier.blockBytes;
  }

  /**
   * Where prefix blocks are restored (at grow) and published from (noteComputed): the engine's
   * arenas. Until attached, no position counts as cached and nothing is published.
   */
  attachStorage(storage: PrefixStorage): void {
    this.storage = storage;
  }

  get prefixKeys(): 'spill' | 'recompute' {
    return this.tier.k ? 'spill' : 'recompute';
  }

  usage(): { usedBytes: number; capacityBytes: number } {
    const stats = this.tier.stats();
    return { usedBytes: stats.usedBytes, capacityBytes: stats.capacityBytes };
  }

  numIdsHeld(): number {
    return this.tier.numIdsHeld;
  }

  canGrow(seq: KvSequence, numNewBlocks: number): boolean {
    const state = this.states.get(seq.blocks);
    if (state) {
      const missing = numNewBlocks - state.pendingHitIds.length - state.reserved;
      if (missing <= 0) return true;
      if (!this.tier.reserveMore(missing)) return false;
      state.reserved += missing;
      return true;
    }
    assert.equal(seq.blocks.hostVBlockIds.length, 0, 'host table without tier state');
    if (this.failedAdmissions.get(seq.blocks) === this.tier.epoch) return false;
    const hashes = this.promptHashes(seq);
    // Every full prompt block may hit; in spill mode the last prompt token is still computed (its
    // logits are sampled), as vLLM's prefix cache recomputes it when the whole prompt hits.
    const numPrompt = seq.numPromptTokens ?? 0;
    const numTokensMax = Math.max(seq.tokenIds?.length ?? 0, seq.maxTotalTokens ?? 0);
    const numBlocksMax = Math.max(numNewBlocks, Math.ceil(numTokensMax / this.options.blockSize));
    const result = this.tier.reserve(numBlocksMax, hashes);
    if ('failedAtEpoch' in result) {
      this.failedAdmissions.set(seq.blocks, result.failedAtEpoch);
      this.counters.numAdmissionWaits++;
      return false;
    }
    this.failedAdmissions.delete(seq.blocks);
    this.states.set(seq.blocks, {
      reserved: numBlocksMax - result.hitIds.length,
      pendingHitIds: result.hitIds,
      numHitBlocks: result.hitIds.length,
      numCachedTokens: this.tier.k ? Math.min(result.hitIds.length * this.options.blockSize, Math.max(0, numPrompt - 1)) : 0,
      numPublishedBlocks: result.hitIds.length,
      hashes,
    });
    return true;
  }

  grow(seq: KvSequence, numNewBlocks: number): void {
    if (!this.canGrow(seq, numNewBlocks)) {
      throw new OutOfBlocksError(`shared host tier ${this.tier.path}: no room for ${numNewBlocks} blocks now`, 'host', numNewBlocks * this.blockBytes, 0);
    }
    const state = this.states.get(seq.blocks)!;
    const fromHits = state.pendingHitIds.splice(0, numNewBlocks);
    const numFresh = numNewBlocks - fromHits.length;
    const fresh = numFresh > 0 ? this.tier.allocate(numFresh) : [];
    state.reserved -= numFresh;
    const numOld = seq.blocks.hostVBlockIds.length;
    seq.blocks.hostVBlockIds.push(...fromHits, ...fresh);
    if (fromHits.length > 0 && this.storage) this.restoreGrown(seq, numOld * this.options.blockSize, seq.blocks.hostVBlockIds.length * this.options.blockSize);
  }

  /** Prefix hits whose K the tier holds (spill mode, storage attached): grow restores them. */
  numCachedTokens(seq: KvSequence): number {
    const state = this.states.get(seq.blocks);
    return state && this.storage ? state.numCachedTokens : 0;
  }

  noteComputed(seq: KvSequence, numComputedTokens: number): void {
    if (this.storage) this.publishPrefix(seq.blocks, seq.attention, seq.numPromptTokens ?? 0, numComputedTokens, this.storage.arenas);
  }

  /** Restores the prefix hits among positions [start, end) of seq's new blocks, and says so. */
  private restoreGrown(seq: KvSequence, start: number, end: number): void {
    const storage = this.storage!;
    const resume = this.restorePrefix(seq.blocks, seq.attention, start, end, storage.arenas);
    if (resume > start) storage.rowsRestored(seq.blocks, seq.attention, start, resume);
  }

  release(seq: KvSequence): void {
    const state = this.states.get(seq.blocks);
    this.failedAdmissions.delete(seq.blocks);
    if (!state) {
      assert.equal(seq.blocks.hostVBlockIds.length, 0, 'host table without tier state');
      return;
    }
    this.states.delete(seq.blocks);
    this.tier.release([...seq.blocks.hostVBlockIds, ...state.pendingHitIds], state.reserved);
    seq.blocks.hostVBlockIds.length = 0;
  }

  /** For the runner: V rows of a sealed (shared) block are never written again. */
  isHostVBlockReadOnly(id: number): boolean {
    return this.tier.isSealed(id);
  }

  /**
   * With spilled K, copies the K (and dense-layer V) of the sequence's prefix hits among positions
   * [start, end) into the device arenas (grow does, once storage is attached). Returns the first
   * position prefill must compute (start when nothing was restored).
   */
  restorePrefix(blocks: SequenceBlocks, attention: AttentionConfig, start: number, end: number, arenas: KvArenas): number {
    const state = this.states.get(blocks);
    const tierK = this.tier.k;
    if (!state || state.numCachedTokens === 0 || !tierK) return start;
    const bs = this.options.blockSize;
    const cachedEnd = state.numCachedTokens;
    if (start >= cachedEnd) return start;
    const numDense = numDenseLayers(attention, this.options.numLayers);
    const floats = this.tier.layout.layerBlockFloats;
    const lastBlock = Math.min(Math.ceil(Math.min(end, cachedEnd) / bs), state.numHitBlocks);
    for (let b = Math.floor(start / bs); b < lastBlock; b++) {
      const hostId = blocks.hostVBlockIds[b];
      const from = hostId * floats;
      for (let l = 0; l < this.options.numLayers; l++) {
        arenas.k[l].set(tierK[l].subarray(from, from + floats), blocks.kBlockIds[b] * floats);
        if (l < numDense) arenas.deviceV[l].set(this.tier.v[l].subarray(from, from + floats), blocks.deviceVBlockIds[b] * floats);
      }
      this.counters.numRestoredBlocks++;
    }
    const resume = Math.min(end, cachedEnd);
    this.counters.numRestoredTokens += resume - start;
    return resume;
  }

  /**
   * After prefill has written positions below numComputedTokens (noteComputed): offers the sequence's full prompt
   * blocks not offered yet to the prefix index (spilling their K first), and points the table at
   * an equal block already there, if any.
   */
  publishPrefix(blocks: SequenceBlocks, attention: AttentionConfig, numPromptTokens: number, numComputedTokens: number, arenas: KvArenas): void {
    const state = this.states.get(blocks);
    if (!state || !this.options.prefixSharing) return;
    const bs = this.options.blockSize;
    const numComplete = Math.min(Math.floor(Math.min(numComputedTokens, numPromptTokens) / bs), state.hashes.length);
    if (numComplete <= state.numPublishedBlocks) return;
    const numDense = numDenseLayers(attention, this.options.numLayers);
    const floats = this.tier.layout.layerBlockFloats;
    const tierK = this.tier.k;
    const offers: Array<{ id: number; hash: BlockHash }> = [];
    for (let b = state.numPublishedBlocks; b < numComplete; b++) {
      const id = blocks.hostVBlockIds[b];
      if (this.tier.isSealed(id)) continue;
      if (tierK) {
        const to = id * floats;
        for (let l = 0; l < this.options.numLayers; l++) {
          const kFrom = blocks.kBlockIds[b] * floats;
          tierK[l].set(arenas.k[l].subarray(kFrom, kFrom + floats), to);
          if (l < numDense) {
            const vFrom = blocks.deviceVBlockIds[b] * floats;
            this.tier.v[l].set(arenas.deviceV[l].subarray(vFrom, vFrom + floats), to);
          }
        }
      }
      offers.push({ id, hash: state.hashes[b] });
    }
    state.numPublishedBlocks = numComplete;
    if (offers.length === 0) return;
    const vLayers = Array.from({ length: this.options.numLayers }, (_, l) => l >= numDense || tierK !== null);
    const kept = this.tier.publish(offers, { vLayers, keys: tierK !== null });
    offers.forEach((offer, i) => {
      if (kept[i] === offer.id) return;
      const b = blocks.hostVBlockIds.indexOf(offer.id);
      assert.ok(b >= 0);
      blocks.hostVBlockIds[b] = kept[i];
    });
  }

  stats(): SharedHostVStats {
    return { ...this.tier.stats(), ...this.counters };
  }

  close(): void {
    this.tier.close();
  }

  private promptHashes(seq: KvSequence): readonly BlockHash[] {
    if (!this.options.prefixSharing || !seq.tokenIds || !seq.numPromptTokens) return [];
    const numBlocks = Math.floor(seq.numPromptTokens / this.options.blockSize);
    if (numBlocks === 0) return [];
    return chainBlockHashes(this.namespaceOf(seq.attention), seq.tokenIds, numBlocks, this.options.blockSize);
  }

  private namespaceOf(attention: AttentionConfig): Buffer {
    const key = JSON.stringify(attention);
    let namespace = this.namespaces.get(key);
    if (!namespace) {
      namespace = prefixNamespace({ modelFingerprint: this.options.modelFingerprint, blockSize: this.options.blockSize, attention, prefixKeys: this.prefixKeys });
      this.namespaces.set(key, namespace);
    }
    return namespace;
  }
}
