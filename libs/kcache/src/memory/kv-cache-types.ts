import { AttentionConfig } from '../attention/attention-config';
import { SequenceBlocks } from './sequence-blocks';

/** What a sequence's block tables need: its tables and its (fixed) attention config. */
export interface KvSequence {
  readonly blocks: SequenceBlocks;
  readonly attention: AttentionConfig;
  /** For an external host tier (prefix sharing, reservations); a scheduler Sequence has them. */
  readonly tokenIds?: readonly number[];
  readonly numPromptTokens?: number;
  readonly maxTotalTokens?: number;
}

export interface TierUsage {
  readonly usedBytes: number;
  readonly freeBytes: number;
  readonly capacityBytes: number;
}

export interface KvCacheUsage {
  readonly device: TierUsage;
  readonly host: TierUsage;
  readonly numKBlockIds: number;
  readonly numDeviceVBlockIds: number;
  readonly numHostVBlockIds: number;
}

/** Per id space: a number of ids (ids are always below it). */
export interface IdSpaceSizes {
  readonly kIds: number;
  readonly deviceVIds: number;
  readonly hostVIds: number;
}

export interface BytesPerToken {
  readonly deviceBytes: number;
  readonly hostBytes: number;
}

/**
 * A host tier that hands out host-V ids itself (e.g. shared by every worker of a node), counted
 * in whole blocks of blockBytes. It decides per sequence: admission may hold a reservation and
 * prefix hits for the sequence, so that later growth never fails.
 */
export interface ExternalHostTier {
  /** Ids are below numBlocks; the physical arenas span them all. */
  readonly numBlocks: number;
  /** Bytes of one host block (what usage() counts per block). */
  readonly blockBytes: number;
  /** Node-wide bytes of referenced blocks and capacity. */
  usage(): { readonly usedBytes: number; readonly capacityBytes: number };
  /** Host-V ids this process holds now. */
  numIdsHeld(): number;
  /**
   * Could seq's host table grow by numNewBlocks now? For a sequence without blocks (admission) a
   * true answer holds what the sequence needs (its reservation, its prefix hits) until grow or release.
   */
  canGrow(seq: KvSequence, numNewBlocks: number): boolean;
  /** Appends numNewBlocks ids to seq.blocks.hostVBlockIds. Throws OutOfBlocksError when they do not fit. */
  grow(seq: KvSequence, numNewBlocks: number): void;
  /** Returns seq's host ids and anything held for it; empties its host table. */
  release(seq: KvSequence): void;
  /**
   * A prefix cache: leading positions of a sequence just admitted (canGrow true, no blocks yet) whose
   * K and V the tier holds; grow copies them into this process's blocks, so they are not computed.
   * Default 0.
   */
  numCachedTokens?(seq: KvSequence): number;
  /** seq's positions below numComputedTokens are computed now: full prompt blocks may be offered to the prefix cache. */
  noteComputed?(seq: KvSequence, numComputedTokens: number): void;
}
