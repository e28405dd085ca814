import { AttentionConfig } from '../attention/attention-config';
import { ModelConfig } from '../model/model-config';
import { InvalidRequestError } from '../request/invalid-request-error';
import { SamplingParams } from '../sampling/sampling-params';
import { MAX_TOP_LOGPROBS } from '../sampling/top-logprobs';
import { validateSamplingParams } from '../sampling/validate-sampling-params';
import { GenerationRequest } from './generation-request';

export const MAX_STOP_STRINGS = 16;
export const MAX_STOP_STRING_LENGTH = 256;

/** The public API's names of the sampling fields (kcache.v1.SamplingParams), used in errors. */
const SAMPLING_FIELDS: Readonly<Record<keyof SamplingParams | 'sampling', string>> = {
  sampling: 'sampling',
  temperature: 'sampling.temperature',
  topK: 'sampling.top_k',
  topP: 'sampling.top_p',
  seed: 'sampling.seed',
};

/**
 * The one check of a request against the model, run where a request enters (the gateway, or a direct
 * caller of the engine's submit). Throws InvalidRequestError whose field is the public API's name for it
 * (`prompt_token_ids`, `sampling.top_p`, `attention.dense_layers`) and whose reason says what is wrong.
 */
export function validateGenerationRequest(request: GenerationRequest, model: ModelConfig): void {
  const fail = (field: string, reason: string): never => {
    throw new InvalidRequestError(field, reason);
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
  validateSamplingParams(request.sampling, (field) => SAMPLING_FIELDS[field]);
  checkTokenIds(request.stopTokenIds, model.vocabSize, 'stop_token_ids', fail);
  if (request.stopStrings.length > MAX_STOP_STRINGS) fail('stop', `at most ${MAX_STOP_STRINGS} stop strings`);
  if (request.stopStrings.some((s) => s.length > MAX_STOP_STRING_LENGTH)) {
    fail('stop', `each stop string has at most ${MAX_STOP_STRING_LENGTH} characters`);
  }
  validateAttention(request.attention, model, fail);
  const numTop = request.topLogprobs ?? 0;
  if (!Number.isSafeInteger(numTop) || numTop < 0 || numTop > MAX_TOP_LOGPROBS) {
    fail('top_logprobs', `must be an integer in [0, ${MAX_TOP_LOGPROBS}], got ${numTop}`);
  }
  if (numTop > 0 && !request.logprobs) fail('top_logprobs', 'needs logprobs');
  if (!Number.isSafeInteger(request.priority)) fail('priority', `must be an integer, got ${request.priority}`);
  const resumed = request.resumeTokenIds ?? [];
  checkTokenIds(resumed, model.vocabSize, 'resume_token_ids', fail);
  if (resumed.length >= request.maxNewTokens) fail('resume_token_ids', 'already reach max_new_tokens');
}

function validateAttention(a: AttentionConfig, model: ModelConfig, fail: (field: string, reason: string) => never): void {
  if (a.mode !== 'full' && a.mode !== 'kcache') fail('attention.mode', `unknown mode '${String((a as { mode: unknown }).mode)}' (full or kcache)`);
  if (a.mode === 'kcache' && (!Number.isSafeInteger(a.topN) || a.topN <= 0)) fail('attention.top_n', `must be a positive integer, got ${a.topN}`);
  // Whatever the mode: a request that names dense layers means them (full attention's own config has none).
  const { denseLayers } = a as { denseLayers?: number };
  if (denseLayers !== undefined && (!Number.isSafeInteger(denseLayers) || denseLayers < 0 || denseLayers > model.numLayers)) {
    fail('attention.dense_layers', `must be in [0, ${model.numLayers}] (the model's layers), got ${denseLayers}`);
  }
}

function checkTokenIds(ids: readonly number[], vocabSize: number, field: string, fail: (field: string, reason: string) => never): void {
  for (const id of ids) {
    if (!Number.isSafeInteger(id) || id < 0 || id >= vocabSize) fail(field, `token id ${id} is outside the vocabulary [0, ${vocabSize})`);
  }
}
