import { AttentionConfig, topNOf } from '../attention/attention-config';
import { graphVariantOf } from '../runtime/graph-variant';
import { PlannedDecodeGroup, PlannedPrefill, StepPlan } from '../runtime/step-plan';
import { ScheduledChunk, SchedulerOutput } from '../scheduler/scheduler-output';

/**
 * The graph runs of a scheduled step: each prefill chunk on its own, and decodes (one new position
 * after the prompt) grouped by graph variant and topN, one batch per group, in scheduled order.
 * Pure: reads the scheduled sequences, changes nothing.
 */
export function planBatches(output: SchedulerOutput, numLayers: number): StepPlan {
  const prefills: PlannedPrefill[] = [];
  const decodeGroups = new Map<string, PlannedDecodeGroup>();
  for (const chunk of output.scheduled) {
    const seq = chunk.sequence;
    const { groupKey, topN } = decodeGroupKey(seq.attention, numLayers);
    const variant = graphVariantOf(seq.attention, numLayers);
    if (isDecode(chunk)) {
      let group = decodeGroups.get(groupKey);
      if (!group) {
        group = { variant, topN, requestIds: [], sample: [], items: [] };
        decodeGroups.set(groupKey, group);
      }
      group.requestIds.push(seq.requestId);
      group.sample.push(chunk.isLastChunk);
      group.items.push({ tokenId: seq.tokenIds[chunk.startPosition], position: chunk.startPosition, blocks: seq.blocks });
    } else {
      const end = chunk.startPosition + chunk.numNewTokens;
      prefills.push({
        requestId: seq.requestId,
        sample: chunk.isLastChunk,
        variant,
        topN,
        item: { tokenIds: seq.tokenIds.slice(chunk.startPosition, end), startPosition: chunk.startPosition, numPromptTokens: seq.numPromptTokens, blocks: seq.blocks },
      });
    }
  }
  return { prefills, decodeGroups: [...decodeGroups.values()] };
}

/** A single new position after the prompt: same computation as the original decode step. */
function isDecode(chunk: ScheduledChunk): boolean {
  return chunk.numNewTokens === 1 && chunk.startPosition >= chunk.sequence.numPromptTokens;
}

const groupKeys = new WeakMap<AttentionConfig, { groupKey: string; topN: number; numLayers: number }>();

/** Decodes with equal keys (graph variant and topN) run as one batch; kept per config object. */
function decodeGroupKey(attention: AttentionConfig, numLayers: number): { groupKey: string; topN: number } {
  let key = groupKeys.get(attention);
  if (!key || key.numLayers !== numLayers) {
    const topN = topNOf(attention);
    key = { groupKey: `${graphVariantOf(attention, numLayers).key}/${topN}`, topN, numLayers };
    groupKeys.set(attention, key);
  }
  return key;
}
