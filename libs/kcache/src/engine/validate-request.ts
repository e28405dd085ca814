import { AttentionConfig } from '../attention/attention-config';
import { ModelConfig } from '../model/model-config';
import { InvalidRequestError } from '../sampling/sampling-errors';
import { validateSamplingParams } from '../sampling/validate-sampling-params';
import { GenerationRequest } from './generation-request';

export const MAX_STOP_STRINGS = 16;
export const MAX_STOP_STRING_LENGTH = 256;

/** Checks a request against the model before it is queued; throws InvalidRequestError naming the field. */
export function validateGenerationRequest(request: GenerationRequest, model: ModelConfig): void {
  const fail = (field: string, message: string): never => {
    throw new InvalidRequestError(`${field}: ${message}`, field);
  };
  if (typeof request.requestId !== 'string' || request.requestId.length === 0 || request.requestId.length > 256) {
    fail('request_id', 'must be a non-empty string of at most 256 characters');
  }
  if (request.promptTokenIds.length === 0) fail('prompt', 'is empty and no prompt_token_ids were given');
  checkTokenIds(request.promptTokenIds, model.vocabSize, 'prompt_token_ids', fail);
  if (request.promptTokenIds.length > model.maxSeqLen) {
    fail('prompt', `has ${request.promptTokenIds.length} tokens, more than the model context of ${model.maxSeqLen}`);
  }
  if (!Number.isSafeInteger(request.maxNewTokens) || request.maxNewTokens <= 0) {
    fail('max_new_tokens', `must be a positive integer, got ${request.maxNewTokens}`);
  }
  if (request.maxNewTokens > model.maxSeqLen) {
    fail('max_new_tokens', `${request.maxNewTokens} is above the model context of ${model.maxSeqLen}`);
  }
  validateSamplingParams(request.sampling);
  checkTokenIds(request.stopTokenIds, model.vocabSize, 'stop_token_ids', fail);
  if (request.stopStrings.length > MAX_STOP_STRINGS) fail('stop', `at most ${MAX_STOP_STRINGS} stop strings`);
  if (request.stopStrings.some((s) => s.length > MAX_STOP_STRING_LENGTH)) {
    fail('stop', `each stop string has at most ${MAX_STOP_STRING_LENGTH} characters`);
  }
  validateAttention(request.attention, model, fail);
  if (!Number.isSafeInteger(request.priority)) fail('priority', `must be an integer, got ${request.priority}`);
  const resumed = request.resumeTokenIds ?? [];
  checkTokenIds(resumed, model.vocabSize, 'resume_token_ids', fail);
  if (resumed.length >= request.maxNewTokens) fail('resume_token_ids', 'already reach max_new_tokens');
}

function validateAttention(a: AttentionConfig, model: ModelConfig, fail: (field: string, message: string) => never): void {
  if (a.mode !== 'full' && a.mode !== 'kcache') fail('attention.mode', `unknown mode '${String((a as { mode: unknown }).mode)}' (full or kcache)`);
  if (a.mode === 'kcache') {
    if (!Number.isSafeInteger(a.topN) || a.topN <= 0) fail('attention.top_n', `must be a positive integer, got ${a.topN}`);
    if (!Number.isSafeInteger(a.denseLayers) || a.denseLayers < 0 || a.denseLayers > model.numLayers) {
      fail('attention.dense_layers', `must be an integer in [0, ${model.numLayers}], got ${a.denseLayers}`);
    }
  }
}

function checkTokenIds(ids: readonly number[], vocabSize: number, field: string, fail: (field: string, message: string) => never): void {
  for (const id of ids) {
    if (!Number.isSafeInteger(id) || id < 0 || id >= vocabSize) fail(field, `token id ${id} is outside the vocabulary [0, ${vocabSize})`);
  }
}
