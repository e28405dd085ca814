import { AttentionConfig } from '@kcache-serve/kcache/dist/attention/attention-config';
import { KvCacheManager } from '@kcache-serve/kcache/dist/memory/kv-cache-manager';
import { KvSequence } from '@kcache-serve/kcache/dist/memory/kv-cache-types';
import { emptySequenceBlocks } from '@kcache-serve/kcache/dist/memory/sequence-blocks';
import { kvDimOf, ModelConfig } from '@kcache-serve/kcache/dist/model/model-config';
import { Xoshiro128Random } from '@kcache-serve/kcache/dist/model/xoshiro128-random';
import { KvArenas } from '@kcache-serve/kcache/dist/runtime/kv-arenas';

/** K and V are fp32. */
const BYTES_PER_ELEMENT = 4;

/** Device-tier bytes that `numSequences` full-attention sequences of `context` positions hold. */
export function fullAttentionBytes(config: ModelConfig, blockSize: number, context: number, numSequences: number): number {
  const numPositions = Math.ceil(context / blockSize) * blockSize;
  return numSequences * numPositions * 2 * config.numLayers * kvDimOf(config) * BYTES_PER_ELEMENT;
}

/** K bytes of one sequence of `context` positions (what KCache keeps in the device tier). */
export function kBytesPerSequence(config: ModelConfig, blockSize: number, context: number): number {
  return fullAttentionBytes(config, blockSize, context, 1) / 2;
}

/**
 * Admits sequences of `context` positions, with the manager's own admission test, until the next
 * one no longer fits (or maxNumSeqs are in): the batch a fixed budget allows at that length.
 */
export function admitAtBudget(kv: KvCacheManager, attention: AttentionConfig, context: number, maxNumSeqs: number): KvSequence[] {
  const sequences: KvSequence[] = [];
  while (sequences.length < maxNumSeqs) {
    const seq = { blocks: emptySequenceBlocks(), attention };
    if (!kv.canAllocate(seq, context)) break;
    kv.allocate(seq, context);
    sequences.push(seq);
  }
  return sequences;
}

/** Ids per space whose blocks hold values already (fillUsedBlocks' watermark). */
export interface FilledIds {
  kIds: number;
  deviceVIds: number;
  hostVIds: number;
}

/**
 * Writes small random values into every block a live id can use, so the cache holds committed,
 * non-constant K/V as after a real prefill (the decode cost does not depend on the values; the
 * TopN selection sees distinct scores). With `filled` (updated in place), blocks below its ids
 * are left as an earlier call wrote them: the next context of a benchmark fills only ids new to it
 * (filling gigabytes again per context costs more than its timed steps on a GPU).
 */
export function fillUsedBlocks(arenas: KvArenas, kv: KvCacheManager, seed: number, filled?: FilledIds): void {
  const random = new Xoshiro128Random(seed);
  const used = kv.maxIdsInUsePlusOne();
  const floatsPerBlock = arenas.rowsPerBlock * arenas.headDim;
  const fill = (arena: Float32Array, fromIds: number, numIds: number) => {
    const end = Math.min(arena.length, numIds * floatsPerBlock);
    const start = Math.min(end, fromIds * floatsPerBlock);
    if (end > start) random.fillTriangular(arena.subarray(start, end), 0.5);
  };
  arenas.k.forEach((arena) => fill(arena, filled?.kIds ?? 0, used.kIds));
  arenas.deviceV.forEach((arena) => fill(arena, filled?.deviceVIds ?? 0, used.deviceVIds));
  arenas.hostV.forEach((arena) => fill(arena, filled?.hostVIds ?? 0, used.hostVIds));
  if (filled) {
    filled.kIds = Math.max(filled.kIds, used.kIds);
    filled.deviceVIds = Math.max(filled.deviceVIds, used.deviceVIds);
    filled.hostVIds = Math.max(filled.hostVIds, used.hostVIds);
  }
}
