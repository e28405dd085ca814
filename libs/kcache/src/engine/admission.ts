import { ModelConfig } from '../model/model-config';
import { fitsTierCapacity, TierCapacity } from '../memory/tier-capacity';
import { CapacityError } from './engine-errors';
import { GenerationRequest } from './generation-request';
import { validateGenerationRequest } from './validate-request';

/**
 * What submit checks before a request is queued: its fields (InvalidRequestError naming the field) and
 * that it could ever fit the memory tiers (CapacityError). Synchronous and model-independent beyond
 * the config and capacity, so a caller on another thread than the engine's runs the very same check.
 * Returns the most positions the request can reach (prompt plus new tokens, capped by the context).
 */
export function checkAdmission(request: GenerationRequest, modelConfig: ModelConfig, capacity: TierCapacity): number {
  validateGenerationRequest(request, modelConfig);
  return admittedLength(request, modelConfig, capacity);
}

/**
 * The capacity half of checkAdmission, for a request whose fields were already validated (by the caller
 * on the other side of the engine thread): the most positions it can reach, or CapacityError.
 */
export function admittedLength(request: GenerationRequest, modelConfig: ModelConfig, capacity: TierCapacity): number {
  const maxTotalTokens = Math.min(request.promptTokenIds.length + request.maxNewTokens, modelConfig.maxSeqLen + 1);
  if (!fitsTierCapacity(capacity, request.attention, Math.min(maxTotalTokens, modelConfig.maxSeqLen))) {
    throw new CapacityError(`request '${request.requestId}' needs up to ${maxTotalTokens} tokens of KV cache, more than the memory tiers hold`);
  }
  return maxTotalTokens;
}
