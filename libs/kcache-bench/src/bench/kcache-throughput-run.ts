import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AttentionConfig, FULL_ATTENTION } from '@kcache-serve/kcache/dist/attention/attention-config';
import { KvCacheManager } from '@kcache-serve/kcache/dist/memory/kv-cache-manager';
import { KvSequence } from '@kcache-serve/kcache/dist/memory/kv-cache-types';
import { ModelWeights } from '@kcache-serve/kcache/dist/model/model-weights';
import { buildDecodeGraph } from '@kcache-serve/kcache/dist/runtime/decode-graph';
import { GraphVariant, graphVariantOf } from '@kcache-serve/kcache/dist/runtime/graph-variant';
import { GraphWeights } from '@kcache-serve/kcache/dist/runtime/layer-weights-layout';
import { ExecutionProviderName } from '@kcache-serve/kcache/dist/runtime/execution-provider';
import { ExecutionBackendOptions } from '@kcache-serve/kcache/dist/runtime/backend/create-execution-backend';
import { ModelRunner } from '@kcache-serve/kcache/dist/runtime/model-runner';
import { CUDA_GRAPH_WARM_UP_RUNS } from '@kcache-serve/kcache/dist/runtime/backend/native-backend';
import { argmax } from '@kcache-serve/kcache/dist/sampling/sampler';
import { decodeStepBytes } from './hbm-roofline';
import { admitAtBudget, FilledIds, fillUsedBlocks, fullAttentionBytes, kBytesPerSequence } from './kcache-fixed-budget';
import { classifyGraphNodes, StepCategory, StepProfile, summarizeProfile } from './kcache-step-profile';

export type Mode = 'full' | 'kcache';

export interface ThroughputModelCase {
  /** Shown in tables. */
  readonly name: string;
  readonly weights: ModelWeights;
  readonly contexts: readonly number[];
  /** The device budget holds this many full-attention sequences of referenceContext positions. */
  readonly numFullSequencesAtReference: number;
  readonly referenceContext: number;
  /** onnxruntime intra-op threads (0: one per core). */
  readonly numThreads: number;
  /** Decode steps timed per repetition and mode. */
  readonly numStepsPerRep: number;
  /** Profiled decode steps per context and mode (0: no step split). */
  readonly numProfiledSteps: number;
}

/**
 * The native backend's choices a run can make (ExecutionBackendOptions): its decode attention as the
 * PagedDecodeAttention operator, host V in transparent huge pages, each decode shape as a CUDA graph.
 */
export type NativeBackendChoices = Pick<ExecutionBackendOptions, 'pagedAttention' | 'hostTierHugePages' | 'cudaGraphs'>;

export interface ThroughputOptions extends NativeBackendChoices {
  readonly models: readonly ThroughputModelCase[];
  /** Repetitions; in each, both modes run (order alternating), then kcache at full's batch. */
  readonly numReps: number;
  readonly topN: number;
  readonly blockSize: number;
  /** Most sequences admitted per mode. */
  readonly maxNumSeqs: number;
  readonly log: (line: string) => void;
  /** onnxruntime execution provider (default cpu). A GPU provider keeps the device tier resident (ModelRunner). */
  readonly executionProvider?: ExecutionProviderName;
  /** Run through onnxruntime's C API (the native backend; default: on for cuda). */
  readonly nativeBackend?: boolean;
}

export interface StepSplit {
  readonly batchSize: number;
  /** A profiled step (the run with the median kernel total, plus the mean time outside onnxruntime's run), ms. */
  readonly msPerStep: number;
  /** Kernel time per step by category, ms. */
  readonly kernelMs: Readonly<Record<StepCategory, number>>;
  /** The same by category and operator type (e.g. attention.TopK), ms. */
  readonly kernelMsByOp: Readonly<Record<string, number>>;
  /** msPerStep minus all kernels: feeds, appending K/V to the arenas, onnxruntime's own overhead, profiling. */
  readonly overheadMs: number;
}

export interface ModeRow {
  readonly model: string;
  readonly context: number;
  readonly mode: Mode;
  readonly topN: number | null;
  readonly budgetBytes: number;
  readonly numSequences: number;
  /** Median over repetitions. */
  readonly tokensPerSecond: number;
  readonly tokensPerSecondPerRep: readonly number[];
  readonly msPerStep: number;
  readonly deviceBytesPerSequence: number;
  readonly hostBytesPerSequence: number;
  readonly deviceBytesPerToken: number;
  readonly hostBytesPerToken: number;
  /** K of every layer for one sequence: what KCache keeps in the device tier. */
  readonly kBytesPerSequence: number;
  /** TopN V rows a decode step reads from the host tier per generated token (at most min(N, context) per query head and TopN layer), bytes. */
  readonly hostVBytesReadPerToken: number;
  /** Those bytes over the measured step: the host-tier read rate achieved, GB/s. */
  readonly hostVGBPerSecond: number;
  readonly stepSplit: StepSplit | null;
}

export interface RatioRow {
  readonly model: string;
  readonly context: number;
  /** kcache / full. */
  readonly admittedRatio: number;
  readonly throughputRatio: number;
  readonly deviceBytesPerTokenRatio: number;
}

export interface UnconstrainedRow {
  readonly model: string;
  readonly context: number;
  readonly batchSize: number;
  readonly fullMsPerStep: number;
  readonly kcacheMsPerStep: number;
  /** full ms/step ÷ kcache ms/step at the same batch. */
  readonly speedup: number;
}

export interface ModelSettings {
  readonly model: string;
  readonly budgetBytes: number;
  readonly hostCapacityBytes: number;
  readonly referenceContext: number;
  readonly numFullSequencesAtReference: number;
  readonly maxSeqLen: number;
  readonly numThreads: number;
  readonly numStepsPerRep: number;
  readonly numProfiledSteps: number;
}

export interface ThroughputRun {
  readonly models: readonly ModelSettings[];
  readonly rows: readonly ModeRow[];
  readonly ratios: readonly RatioRow[];
  readonly unconstrained: readonly UnconstrainedRow[];
}

interface ModeState {
  readonly mode: Mode;
  readonly attention: AttentionConfig;
  readonly variant: GraphVariant;
  readonly kv: KvCacheManager;
  readonly runner: ModelRunner;
  sequences: KvSequence[];
  /** Ids whose blocks hold random K/V already (GPU runs fill each block once, not per context). */
  readonly filled: FilledIds;
}

/**
 * Decode throughput of full attention and KCache at one fixed device-tier budget per model.
 * Per context, each mode admits as many sequences of that many positions as the budget allows (the
 * KV cache manager's own test), their blocks are filled with random K/V (no prefill: decode cost does
 * not depend on the values), and every repetition times numStepsPerRep greedy decode steps ending at
 * the context length, for both modes in alternating order, then KCache at full's batch (the
 * unconstrained comparison). Medians over repetitions.
 */
export async function runThroughputBench(options: ThroughputOptions): Promise<ThroughputRun> {
  const run: { models: ModelSettings[]; rows: ModeRow[]; ratios: RatioRow[]; unconstrained: UnconstrainedRow[] } = {
    models: [],
    rows: [],
    ratios: [],
    unconstrained: [],
  };
  const profileDir = mkdtempSync(join(tmpdir(), 'kcache-profile-'));
  try {
    for (const model of options.models) await benchModel(model, options, profileDir, run);
  } finally {
    rmSync(profileDir, { recursive: true, force: true });
  }
  return run;
}

async function benchModel(
  model: ThroughputModelCase,
  options: ThroughputOptions,
  profileDir: string,
  run: { models: ModelSettings[]; rows: ModeRow[]; ratios: RatioRow[]; unconstrained: UnconstrainedRow[] },
): Promise<void> {
  const maxContext = Math.max(...model.contexts);
  // Contexts past a model's training length are fine for timing (stories260K was trained to 512);
  // maxSeqLen grows to cover them (the graphs' RoPE tables have maxSeqLen rows).
  const weights: ModelWeights = { ...model.weights, config: { ...model.weights.config, maxSeqLen: Math.max(maxContext, model.weights.config.maxSeqLen) } };
  const config = weights.config;
  const budgetBytes = fullAttentionBytes(config, options.blockSize, model.referenceContext, model.numFullSequencesAtReference);
  const hostCapacityBytes = 2 * budgetBytes;
  run.models.push({
    model: model.name,
    budgetBytes,
    hostCapacityBytes,
    referenceContext: model.referenceContext,
    numFullSequencesAtReference: model.numFullSequencesAtReference,
    maxSeqLen: config.maxSeqLen,
    numThreads: model.numThreads,
    numStepsPerRep: model.numStepsPerRep,
    numProfiledSteps: model.numProfiledSteps,
  });
  const kcacheAttention: AttentionConfig = { mode: 'kcache', topN: options.topN, denseLayers: 0, renormalize: false };
  const states: ModeState[] = [FULL_ATTENTION, kcacheAttention].map((attention) => {
    const kv = new KvCacheManager({ model: config, blockSize: options.blockSize, deviceCapacityBytes: budgetBytes, hostCapacityBytes });
    return {
      mode: attention.mode,
      attention,
      variant: graphVariantOf(attention, config.numLayers),
      kv,
      runner: new ModelRunner(weights, { blockSize: options.blockSize, arenaCapacity: kv.arenaCapacity(), numThreads: model.numThreads, executionProvider: options.executionProvider, nativeBackend: options.nativeBackend, pagedAttention: options.pagedAttention, hostTierHugePages: options.hostTierHugePages, cudaGraphs: options.cudaGraphs }),
      sequences: [],
      filled: { kIds: 0, deviceVIds: 0, hostVIds: 0 },
    };
  });
  const [full, kcache] = states;
  const graphWeights = model.numProfiledSteps > 0 ? new GraphWeights(weights) : null;
  const categoriesByGraph = new Map<string, Map<string, StepCategory>>();
  try {
    for (const context of model.contexts) {
      const numSteps = Math.min(model.numStepsPerRep, context - 1);
      const startPosition = context - numSteps;
      for (const state of states) {
        for (const seq of state.sequences) state.kv.free(seq);
        state.sequences = admitAtBudget(state.kv, state.attention, context, options.maxNumSeqs);
        if (state.sequences.length === 0) throw new Error(`${model.name}: no ${state.mode} sequence of ${context} positions fits ${budgetBytes} bytes`);
        // On the CPU every context gets fresh values (as before); elsewhere new blocks only.
        fillUsedBlocks(state.runner.arenas, state.kv, context, (options.executionProvider ?? 'cpu') === 'cpu' && !options.nativeBackend ? undefined : state.filled);
        await state.runner.reloadDeviceTier();
        // Compiles the session; with cudaGraphs the first runs of a shape also capture its graph.
        await decodeSteps(state, state.sequences, startPosition, options.cudaGraphs ? CUDA_GRAPH_WARM_UP_RUNS : 1, options.topN);
      }
      const sameBatch = kcache.sequences.slice(0, full.sequences.length);
      await decodeSteps(kcache, sameBatch, startPosition, options.cudaGraphs ? CUDA_GRAPH_WARM_UP_RUNS : 1, options.topN);

      const msPerRep: Record<Mode | 'kcacheSameBatch', number[]> = { full: [], kcache: [], kcacheSameBatch: [] };
      for (let rep = 0; rep < options.numReps; rep++) {
        for (const state of rep % 2 === 0 ? [full, kcache] : [kcache, full]) {
          msPerRep[state.mode].push(await decodeSteps(state, state.sequences, startPosition, numSteps, options.topN));
        }
        msPerRep.kcacheSameBatch.push(await decodeSteps(kcache, sameBatch, startPosition, numSteps, options.topN));
      }

      const rows: ModeRow[] = [];
      for (const state of states) {
        const batchSize = state.sequences.length;
        const usage = state.kv.usage();
        const perToken = state.kv.bytesPerToken(state.attention);
        const stepSplit =
          model.numProfiledSteps > 0
            ? await profileSteps(state, weights, graphWeights!, categoriesByGraph, { context, startPosition, numSteps: model.numProfiledSteps, topN: options.topN, profileDir, label: `${model.name.replace(/[^A-Za-z0-9]+/g, '_')}-${context}-${state.mode}`, numThreads: model.numThreads, blockSize: options.blockSize })
            : null;
        const tokensPerSecondPerRep = msPerRep[state.mode].map((ms) => (batchSize * numSteps * 1000) / ms);
        const msPerStep = median(msPerRep[state.mode]) / numSteps;
        const hostVBytesPerStep = decodeStepBytes(config, state.attention, context, batchSize).hostVBytes;
        rows.push({
          model: model.name,
          context,
          mode: state.mode,
          topN: state.mode === 'kcache' ? options.topN : null,
          budgetBytes,
          numSequences: batchSize,
          tokensPerSecond: median(tokensPerSecondPerRep),
          tokensPerSecondPerRep,
          msPerStep,
          deviceBytesPerSequence: usage.device.usedBytes / batchSize,
          hostBytesPerSequence: usage.host.usedBytes / batchSize,
          deviceBytesPerToken: perToken.deviceBytes,
          hostBytesPerToken: perToken.hostBytes,
          kBytesPerSequence: kBytesPerSequence(config, options.blockSize, context),
          hostVBytesReadPerToken: hostVBytesPerStep / batchSize,
          hostVGBPerSecond: hostVBytesPerStep / (msPerStep / 1000) / 1e9,
          stepSplit,
        });
      }
      const [fullRow, kcacheRow] = rows;
      run.rows.push(...rows);
      run.ratios.push({
        model: model.name,
        context,
        admittedRatio: kcacheRow.numSequences / fullRow.numSequences,
        throughputRatio: kcacheRow.tokensPerSecond / fullRow.tokensPerSecond,
        deviceBytesPerTokenRatio: kcacheRow.deviceBytesPerToken / fullRow.deviceBytesPerToken,
      });
      const kcacheSameBatchMs = median(msPerRep.kcacheSameBatch) / numSteps;
      run.unconstrained.push({
        model: model.name,
        context,
        batchSize: full.sequences.length,
        fullMsPerStep: fullRow.msPerStep,
        kcacheMsPerStep: kcacheSameBatchMs,
        speedup: fullRow.msPerStep / kcacheSameBatchMs,
      });
      options.log(
        `${model.name} ctx ${context}: full ${fullRow.numSequences} seqs ${fullRow.tokensPerSecond.toFixed(1)} tok/s, ` +
          `kcache ${kcacheRow.numSequences} seqs ${kcacheRow.tokensPerSecond.toFixed(1)} tok/s (×${(kcacheRow.tokensPerSecond / fullRow.tokensPerSecond).toFixed(2)}); ` +
          `same batch ${full.sequences.length}: ${fullRow.msPerStep.toFixed(2)} vs ${kcacheSameBatchMs.toFixed(2)} ms/step; ` +
          `host-tier V read ${(kcacheRow.hostVBytesReadPerToken / 1024).toFixed(0)} KiB/token at ${kcacheRow.hostVGBPerSecond.toFixed(1)} GB/s`,
      );
    }
  } finally {
    for (const state of states) await state.runner.release();
  }
}

/** Greedy decode steps at positions startPosition.. for the given sequences; returns the elapsed ms. */
async function decodeSteps(state: ModeState, sequences: readonly KvSequence[], startPosition: number, numSteps: number, topN: number): Promise<number> {
  const vocab = state.runner.config.vocabSize;
  let tokenIds = sequences.map((_, b) => 3 + b);
  const start = performance.now();
  for (let step = 0; step < numSteps; step++) {
    const items = sequences.map((seq, b) => ({ tokenId: tokenIds[b], position: startPosition + step, blocks: seq.blocks }));
    const logits = await state.runner.decode(items, state.variant, topN, { untilNextDecode: true }); // [B, vocab], read before the next step
    tokenIds = tokenIds.map((_, b) => argmax(logits.subarray(b * vocab, (b + 1) * vocab)));
  }
  return performance.now() - start;
}

/**
 * The step split of one mode at one context: a second runner over the same arenas with onnxruntime
 * profiling on, one warm-up step and numSteps profiled ones; kernels summed by category for the median run.
 */
async function profileSteps(
  state: ModeState,
  weights: ModelWeights,
  graphWeights: GraphWeights,
  categoriesByGraph: Map<string, Map<string, StepCategory>>,
  c: { context: number; startPosition: number; numSteps: number; topN: number; profileDir: string; label: string; numThreads: number; blockSize: number },
): Promise<StepSplit> {
  const prefix = join(c.profileDir, c.label);
  const profiled: ModeState = {
    ...state,
    runner: new ModelRunner(weights, { blockSize: c.blockSize, arenaCapacity: state.kv.arenaCapacity(), numThreads: c.numThreads, profileFilePrefix: prefix, arenas: state.runner.arenas }),
  };
  let wallMs: number;
  try {
    await decodeSteps(profiled, state.sequences, c.startPosition, 1, c.topN);
    wallMs = (await decodeSteps(profiled, state.sequences, c.startPosition, c.numSteps, c.topN)) / c.numSteps;
  } finally {
    await profiled.runner.release(); // writes the profile
  }
  const files = readdirSync(c.profileDir).filter((f) => f.startsWith(`${c.label}_`));
  if (files.length !== 1) throw new Error(`expected one profile for ${c.label}, found ${files.length}: ${files.join(', ')}`);
  const byCopy = files[0].startsWith(`${c.label}_decodeByCopy_`);
  const graphKey = `${state.variant.key}/${byCopy}`;
  let categories = categoriesByGraph.get(graphKey);
  if (!categories) {
    categories = classifyGraphNodes(buildDecodeGraph(graphWeights, state.variant, c.blockSize, { appendCurrentByCopy: byCopy }));
    categoriesByGraph.set(graphKey, categories);
  }
  const profile: StepProfile = summarizeProfile(join(c.profileDir, files[0]), categories, 1);
  const kernelTotal = Object.values(profile.kernelMs).reduce((a, b) => a + b, 0);
  // The median run, plus the mean time spent outside onnxruntime's run (feeds, appending K/V).
  const msPerStep = profile.modelRunMs + Math.max(0, wallMs - profile.meanModelRunMs);
  return { batchSize: state.sequences.length, msPerStep, kernelMs: profile.kernelMs, kernelMsByOp: profile.kernelMsByOp, overheadMs: Math.max(0, msPerStep - kernelTotal) };
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}
