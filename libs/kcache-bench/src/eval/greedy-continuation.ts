import { AttentionConfig } from '@kcache-serve/kcache/dist/attention/attention-config';
import { generate } from '@kcache-serve/kcache/dist/engine/generate';
import { LlmEngine } from '@kcache-serve/kcache/dist/engine/llm-engine';
import { GREEDY } from '@kcache-serve/kcache/dist/sampling/sampling-params';
import { commonPrefixLength } from './quality-metrics';

export interface GreedyAgreement {
  readonly numPrompts: number;
  readonly promptLength: number;
  readonly maxNewTokens: number;
  /** Mean length of the common prefix of the kcache and full continuations. */
  readonly meanMatchedTokens: number;
  /** Mean length of the full-attention continuations (they may stop early at BOS). */
  readonly meanReferenceTokens: number;
  /** Continuations identical to full's, stop included. */
  readonly fractionIdentical: number;
}

/** Greedy continuations of every prompt through the engine, submitted together (one batch). */
export async function greedyContinuations(engine: LlmEngine, prompts: readonly (readonly number[])[], attention: AttentionConfig, maxNewTokens: number): Promise<number[][]> {
  const results = await Promise.all(
    prompts.map((promptTokenIds, i) =>
      generate(engine, {
        requestId: `greedy-${attention.mode === 'kcache' ? `kcache-${attention.topN}-${attention.denseLayers}-${attention.renormalize}` : 'full'}-${i}`,
        promptTokenIds,
        maxNewTokens,
        sampling: GREEDY,
        stopTokenIds: [],
        stopStrings: [],
        attention,
        priority: 0,
        logprobs: false,
      }),
    ),
  );
  return results.map((r) => r.tokenIds);
}

export function greedyAgreement(reference: readonly (readonly number[])[], candidate: readonly (readonly number[])[], promptLength: number, maxNewTokens: number): GreedyAgreement {
  const n = reference.length;
  let matched = 0;
  let referenceTokens = 0;
  let identical = 0;
  reference.forEach((ref, i) => {
    matched += commonPrefixLength(ref, candidate[i]);
    referenceTokens += ref.length;
    if (ref.length === candidate[i].length && commonPrefixLength(ref, candidate[i]) === ref.length) identical++;
  });
  return { numPrompts: n, promptLength, maxNewTokens, meanMatchedTokens: matched / n, meanReferenceTokens: referenceTokens / n, fractionIdentical: identical / n };
}
