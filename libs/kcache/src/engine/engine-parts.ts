import { SharedHostVBlocks } from '../host-tier/shared-host-v-blocks';
import { KvCacheManager } from '../memory/kv-cache-manager';
import { ModelWeights } from '../model/model-weights';
import { graphVariantOf } from '../runtime/graph-variant';
import { ModelRunner } from '../runtime/model-runner';
import { Scheduler } from '../scheduler/scheduler';
import { automaticNumThreads, ResolvedEngineOptions } from './engine-options';

/** What an engine steps: the KV cache manager, the scheduler over it and the runner over its arenas. */
export interface EngineParts {
  readonly kv: KvCacheManager;
  readonly scheduler: Scheduler;
  readonly runner: ModelRunner;
}

/**
 * The engine's parts for its options. With the node's shared host tier, host-V ids and arenas come
 * from it, and its prefix cache restores into (at allocation) and publishes from (at commit) the
 * runner's arenas.
 */
export function createEngineParts(weights: ModelWeights, options: ResolvedEngineOptions, sharedHost: SharedHostVBlocks | null): EngineParts {
  const config = weights.config;
  const kv = new KvCacheManager({
    model: config,
    blockSize: options.blockSize,
    deviceCapacityBytes: options.deviceCapacityBytes,
    hostCapacityBytes: options.hostCapacityBytes,
    ...(sharedHost ? { externalHostTier: sharedHost } : {}),
  });
  const scheduler = new Scheduler(
    {
      maxNumSeqs: options.maxNumSeqs,
      maxNumBatchedTokens: options.maxNumBatchedTokens,
      // The last sampled token needs no cache position (as in the reference generator).
      maxModelLen: config.maxSeqLen + 1,
      replayGeneratedByDecode: options.recompute === 'decode',
    },
    kv,
  );
  const runner = new ModelRunner(weights, {
    blockSize: options.blockSize,
    arenaCapacity: kv.arenaCapacity(),
    numThreads: options.numThreads || automaticNumThreads(config),
    executionProvider: options.executionProvider,
    nativeBackend: options.nativeBackend,
    currentRowInArena: options.currentRowInArena,
    pagedAttention: options.pagedAttention,
    cudaGraphs: options.cudaGraphs,
    ...(sharedHost ? { hostVArenas: sharedHost.tier.v, isHostVBlockReadOnly: (id: number) => sharedHost.isHostVBlockReadOnly(id) } : {}),
  });
  sharedHost?.attachStorage({
    arenas: runner.arenas,
    rowsRestored: (blocks, attention, from, to) => runner.noteCachedRowsWritten(blocks, graphVariantOf(attention, config.numLayers), from, to),
  });
  return { kv, scheduler, runner };
}
