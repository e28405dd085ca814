import { AttentionConfig } from '../../attention/attention-config';
import { GenerationRequest } from '../../engine/generation-request';
import { LoadedModel } from '../../formats/model-source';
import { GREEDY } from '../../sampling/sampling-params';
import { loadGreedyOracle } from '../reference-data';

export const KCACHE_32: AttentionConfig = { mode: 'kcache', topN: 32, denseLayers: 0, renormalize: false };

/**
 * Prompts for stories260K that share one prefix: the first prefixLength tokens of the oracle's
 * stories told one after another, then the start of oracle prompt i (up to 40 tokens) as suffix.
 */
export function sharedPrefixPrompts(model: LoadedModel, prefixLength: number, count: number): number[][] {
  const oracle = loadGreedyOracle();
  const story = model.tokenizer.encode(oracle.map((r) => r.generated_text).join(' '), { bos: true });
  const prefix = story.slice(0, prefixLength);
  return Array.from({ length: count }, (_, i) => {
    const record = oracle[i % oracle.length];
    const suffix = model.tokenizer.encode(record.prompt, { bos: false }).slice(0, 40);
    // Prompts repeating a record get one more token so that no two are equal.
    return [...prefix, ...suffix, ...(i >= oracle.length ? [story[prefixLength + i]] : [])];
  });
}

export function greedyRequest(requestId: string, promptTokenIds: readonly number[], maxNewTokens: number, attention: AttentionConfig = KCACHE_32): GenerationRequest {
  return { requestId, promptTokenIds, maxNewTokens, sampling: GREEDY, stopTokenIds: [], stopStrings: [], attention, priority: 0, logprobs: false };
}
