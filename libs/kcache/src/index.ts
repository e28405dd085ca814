/**
 * The engine library: the engine and what it takes and gives. A process that only validates requests or
 * tokenizes imports `@kcache-serve/kcache/light` (no onnxruntime); tests import
 * `@kcache-serve/kcache/testing`.
 */
export * from './light';
export * from './engine/generation-engine';
export * from './engine/engine-errors';
export * from './engine/engine-options';
export * from './engine/llm-engine';
export * from './engine/create-engine';
export * from './engine/threaded-engine';
export * from './engine/generate';
export { KvCacheManager } from './memory/kv-cache-manager';
export { OutOfBlocksError } from './memory/memory-errors';
export { ModelRunner, ModelRunnerOptions, DecodeItem, PrefillItem } from './runtime/model-runner';
export { GraphVariant, graphVariantOf } from './runtime/graph-variant';
export { sampleToken, argmax, logSoftmaxAt } from './sampling/sampler';
export { topLogprobs, MAX_TOP_LOGPROBS, RankedLogprob } from './sampling/top-logprobs';
export * from './host-tier/host-tier-options';
