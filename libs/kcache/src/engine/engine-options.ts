import { AttentionConfig, FULL_ATTENTION } from '../attention/attention-config';
import { DEFAULT_HOST_TIER, HostTierOptions, resolveSharedHostTierOptions } from '../host-tier/host-tier-options';
import { EXECUTION_PROVIDERS, ExecutionProviderName, isExecutionProvider } from '../runtime/execution-provider';
import { ModelConfig } from '../model/model-config';
import { pagedAttentionCudaKernelsBuilt } from '../ort-native/native-ort';
import { InvalidRequestError } from '../request/invalid-request-error';

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
  /** Where onnxruntime runs the graphs: cpu, webgpu or cuda (see docs/gpu.md). Default cpu. */
  readonly executionProvider?: ExecutionProviderName;
  /**
   * Run the graphs through onnxruntime's C API (the kcache_ort addon) with the KV arenas bound in place:
   * on cuda the device tier lives in GPU memory and host-tier V in pinned (or registered) host memory,
   * one graph run per decode step. cpu + true runs the same path on the CPU provider (no GPU needed).
   * Default: true for cuda, false otherwise; webgpu has no native backend.
   */
  readonly nativeBackend?: boolean;
  /**
   * Native backend only: decode writes each layer's new K/V rows into the arena before it reads the past, so
   * the current position is one more column (44 fewer nodes a step on the ~110M model; same math, other
   * rounding). Default false: its oracle passes on a GPU, its speed there is not measured yet (docs/gpu.md).
   */
  readonly currentRowInArena?: boolean;
  /**
   * Native backend only: every layer's decode attention as one kernel of the kcache_ort addon (the com.kcache
   * PagedDecodeAttention operator: native/paged_attention.h), reading K and V in the arenas where they lie and, for
   * TopN layers, only the N selected host-V rows. Implies currentRowInArena. On cuda it needs the addon's CUDA kernels
   * (kcache_paged_attention_cuda.so, built by build-native.sh where nvcc is found). Default: true on cuda where
   * those kernels are built (faster, and exact to the oracle on an H100: docs/gpu.md), false otherwise.
   */
  readonly pagedAttention?: boolean;
  /**
   * cuda with pagedAttention: each decode shape (batch and past padded to steps) runs as a CUDA graph, captured at its
   * first runs and replayed after: one launch a step instead of one per operator (NativeBackendOptions.cudaGraphs).
   * Default false.
   */
  readonly cudaGraphs?: boolean;
  /**
   * Where the host tier lives: { kind: 'process' } (this process's memory) or { kind: 'shared', ... }
   * (one tier for every worker process of the node; see host-tier/host-tier-options.ts). Default process.
   */
  readonly hostTier?: HostTierOptions;
  /**
   * How generated tokens are recomputed after a preemption or when a request resumes on another
   * worker: 'decode' replays them one per step, bit-identical to the first run (a seeded sampled
   * stream continues exactly as it would have); 'prefill' recomputes them in chunks, faster to catch
   * up but rounding differently in the last bits. Default decode.
   */
  readonly recompute?: 'decode' | 'prefill';
}

export type ResolvedEngineOptions = Required<EngineOptions>;

export const MIB = 1024 * 1024;

/** Up to this width, one onnxruntime thread is faster than several (per-op overhead dominates). */
const SMALL_MODEL_DIM = 256;

/** The onnxruntime intra-op threads numThreads 0 stands for: 1 for small models, else 0 (onnxruntime's choice: one per core). */
export function automaticNumThreads(config: ModelConfig): number {
  return config.dim <= SMALL_MODEL_DIM ? 1 : 0;
}

export function resolveEngineOptions(options: EngineOptions): ResolvedEngineOptions {
  const executionProvider = options.executionProvider ?? 'cpu';
  const nativeBackend = options.nativeBackend ?? executionProvider === 'cuda';
  const resolved: ResolvedEngineOptions = {
    model: options.model,
    blockSize: options.blockSize ?? 16,
    deviceCapacityBytes: options.deviceCapacityBytes ?? 512 * MIB,
    hostCapacityBytes: options.hostCapacityBytes ?? 2048 * MIB,
    maxNumSeqs: options.maxNumSeqs ?? 64,
    maxNumBatchedTokens: options.maxNumBatchedTokens ?? 512,
    numThreads: options.numThreads ?? 0,
    defaultAttention: options.defaultAttention ?? FULL_ATTENTION,
    executionProvider,
    nativeBackend,
    currentRowInArena: options.currentRowInArena ?? false,
    // Default: on where the native backend runs on cuda and its kernels are built.
    pagedAttention: options.pagedAttention ?? (nativeBackend && executionProvider === 'cuda' && pagedAttentionCudaKernelsBuilt()),
    cudaGraphs: options.cudaGraphs ?? false,
    hostTier: options.hostTier ?? DEFAULT_HOST_TIER,
    recompute: options.recompute ?? 'decode',
  };
  for (const field of ['blockSize', 'maxNumSeqs', 'maxNumBatchedTokens'] as const) {
    if (!Number.isSafeInteger(resolved[field]) || resolved[field] <= 0) {
      throw new InvalidRequestError(field, `must be a positive integer, got ${resolved[field]}`);
    }
  }
  if (!Number.isSafeInteger(resolved.numThreads) || resolved.numThreads < 0) {
    throw new InvalidRequestError('numThreads', `must be a non-negative integer, got ${resolved.numThreads}`);
  }
  if (!isExecutionProvider(resolved.executionProvider)) {
    throw new InvalidRequestError('executionProvider', `must be one of ${EXECUTION_PROVIDERS.join(', ')}, got '${resolved.executionProvider}'`);
  }
  if (typeof resolved.nativeBackend !== 'boolean') {
    throw new InvalidRequestError('nativeBackend', `must be true or false, got ${JSON.stringify(resolved.nativeBackend)}`);
  }
  if (resolved.currentRowInArena !== undefined && typeof resolved.currentRowInArena !== 'boolean') {
    throw new InvalidRequestError('currentRowInArena', `must be true or false, got ${JSON.stringify(resolved.currentRowInArena)}`);
  }
  if (typeof resolved.pagedAttention !== 'boolean') {
    throw new InvalidRequestError('pagedAttention', `must be true or false, got ${JSON.stringify(resolved.pagedAttention)}`);
  }
  if (resolved.pagedAttention && !resolved.nativeBackend) {
    throw new InvalidRequestError('pagedAttention', 'is a kernel of the native backend (nativeBackend: true, the default for cuda)');
  }
  if (typeof resolved.cudaGraphs !== 'boolean') {
    throw new InvalidRequestError('cudaGraphs', `must be true or false, got ${JSON.stringify(resolved.cudaGraphs)}`);
  }
  if (resolved.cudaGraphs && (resolved.executionProvider !== 'cuda' || !resolved.pagedAttention)) {
    throw new InvalidRequestError('cudaGraphs', 'needs the cuda provider and pagedAttention (the graph of one kernel per layer)');
  }
  if (resolved.currentRowInArena && !resolved.nativeBackend) {
    throw new InvalidRequestError('currentRowInArena', 'is a graph of the native backend (nativeBackend: true, the default for cuda)');
  }
  if (resolved.nativeBackend && resolved.executionProvider === 'webgpu') {
    throw new InvalidRequestError('nativeBackend', "runs onnxruntime's cpu or cuda provider; webgpu runs through onnxruntime-node only");
  }
  if (resolved.recompute !== 'decode' && resolved.recompute !== 'prefill') {
    throw new InvalidRequestError('recompute', `must be decode or prefill, got '${resolved.recompute}'`);
  }
  if (resolved.hostTier.kind === 'shared') resolveSharedHostTierOptions(resolved.hostTier, resolved.hostCapacityBytes); // throws HostTierConfigError
  else if (resolved.hostTier.kind !== 'process') {
    throw new InvalidRequestError('hostTier', `kind must be 'process' or 'shared', got '${(resolved.hostTier as { kind: unknown }).kind}'`);
  }
  return resolved;
}
