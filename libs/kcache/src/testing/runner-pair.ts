import assert from 'node:assert/strict';
import { AttentionConfig, topNOf } from '../attention/attention-config';
import type { KvCacheManager } from '../memory/kv-cache-manager';
import { emptySequenceBlocks, SequenceBlocks } from '../memory/sequence-blocks';
import { ModelConfig } from '../model/model-config';
import { argmax } from '../sampling/sampler';
import { graphVariantOf } from '../runtime/graph-variant';
import { KvArenas } from '../runtime/kv-arenas';
import type { ModelRunner } from '../runtime/model-runner';
import { OracleRecord } from './reference-data';

/** A runner under test beside the plain (onnxruntime-node, host arenas) runner, both over one KV cache manager. */
export interface RunnerPair {
  readonly plain: ModelRunner;
  readonly other: ModelRunner;
  readonly kv: KvCacheManager;
}

/**
 * Arenas whose K and device-V buffers hold `layersPerGroup` layers each (blocks of 16 positions), as a
 * runner option; none (all layers in one buffer) when layersPerGroup is unset.
 */
export function groupedArenas(config: ModelConfig, capacity: ReturnType<KvCacheManager['arenaCapacity']>, layersPerGroup?: number): { arenas?: KvArenas } {
  if (!layersPerGroup) return {};
  const floatsPerLayerBlock = 16 * config.numKvHeads * (config.dim / config.numHeads);
  return { arenas: new KvArenas(config, 16, capacity, undefined, layersPerGroup * Math.max(capacity.kIds, capacity.deviceVIds) * floatsPerLayerBlock) };
}

/**
 * The prompts, each prefilled in two chunks (the second reads a cached past), then `steps` batched greedy
 * decode steps on both runners (the plain runner's tokens). Prefill logits bit-identical; decode logits
 * bit-identical, or within `tolerance`. `afterFirstStep` runs once, after the first decode step.
 * Returns each prompt's blocks.
 */
export async function generateOnBoth(
  pair: RunnerPair,
  records: readonly OracleRecord[],
  attention: AttentionConfig,
  steps: number,
  { afterFirstStep, tolerance = 0 }: { afterFirstStep?: (blocks: SequenceBlocks[]) => void; tolerance?: number } = {},
): Promise<SequenceBlocks[]> {
  const config = pair.plain.config;
  const variant = graphVariantOf(attention, config.numLayers);
  const seqs = records.map((record) => {
    const seq = { blocks: emptySequenceBlocks(), attention };
    pair.kv.allocate(seq, record.prompt_token_ids.length + steps + 1);
    return { seq, prompt: record.prompt_token_ids };
  });
  const next: number[] = [];
  for (const { seq, prompt } of seqs) {
    const split = Math.ceil(prompt.length / 2);
    const logits: Float32Array[] = [];
    for (const runner of [pair.plain, pair.other]) {
      await runner.prefill({ tokenIds: prompt.slice(0, split), startPosition: 0, numPromptTokens: prompt.length, blocks: seq.blocks }, variant, topNOf(attention));
      logits.push(await runner.prefill({ tokenIds: prompt.slice(split), startPosition: split, numPromptTokens: prompt.length, blocks: seq.blocks }, variant, topNOf(attention)));
    }
    assert.deepEqual(Array.from(logits[1]), Array.from(logits[0]), 'prefill logits');
    next.push(argmax(logits[0]));
  }
  for (let step = 0; step < steps; step++) {
    const items = seqs.map(({ seq, prompt }, b) => ({ tokenId: next[b], position: prompt.length + step, blocks: seq.blocks }));
    const plain = await pair.plain.decode(items, variant, topNOf(attention));
    const other = await pair.other.decode(items, variant, topNOf(attention));
    if (tolerance === 0) assert.deepEqual(Array.from(other), Array.from(plain), `${attention.mode} step ${step}`);
    else assertClose(other, plain, tolerance, `${attention.mode} step ${step}`);
    items.forEach((_, b) => (next[b] = argmax(plain.subarray(b * config.vocabSize, (b + 1) * config.vocabSize))));
    if (step === 0) afterFirstStep?.(seqs.map((s) => s.seq.blocks));
  }
  return seqs.map((s) => s.seq.blocks);
}

function assertClose(actual: Float32Array, expected: Float32Array, tolerance: number, what: string): void {
  assert.equal(actual.length, expected.length, what);
  let worst = 0;
  for (let i = 0; i < actual.length; i++) worst = Math.max(worst, Math.abs(actual[i] - expected[i]));
  assert.ok(worst <= tolerance, `${what}: logits differ by ${worst}`);
}
