import { Sequence } from './sequence';

/** Compute K/V (and hidden states) for positions [startPosition, startPosition + numNewTokens) of sequence. */
export interface ScheduledChunk {
  readonly sequence: Sequence;
  readonly startPosition: number;
  readonly numNewTokens: number;
  /** The chunk reaches the end of the sequence's tokens: its last position's logits must be sampled. */
  readonly isLastChunk: boolean;
}

export interface RejectedSequence {
  readonly requestId: string;
  readonly reason: string;
}

/** One step's plan; plain data. Blocks for every scheduled position are allocated before it is returned. */
export interface SchedulerOutput {
  readonly scheduled: ScheduledChunk[];
  /** Sequences moved back to waiting this step (their blocks are freed; they recompute from position 0). */
  readonly preempted: string[];
  /** Sequences dropped because they can never run (finished, never scheduled). */
  readonly rejected: RejectedSequence[];
  /** Sum of numNewTokens; at most maxNumBatchedTokens. */
  readonly numBatchedTokens: number;
}
