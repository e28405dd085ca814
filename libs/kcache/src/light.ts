/**
 * The light face of the engine library: what a process that never runs a model needs (the gateway, the
 * job contract). The request type and its one validator, the limits it enforces, model configs, model
 * loading (weights stay plain arrays) and tokenizers. Nothing here loads onnxruntime; a test checks it.
 */
export * from './attention/attention-config';
export { FinishEvent, FinishReason, GenerationEvent, GenerationListener, GenerationRequest, TokenEvent } from './engine/generation-request';
export { MAX_STOP_STRING_LENGTH, MAX_STOP_STRINGS, validateGenerationRequest } from './engine/validate-request';
export { DuplicateRequestIdError } from './request/duplicate-request-id-error';
export { InvalidRequestError } from './request/invalid-request-error';
export { GREEDY, SamplingParams } from './sampling/sampling-params';
export { validateSamplingParams } from './sampling/validate-sampling-params';
export * from './model';
export { repoRoot } from './model/repo-root';
export { resolveModelSpec } from './model/resolve-model-spec';
export * from './tokenizer';
export * from './hf';
export * from './gguf';
export * from './formats';
