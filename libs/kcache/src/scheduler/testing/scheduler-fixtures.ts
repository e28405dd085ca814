import { AttentionConfig, FULL_ATTENTION } from '../../attention/attention-config';
import { KvCacheManager } from '../../memory/kv-cache-manager';
import { ModelConfig } from '../../model/model-config';
import { Scheduler, SchedulerOptions } from '../scheduler';
import { SchedulerOutput } from '../scheduler-output';
import { Sequence } from '../sequence';

// kvDim 4, 2 layers, blockSize 4: a layer block is 64 bytes, a K block 128, a full-mode block 256 of device.
export const MODEL: ModelConfig = {
  dim: 8, hiddenDim: 16, numLayers: 2, numHeads: 2, numKvHeads: 1, vocabSize: 32,
  maxSeqLen: 64, sharedClassifier: true, normEps: 1e-5, ropeTheta: 10000,
};
export const BLOCK_SIZE = 4;
export const FULL_BLOCK_BYTES = 256;
export const K_BLOCK_BYTES = 128;
export const KCACHE_0: AttentionConfig = { mode: 'kcache', topN: 4, denseLayers: 0, renormalize: false };
export const KCACHE_1: AttentionConfig = { ...KCACHE_0, denseLayers: 1 };

export interface SeqSpec {
  promptLen?: number;
  maxNewTokens?: number;
  attention?: AttentionConfig;
  priority?: number;
  arrivalIndex?: number;
}

export function seq(requestId: string, spec: SeqSpec = {}): Sequence {
  const promptLen = spec.promptLen ?? 3;
  return new Sequence({
    requestId,
    promptTokenIds: Array.from({ length: promptLen }, (_, i) => 1 + (i % 30)),
    maxNewTokens: spec.maxNewTokens ?? 16,
    maxModelLen: MODEL.maxSeqLen,
    attention: spec.attention ?? FULL_ATTENTION,
    priority: spec.priority,
    arrivalIndex: spec.arrivalIndex,
  });
}

export function setup(
  opts: Partial<SchedulerOptions> = {},
  deviceCapacityBytes = 1 << 20,
  hostCapacityBytes = 1 << 20,
): { kv: KvCacheManager; scheduler: Scheduler } {
  const kv = new KvCacheManager({ model: MODEL, blockSize: BLOCK_SIZE, deviceCapacityBytes, hostCapacityBytes });
  const scheduler = new Scheduler(
    { maxNumSeqs: opts.maxNumSeqs ?? 8, maxNumBatchedTokens: opts.maxNumBatchedTokens ?? 64, maxModelLen: opts.maxModelLen ?? MODEL.maxSeqLen },
    kv,
  );
  return { kv, scheduler };
}

/** schedule → (pretend) run → commit, sampling token 7 for every last chunk. */
export function step(scheduler: Scheduler): SchedulerOutput {
  const output = scheduler.schedule();
  const sampled = new Map<string, number>();
  for (const item of output.scheduled) if (item.isLastChunk) sampled.set(item.sequence.requestId, 7);
  scheduler.commit(output, sampled);
  return output;
}

/** [requestId, startPosition, numNewTokens, isLastChunk] per scheduled chunk. */
export function plan(output: SchedulerOutput): Array<[string, number, number, boolean]> {
  return output.scheduled.map((c) => [c.sequence.requestId, c.startPosition, c.numNewTokens, c.isLastChunk]);
}

export function deviceBytesOf(kv: KvCacheManager, seqs: Sequence[]): number {
  return seqs.reduce((sum, s) => sum + s.blocks.kBlockIds.length * BLOCK_SIZE * kv.bytesPerToken(s.attention).deviceBytes, 0);
}
