import { GraphVariant } from './graph-variant';
import { DecodeItem, PrefillItem } from './run-items';

/** One prefill chunk to run. */
export interface PlannedPrefill {
  readonly requestId: string;
  /** The chunk ends the sequence's tokens: its last position's logits are sampled. */
  readonly sample: boolean;
  readonly variant: GraphVariant;
  readonly topN: number;
  readonly item: PrefillItem;
}

/** Decodes that share a graph variant and topN: one graph run. Entry b of each list is one sequence. */
export interface PlannedDecodeGroup {
  readonly variant: GraphVariant;
  readonly topN: number;
  readonly requestIds: string[];
  /** False for a replayed generated token (recompute after preemption or a resume): it only fills the cache. */
  readonly sample: boolean[];
  readonly items: DecodeItem[];
}

/** A step's graph runs, as plain data: prefill chunks in scheduled order, then decode groups. */
export interface StepPlan {
  readonly prefills: readonly PlannedPrefill[];
  readonly decodeGroups: readonly PlannedDecodeGroup[];
}
