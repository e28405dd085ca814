import { SequenceBlocks } from '../memory/sequence-blocks';

/** One sequence's next position in a decode batch. */
export interface DecodeItem {
  readonly tokenId: number;
  /** Position of tokenId; positions [0, position) are cached. */
  readonly position: number;
  readonly blocks: SequenceBlocks;
}

/** One prefill chunk of a sequence. */
export interface PrefillItem {
  /** Tokens at positions [startPosition, startPosition + tokenIds.length). */
  readonly tokenIds: readonly number[];
  readonly startPosition: number;
  readonly numPromptTokens: number;
  readonly blocks: SequenceBlocks;
}
