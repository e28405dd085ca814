import { sampleToken } from '../sampling/sampler';
import { RankedLogprob, topLogprobs } from '../sampling/top-logprobs';
import { RequestState } from './request-state';

/**
 * A step's sampled tokens by request, in the order of the logits, with the chosen token's logprob and the
 * most likely alternatives where the request asked for them.
 */
export interface SampledTokens {
  readonly tokenIds: Map<string, number>;
  readonly logprobs: Map<string, number | undefined>;
  readonly topLogprobs: Map<string, RankedLogprob[]>;
}

/** One token per request with logits, none for a request that is gone or being cancelled. */
export function sampleStep(logits: ReadonlyMap<string, Float32Array>, requests: ReadonlyMap<string, RequestState>, cancelling: ReadonlySet<string>): SampledTokens {
  const sampled: SampledTokens = { tokenIds: new Map(), logprobs: new Map(), topLogprobs: new Map() };
  for (const [requestId, rows] of logits) {
    const state = requests.get(requestId);
    if (!state || cancelling.has(requestId)) continue;
    const { request } = state;
    const picked = sampleToken(rows, request.sampling, state.sequence.numOutputTokens, request.logprobs);
    sampled.tokenIds.set(requestId, picked.tokenId);
    sampled.logprobs.set(requestId, picked.logprob);
    const numTop = request.logprobs ? (request.topLogprobs ?? 0) : 0;
    if (numTop > 0) sampled.topLogprobs.set(requestId, topLogprobs(rows, numTop));
  }
  return sampled;
}
