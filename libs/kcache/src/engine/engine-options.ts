import { AttentionConfig, FULL_ATTENTION } from '../attention/attention-config';
import { InvalidRequestError } from '../sampling/sampling-errors';

export interface EngineOptions {
  /** `synthetic:NAME[@SEED]`, a llama2.c model folder or checkpoint file. */
  readonly model: string;
  /** Tokens per KV block. Default 16. */
  readonly blockSize?: number;
  /** Device-tier budget (K, and V of exact layers). Default 512 MiB. */
  readonly deviceCapacityBytes?: number;
  /** Host-tier budget (V of TopN layers). Default 2 GiB. */
  readonly hostCapacityBytes?: number;
  /** Most sequences in the running batch. Default 64. */
  readonly maxNumSeqs?: number;
  /** Token budget per step, also the prefill chunk size. Default 512. */
  readonly maxNumBatchedTokens?: number;
  /** onnxruntime intra-op threads; 0 = automatic: 1 for small models (per-op overhead dominates), else one per core. Default 0. */
  readonly numThreads?: number;
  /** Attention for requests that do not set it. Default full. */
  readonly defaultAttention?: AttentionConfig;
}

export type ResolvedEngineOptions = Required<EngineOptions>;

export const MIB = 1024 * 1024;

export function resolveEngineOptions(options: EngineOptions): ResolvedEngineOptions {
  const resolved: ResolvedEngineOptions = {
    model: options.model,
    blockSize: options.blockSize ?? 16,
    deviceCapacityBytes: options.deviceCapacityBytes ?? 512 * MIB,
    hostCapacityBytes: options.hostCapacityBytes ?? 2048 * MIB,
    maxNumSeqs: options.maxNumSeqs ?? 64,
    maxNumBatchedTokens: options.maxNumBatchedTokens ?? 512,
    numThreads: options.numThreads ?? 0,
    defaultAttention: options.defaultAttention ?? FULL_ATTENTION,
  };
  for (const field of ['blockSize', 'maxNumSeqs', 'maxNumBatchedTokens'] as const) {
    if (!Number.isSafeInteger(resolved[field]) || resolved[field] <= 0) {
      throw new InvalidRequestError(`${field} must be a positive integer, got ${resolved[field]}`, field);
    }
  }
  if (!Number.isSafeInteger(resolved.numThreads) || resolved.numThreads < 0) {
    throw new InvalidRequestError(`numThreads must be a non-negative integer, got ${resolved.numThreads}`, 'numThreads');
  }
  return resolved;
}
