import { ModelConfig } from '../model/model-config';
import { ModelWeights } from '../model/model-weights';
import { SequenceBlocks } from '../memory/sequence-blocks';
import { createExecutionBackend, ExecutionBackendOptions } from './backend/create-execution-backend';
import { DecodeLogits, ExecutionBackend, GraphKind } from './backend/execution-backend';
import { DecodeInputs } from './decode-inputs';
import { GatherStats } from './gather-stats';
import { GraphSessions } from './graph-sessions';
import { GraphVariant } from './graph-variant';
import { KvArenas } from './kv-arenas';
import { GraphWeights } from './layer-weights-layout';
import { prefillInputs, scoreInputs } from './prefill-inputs';
import { DecodeItem, PrefillItem } from './run-items';
import { StepPlan } from './step-plan';

export { DecodeItem, PrefillItem } from './run-items';

export interface ModelRunnerOptions extends ExecutionBackendOptions {
  /**
   * Decode graph for the current token's k/v (see buildDecodeGraph): true copies it onto the past,
   * false (the default) adds it as separate terms. Fixed per runner, never chosen per step: the two
   * graphs round differently in the last bits, and a sequence's tokens must not depend on which
   * other sequences share its batch (seeded sampling is replayed exactly when a job moves worker).
   * Measured on stories260K, separate terms are 8-26% faster from batch 8 up and 1-4% slower at batch 1.
   */
  readonly appendCurrentByCopy?: boolean;
  /** The execution backend to run on, instead of the one createExecutionBackend picks from the options. */
  readonly backend?: ExecutionBackend;
}

/**
 * Runs the model's graphs on an execution backend, which owns the physical KV arenas: one graph
 * run per decode batch and per prefill chunk, each writing its new K/V rows. The runner builds the
 * graphs (GraphSessions) and their input tables (DecodeInputs, prefillInputs); it makes no
 * scheduling or sampling decisions.
 */
export class ModelRunner {
  readonly backend: ExecutionBackend;
  /** Host-tier V rows the decode runs of execute() gathered. */
  readonly gatherStats: GatherStats;
  private readonly graphWeights: GraphWeights;
  private readonly graphs: GraphSessions;
  private readonly decodeInputs: DecodeInputs;
  private readonly decodeKind: GraphKind;

  constructor(weights: ModelWeights, options: ModelRunnerOptions) {
    this.graphWeights = new GraphWeights(weights);
    this.backend = options.backend ?? createExecutionBackend(weights.config, options);
    this.graphs = new GraphSessions(this.graphWeights, this.backend, options.blockSize, options.profileFilePrefix !== undefined);
    this.decodeInputs = new DecodeInputs(weights.config, this.backend.arenas, this.backend.graphOptions);
    this.decodeKind = options.appendCurrentByCopy ? 'decodeByCopy' : 'decode';
    this.gatherStats = new GatherStats(weights.config.numHeads, options.blockSize);
  }

  get arenas(): KvArenas {
    return this.backend.arenas;
  }

  get config(): ModelConfig {
    return this.graphWeights.config;
  }

  /** True when the device tier lives in the provider's memory (see ExecutionBackendOptions.residentDeviceTier). */
  get hasResidentDeviceTier(): boolean {
    return this.backend.hasResidentDeviceTier;
  }

  /**
   * Positions [from, to) of a sequence were written into the K and device-V host arenas by someone
   * other than this runner (the node's host tier restoring a shared prefix): a resident device tier
   * takes them at the next decode.
   */
  noteCachedRowsWritten(blocks: SequenceBlocks, variant: GraphVariant, from: number, to: number): void {
    this.backend.cachedRowsWritten(blocks, variant, from, to);
  }

  /** The host arenas were rewritten wholesale (benchmarks fill them directly): copy them to the resident device tier again. */
  reloadDeviceTier(): Promise<void> {
    return this.backend.reload();
  }

  /**
   * Runs a step's plan (each prefill chunk, then each decode group, one graph run each) and returns
   * the logits to sample, [vocab] per request, in that order.
   */
  async execute(plan: StepPlan): Promise<Map<string, Float32Array>> {
    const logits = new Map<string, Float32Array>();
    for (const prefill of plan.prefills) {
      const rows = await this.prefill(prefill.item, prefill.variant, prefill.topN);
      if (prefill.sample) logits.set(prefill.requestId, rows);
    }
    const vocab = this.config.vocabSize;
    for (const [i, group] of plan.decodeGroups.entries()) {
      const startMs = performance.now();
      // The last group's logits may stay in the backend's buffer: nothing runs before they are sampled.
      const rows = await this.decode(group.items, group.variant, group.topN, { untilNextDecode: i === plan.decodeGroups.length - 1 });
      this.gatherStats.recordDecode(group.variant, group.topN, group.items, performance.now() - startMs);
      for (let b = 0; b < group.items.length; b++) {
        if (group.sample[b]) logits.set(group.requestIds[b], rows.length === vocab ? rows : rows.subarray(b * vocab, (b + 1) * vocab));
      }
    }
    return logits;
  }

  /**
   * logits: [items.length, vocab]. untilNextDecode: the caller reads them before the next decode, so they may
   * be a view of the backend's own buffer (no copy of a batch's rows; a 32 x 32000 batch is 4 MiB).
   */
  async decode(items: readonly DecodeItem[], variant: GraphVariant, topN: number, options: { readonly untilNextDecode?: boolean } = {}): Promise<Float32Array> {
    const graph = this.graphs.cached(variant, this.decodeKind) ?? (await this.graphs.get(variant, this.decodeKind));
    const buffers = this.decodeInputs.acquire();
    let output: DecodeLogits;
    try {
      const run = this.backend.runDecode(graph, this.decodeInputs.build(buffers, items, variant, topN), variant, items);
      output = run instanceof Promise ? await run : run;
    } finally {
      this.decodeInputs.release(buffers);
    }
    const { logits, rowStride } = output;
    const vocab = this.config.vocabSize;
    const batch = items.length;
    // A view of the backend's buffer when the caller reads it before the next decode (rows are contiguous in it when
    // the stride is the vocabulary, or there is one row); a copy otherwise.
    if (options.untilNextDecode && (batch === 1 || rowStride === vocab)) return logits.subarray(0, batch * vocab);
    const rows = new Float32Array(batch * vocab);
    for (let b = 0; b < batch; b++) rows.set(logits.subarray(b * rowStride, b * rowStride + vocab), b * vocab);
    return rows;
  }

  /** logits: [1, vocab] for the chunk's last position. */
  async prefill(item: PrefillItem, variant: GraphVariant, topN: number): Promise<Float32Array> {
    const graph = await this.graphs.get(variant, 'prefill');
    const blockSize = this.arenas.blockSize;
    const inputs = prefillInputs(item, variant, topN, blockSize);
    const chunk = { blocks: item.blocks, startPosition: item.startPosition, numRows: item.tokenIds.length, numPastBlocks: Math.ceil(item.startPosition / blockSize) };
    return this.backend.runPrefill(graph, inputs, variant, chunk);
  }

  /**
   * Teacher-forced logits of a whole text, [tokenIds.length, vocab], with nothing cached: row t
   * predicts token t+1. Query rows at positions >= numExactPositions use the variant's TopN
   * selection in its TopN layers (KCache applied to every position), earlier rows exact attention.
   */
  async score(tokenIds: readonly number[], variant: GraphVariant, topN: number, numExactPositions: number): Promise<Float32Array> {
    const graph = await this.graphs.get(variant, 'score');
    return this.backend.runScore(graph, scoreInputs(tokenIds, variant, topN, numExactPositions), variant);
  }

  /** Builds (and caches) a variant's graphs ahead of the first request. */
  async warmUp(variant: GraphVariant): Promise<void> {
    await this.graphs.get(variant, 'prefill');
    await this.graphs.get(variant, this.decodeKind);
  }

  async release(): Promise<void> {
    await this.backend.release();
    await this.graphs.release();
  }
}
