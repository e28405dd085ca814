import { sampleToken } from '../sampling/sampler';
import { RequestState } from './request-state';

/** A step's sampled tokens (and their logprobs, when asked for), by request, in the order of the logits. */
export interface SampledTokens {
  readonly tokenIds: Map<string, number>;
  readonly logprobs: Map<string, number | undefined>;
}

/** One token per request with logits, none for a request that is gone or being cancelled. */
export function sampleStep(logits: ReadonlyMap<string, Float32Array>, requests: ReadonlyMap<string, RequestState>, cancelling: ReadonlySet<string>): SampledTokens {
  const sampled: SampledTokens = { tokenIds: new Map(), logprobs: new Map() };
  for (const [requestId, rows] of logits) {
    const state = requests.get(requestId);
    if (!state || cancelling.has(requestId)) continue;
    const picked = sampleToken(rows, state.request.sampling, state.sequence.numOutputTokens, state.request.logprobs);
    sampled.tokenIds.set(requestId, picked.tokenId);
    sampled.logprobs.set(requestId, picked.logprob);
  }
  return sampled;
}
