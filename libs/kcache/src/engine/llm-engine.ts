import { setImmediate as yieldToEventLoop, setTimeout as sleep } from 'node:timers/promises';
import { AttentionConfig } from '../attention/attention-config';
import { SharedHostVBlocks, SharedHostVStats } from '../host-tier/shared-host-v-blocks';
import { KvCacheManager } from '../memory/kv-cache-manager';
import { LoadedModel } from '../model/model-source';
import { ModelConfig } from '../model/model-config';
import { DecodeItem, ModelRunner } from '../runtime/model-runner';
import { GraphVariant, graphVariantOf, hasTopNLayer } from '../runtime/graph-variant';
import { sampleToken } from '../sampling/sampler';
import { ScheduledChunk } from '../scheduler/scheduler-output';
import { Scheduler } from '../scheduler/scheduler';
import { Sequence } from '../scheduler/sequence';
import { Tokenizer } from '../tokenizer/tokenizer';
import { checkAdmission } from './admission';
import { DuplicateRequestIdError, EngineClosedError } from './engine-errors';
import { automaticNumThreads, ResolvedEngineOptions } from './engine-options';
import { EngineStats, GenerationEngine } from './generation-engine';
import { GenerationListener, GenerationRequest } from './generation-request';
import { RequestState } from './request-state';

const NO_SAMPLED_TOKENS: ReadonlyMap<string, number> = new Map();

/** How long a step that could schedule nothing (the shared host tier is full) waits before retrying. */
const IDLE_WAIT_MS = 2;

/**
 * Steps that ran the model yield to the event loop (I/O, timers, cancels) once this long has passed
 * since the last yield: a model run does not yield (GraphSession), and a turn of the event loop per
 * step costs a sizeable part of a small model's step.
 */
const YIELD_INTERVAL_MS = 1;

/**
 * Continuous-batching KCache engine. Each step: schedule → run → commit.
 * The scheduler picks chunks under a token budget; the runner executes one graph run per group
 * of decodes that share a graph variant and TopN, and one per prefill chunk; sampled tokens are
 * committed and stop conditions checked. The loop yields to the event loop between steps, at
 * least every YIELD_INTERVAL_MS.
 */
export class LlmEngine implements GenerationEngine {
  readonly modelConfig: ModelConfig;
  readonly tokenizer: Tokenizer;
  readonly kv: KvCacheManager;
  private readonly scheduler: Scheduler;
  private readonly runner: ModelRunner;
  private readonly requests = new Map<string, RequestState>();
  private readonly pendingCancels = new Set<string>();
  private readonly eosTokenIds: readonly number[];
  private loop: Promise<void> | null = null;
  private closing = false;
  private counters = { numGeneratedTokens: 0, numSteps: 0, numPreemptions: 0, lastBatchSize: 0 };
  /** V rows the decode graphs gathered from the host tier (B · numHeads · min(N, T+1) per TopN layer) and the time of those runs. */
  private gather = { numHostVRows: 0, decodeMs: 0 };
  private numScheduledLastStep = 0;
  private lastYieldMs = 0;
  private readonly decodeGroups = new WeakMap<AttentionConfig, { variant: GraphVariant; topN: number; groupKey: string }>();

  /** sharedHost: the node's shared host tier (createEngine opens it); the engine closes it. Default: in-process host tier. */
  constructor(
    model: LoadedModel,
    readonly options: ResolvedEngineOptions,
    private readonly sharedHost: SharedHostVBlocks | null = null,
  ) {
    this.modelConfig = model.weights.config;
    this.tokenizer = model.tokenizer;
    // The model's own stop tokens (Hugging Face generation config); llama2.c models end a story with
    // BOS, as the reference generator does (it never stops on EOS).
    this.eosTokenIds = model.stopTokenIds ?? [model.tokenizer.bosId];
    this.kv = new KvCacheManager({
      model: this.modelConfig,
      blockSize: options.blockSize,
      deviceCapacityBytes: options.deviceCapacityBytes,
      hostCapacityBytes: options.hostCapacityBytes,
      ...(sharedHost ? { externalHostTier: sharedHost } : {}),
    });
    this.scheduler = new Scheduler(
      {
        maxNumSeqs: options.maxNumSeqs,
        maxNumBatchedTokens: options.maxNumBatchedTokens,
        // The last sampled token needs no cache position (as in the reference generator).
        maxModelLen: this.modelConfig.maxSeqLen + 1,
        replayGeneratedByDecode: options.recompute === 'decode',
      },
      this.kv,
    );
    this.runner = new ModelRunner(model.weights, {
      blockSize: options.blockSize,
      arenaCapacity: this.kv.arenaCapacity(),
      numThreads: options.numThreads || automaticNumThreads(this.modelConfig),
      executionProvider: options.executionProvider,
      nativeBackend: options.nativeBackend,
      ...(sharedHost
        ? {
            hostVArenas: sharedHost.tier.v,
            isHostVBlockReadOnly: (id: number) => sharedHost.isHostVBlockReadOnly(id),
          }
        : {}),
    });
  }

  /** Compiles the default attention's graphs so the first request does not pay for it. */
  async warmUp(): Promise<void> {
    await this.runner.warmUp(graphVariantOf(this.options.defaultAttention, this.modelConfig.numLayers));
  }

  submit(request: GenerationRequest, listener: GenerationListener): void {
    if (this.closing) throw new EngineClosedError();
    const maxTotalTokens = checkAdmission(request, this.modelConfig, this.kv.capacity);
    if (this.requests.has(request.requestId)) throw new DuplicateRequestIdError(request.requestId);
    const sequence = new Sequence({
      requestId: request.requestId,
      promptTokenIds: request.promptTokenIds,
      outputTokenIds: request.resumeTokenIds,
      maxNewTokens: request.maxNewTokens,
      maxModelLen: this.modelConfig.maxSeqLen + 1,
      attention: request.attention,
      priority: request.priority,
    });
    const state = new RequestState(request, sequence, listener, this.tokenizer, this.eosTokenIds, maxTotalTokens);
    this.requests.set(request.requestId, state);
    this.scheduler.addSequence(sequence);
    this.ensureLoop();
  }

  cancel(requestId: string): boolean {
    if (!this.requests.has(requestId)) return false;
    this.pendingCancels.add(requestId);
    this.ensureLoop();
    return true;
  }

  numFreeSlots(): number {
    return Math.max(0, this.options.maxNumSeqs - this.requests.size);
  }

  /** Sequences in the batch and waiting for it (what stats() reports as numRunning / numWaiting), cheaply. */
  get numSequences(): { readonly running: number; readonly waiting: number } {
    return { running: this.scheduler.numRunning, waiting: this.scheduler.numWaiting };
  }

  /** host: node-wide for a shared host tier, whose own figures are in hostTier. */
  stats(): EngineStats & { numHostVRowsGathered: number; hostVRowsPerSecond: number; hostTier?: SharedHostVStats } {
    const usage = this.kv.usage();
    return {
      numRunning: this.scheduler.numRunning,
      numWaiting: this.scheduler.numWaiting,
      device: { usedBytes: usage.device.usedBytes, capacityBytes: usage.device.capacityBytes },
      host: { usedBytes: usage.host.usedBytes, capacityBytes: usage.host.capacityBytes },
      ...this.counters,
      numHostVRowsGathered: this.gather.numHostVRows,
      hostVRowsPerSecond: this.gather.decodeMs > 0 ? (this.gather.numHostVRows * 1000) / this.gather.decodeMs : 0,
      ...(this.sharedHost ? { hostTier: this.sharedHost.stats() } : {}),
    };
  }

  async close(): Promise<void> {
    this.closing = true;
    for (const id of this.requests.keys()) this.pendingCancels.add(id);
    this.ensureLoop();
    await this.loop;
    await this.runner.release();
    this.sharedHost?.close();
  }

  /** Resolves when every submitted request has finished. */
  async idle(): Promise<void> {
    while (this.loop) await this.loop;
  }

  private ensureLoop(): void {
    if (this.loop) return;
    this.loop = this.runLoop().finally(() => {
      this.loop = null;
      if (this.requests.size > 0 && !this.closing) this.ensureLoop();
    });
  }

  private async runLoop(): Promise<void> {
    while (this.requests.size > 0) {
      this.applyCancels();
      if (this.requests.size === 0) break;
      try {
        await this.step();
      } catch (error) {
        this.failAll(error);
      }
      // Nothing could run: admissions wait for the node's shared host tier to free blocks.
      if (this.numScheduledLastStep === 0 && this.sharedHost) await sleep(IDLE_WAIT_MS);
      else if (this.numScheduledLastStep === 0 || performance.now() - this.lastYieldMs >= YIELD_INTERVAL_MS) await yieldToEventLoop();
      else continue;
      this.lastYieldMs = performance.now();
    }
  }

  private applyCancels(): void {
    if (this.pendingCancels.size === 0) return;
    for (const id of this.pendingCancels) {
      const state = this.requests.get(id);
      if (state) {
        this.scheduler.abort(id);
        this.requests.delete(id);
        state.finish('cancelled');
      }
    }
    this.pendingCancels.clear();
  }

  /** One schedule → run → commit step. */
  async step(): Promise<void> {
    const output = this.scheduler.schedule();
    this.numScheduledLastStep = output.scheduled.length;
    this.counters.numSteps++;
    this.counters.numPreemptions += output.preempted.length;
    for (const rejected of output.rejected) this.endRequest(rejected.requestId, 'cancelled', rejected.reason);
    const toSample: Array<{ chunk: ScheduledChunk; logits: Float32Array }> = [];

    const decodeGroups = new Map<string, { variant: GraphVariant; topN: number; chunks: ScheduledChunk[] }>();
    for (const chunk of output.scheduled) {
      if (this.isDecode(chunk)) {
        const { variant, topN, groupKey } = this.decodeGroupOf(chunk.sequence.attention);
        const group = decodeGroups.get(groupKey);
        if (group) group.chunks.push(chunk);
        else decodeGroups.set(groupKey, { variant, topN, chunks: [chunk] });
      } else {
        const seq = chunk.sequence;
        const end = chunk.startPosition + chunk.numNewTokens;
        // A shared prefix whose K was spilled is copied back, not computed (never the last prompt token).
        const start = this.sharedHost?.restorePrefix(seq.blocks, seq.attention, chunk.startPosition, end, this.runner.arenas) ?? chunk.startPosition;
        if (start > chunk.startPosition) this.runner.noteCachedRowsWritten(seq.blocks, this.variantOf(seq.attention), chunk.startPosition, start);
        if (start < end) {
          const logits = await this.runner.prefill(
            {
              tokenIds: seq.tokenIds.slice(start, end),
              startPosition: start,
              numPromptTokens: seq.numPromptTokens,
              blocks: seq.blocks,
            },
            this.variantOf(seq.attention),
            seq.attention.topN,
          );
          if (chunk.isLastChunk) toSample.push({ chunk, logits });
        }
        this.sharedHost?.publishPrefix(seq.blocks, seq.attention, seq.numPromptTokens, end, this.runner.arenas);
      }
    }
    let batchSize = 0;
    for (const group of decodeGroups.values()) {
      const items: DecodeItem[] = group.chunks.map((c) => ({
        tokenId: c.sequence.tokenIds[c.startPosition],
        position: c.startPosition,
        blocks: c.sequence.blocks,
      }));
      const startMs = performance.now();
      const logits = await this.runner.decode(items, group.variant, group.topN);
      if (hasTopNLayer(group.variant)) {
        const bs = this.options.blockSize;
        const past = Math.ceil(Math.max(...items.map((i) => i.position)) / bs) * bs;
        const numTopNLayers = group.variant.denseLayers.filter((dense) => !dense).length;
        this.gather.numHostVRows += items.length * this.modelConfig.numHeads * Math.min(group.topN, past + 1) * numTopNLayers;
        this.gather.decodeMs += performance.now() - startMs;
      }
      const vocab = this.modelConfig.vocabSize;
      for (let b = 0; b < group.chunks.length; b++) {
        const chunk = group.chunks[b];
        // A replayed generated token (recompute after preemption or resume) only fills the cache.
        if (chunk.isLastChunk) toSample.push({ chunk, logits: logits.length === vocab ? logits : logits.subarray(b * vocab, (b + 1) * vocab) });
      }
      batchSize += items.length;
    }
    this.counters.lastBatchSize = batchSize;

    const ended: Array<{ requestId: string; reason: 'stop' | 'eos' | 'length' }> = [];
    for (const { chunk, logits } of toSample) {
      const seq = chunk.sequence;
      const state = this.requests.get(seq.requestId);
      if (!state || this.pendingCancels.has(seq.requestId)) continue;
      const picked = sampleToken(logits, state.request.sampling, seq.numOutputTokens, state.request.logprobs);
      seq.appendToken(picked.tokenId);
      this.counters.numGeneratedTokens++;
      const decision = state.accept(picked.tokenId, picked.logprob);
      if (decision) ended.push({ requestId: seq.requestId, reason: decision.reason });
    }
    // Tokens were appended above (the stop checks count them), so nothing is left for commit to add.
    this.scheduler.commit(output, NO_SAMPLED_TOKENS);
    for (const { requestId, reason } of ended) this.endRequest(requestId, reason);
  }

  /** graphVariantOf, once per attention config (a request's config object is used every step). */
  private variantOf(attention: AttentionConfig): GraphVariant {
    return this.decodeGroupOf(attention).variant;
  }

  /** A decode's graph variant and TopN; decodes with the same groupKey run as one batch. */
  private decodeGroupOf(attention: AttentionConfig): { variant: GraphVariant; topN: number; groupKey: string } {
    let group = this.decodeGroups.get(attention);
    if (!group) {
      const variant = graphVariantOf(attention, this.modelConfig.numLayers);
      const topN = attention.mode === 'kcache' ? attention.topN : 0;
      group = { variant, topN, groupKey: `${variant.key}/${topN}` };
      this.decodeGroups.set(attention, group);
    }
    return group;
  }

  /** A single new position after the prompt: same computation as the original decode step. */
  private isDecode(chunk: ScheduledChunk): boolean {
    return chunk.numNewTokens === 1 && chunk.startPosition >= chunk.sequence.numPromptTokens;
  }

  private endRequest(requestId: string, reason: 'stop' | 'eos' | 'length' | 'cancelled', error?: string): void {
    const state = this.requests.get(requestId);
    this.scheduler.finish(requestId);
    if (!state) return;
    this.requests.delete(requestId);
    state.finish(reason, error);
  }

  private failAll(error: unknown): void {
    const message = error instanceof Error ? error.message : String(error);
    for (const id of [...this.requests.keys()]) {
      this.scheduler.abort(id);
      this.endRequest(id, 'cancelled', `engine failure: ${message}`);
    }
  }
}
