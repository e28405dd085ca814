import { AttentionConfig, topNOf } from '@kcache-serve/kcache/dist/attention/attention-config';
import { KvCacheManager } from '@kcache-serve/kcache/dist/memory/kv-cache-manager';
import { emptySequenceBlocks, SequenceBlocks } from '@kcache-serve/kcache/dist/memory/sequence-blocks';
import { ModelWeights } from '@kcache-serve/kcache/dist/model/model-weights';
import { Xoshiro128Random } from '@kcache-serve/kcache/dist/model/xoshiro128-random';
import { graphVariantOf } from '@kcache-serve/kcache/dist/runtime/graph-variant';
import { ExecutionProviderName } from '@kcache-serve/kcache/dist/runtime/execution-provider';
import { DecodeItem, ModelRunner } from '@kcache-serve/kcache/dist/runtime/model-runner';
import { CUDA_GRAPH_WARM_UP_RUNS } from '@kcache-serve/kcache/dist/runtime/backend/native-backend';

export interface DecodeBenchCase {
  readonly attention: AttentionConfig;
  readonly context: number;
  readonly batchSize: number;
  readonly numSteps: number;
  readonly numThreads: number;
  readonly blockSize: number;
  readonly profileFilePrefix?: string;
  readonly appendCurrentByCopy?: boolean;
  /** onnxruntime execution provider (default cpu). */
  readonly executionProvider?: ExecutionProviderName;
  /** Run through onnxruntime's C API (the native backend; default: on for cuda). */
  readonly nativeBackend?: boolean;
  /** The native backend's decode writes the current row before it reads the past (default: on cuda only). */
  readonly currentRowInArena?: boolean;
  /** Exact layers as one MultiHeadAttention node where Hkv = H (native backend; default false). */
  readonly fusedAttention?: boolean;
  /** Decode attention as the addon's PagedDecodeAttention operator (native backend; default false). */
  readonly pagedAttention?: boolean;
  /** cuda, with pagedAttention: each decode shape as a CUDA graph (NativeBackendOptions.cudaGraphs; default false). */
  readonly cudaGraphs?: boolean;
}

export interface DecodeBenchResult {
  readonly msPerStep: number;
  readonly tokensPerSecond: number;
}

/**
 * Decode steps at a given context with the cache already filled (random K/V written straight to
 * the arenas, no prefill), so long contexts of large models can be measured in seconds.
 * Every sequence decodes position `context`, so the measured work is the steady state at that length.
 */
export async function benchDecode(modelWeights: ModelWeights, c: DecodeBenchCase): Promise<DecodeBenchResult> {
  // A context past the model's maxSeqLen is fine for timing: the graphs' RoPE tables grow to cover it.
  const maxSeqLen = Math.max(modelWeights.config.maxSeqLen, c.context + 1);
  const weights: ModelWeights = { ...modelWeights, config: { ...modelWeights.config, maxSeqLen } };
  const config = weights.config;
  const kv = new KvCacheManager({
    model: config,
    blockSize: c.blockSize,
    deviceCapacityBytes: c.batchSize * (c.context + c.blockSize) * config.numLayers * 2 * (config.dim / config.numHeads) * config.numKvHeads * 4 + 1,
    hostCapacityBytes: c.batchSize * (c.context + c.blockSize) * config.numLayers * (config.dim / config.numHeads) * config.numKvHeads * 4 + 1,
  });
  const runner = new ModelRunner(weights, { blockSize: c.blockSize, arenaCapacity: kv.arenaCapacity(), numThreads: c.numThreads, profileFilePrefix: c.profileFilePrefix, appendCurrentByCopy: c.appendCurrentByCopy, executionProvider: c.executionProvider, nativeBackend: c.nativeBackend, currentRowInArena: c.currentRowInArena, fusedAttention: c.fusedAttention, pagedAttention: c.pagedAttention, cudaGraphs: c.cudaGraphs });
  const variant = graphVariantOf(c.attention, config.numLayers);
  const sequences: Array<{ blocks: SequenceBlocks; attention: AttentionConfig }> = [];
  for (let b = 0; b < c.batchSize; b++) {
    const seq = { blocks: emptySequenceBlocks(), attention: c.attention };
    kv.allocate(seq, c.context + 1);
    sequences.push(seq);
  }
  fillArenas(runner, kv, new Xoshiro128Random(7));
  await runner.reloadDeviceTier(); // a device tier kept apart from the host arenas takes the filled values
  const items: DecodeItem[] = sequences.map((s, b) => ({ tokenId: 3 + b, position: c.context, blocks: s.blocks }));
  // Warm-up: the first run allocates; with cudaGraphs the first runs of a shape also capture its graph.
  for (let i = 0; i < (c.cudaGraphs ? CUDA_GRAPH_WARM_UP_RUNS : 1); i++) await runner.decode(items, variant, topNOf(c.attention));
  const start = performance.now();
  for (let i = 0; i < c.numSteps; i++) await runner.decode(items, variant, topNOf(c.attention), { untilNextDecode: true });
  const msPerStep = (performance.now() - start) / c.numSteps;
  await runner.release();
  return { msPerStep, tokensPerSecond: (c.batchSize * 1000) / msPerStep };
}

/** Small random values in the blocks in use (commits the pages like real K/V would). */
function fillArenas(runner: ModelRunner, kv: KvCacheManager, random: Xoshiro128Random): void {
  const a = runner.arenas;
  const used = kv.maxIdsInUsePlusOne();
  const floatsPerBlock = a.rowsPerBlock * a.headDim;
  const fill = (arena: Float32Array, numIds: number) => {
    const end = Math.min(arena.length, numIds * floatsPerBlock);
    for (let i = 0; i < end; i++) arena[i] = random.nextFloat() - 0.5;
  };
  a.k.forEach((arena) => fill(arena, used.kIds));
  a.deviceV.forEach((arena) => fill(arena, used.deviceVIds));
  a.hostV.forEach((arena) => fill(arena, used.hostVIds));
}
