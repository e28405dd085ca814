import { setImmediate as yieldToEventLoop, setTimeout as sleep } from 'node:timers/promises';
import { SharedHostVBlocks } from '../host-tier/shared-host-v-blocks';
import { KvCacheManager } from '../memory/kv-cache-manager';
import { LoadedModel } from '../formats/model-source';
import { ModelConfig } from '../model/model-config';
import { ModelRunner } from '../runtime/model-runner';
import { graphVariantOf } from '../runtime/graph-variant';
import { Scheduler } from '../scheduler/scheduler';
import { Sequence } from '../scheduler/sequence';
import { Tokenizer } from '../tokenizer/tokenizer';
import { admittedLength, checkAdmission } from './admission';
import { DuplicateRequestIdError, EngineClosedError } from './engine-errors';
import { ResolvedEngineOptions } from './engine-options';
import { createEngineParts } from './engine-parts';
import { GenerationEngine } from './generation-engine';
import { GenerationListener, GenerationRequest } from './generation-request';
import { planBatches } from './plan-batches';
import { RequestState } from './request-state';
import { sampleStep, SampledTokens } from './sample-step';
import { llmEngineStats, LlmEngineStats, StepStats } from './step-stats';

/** How long a step that could schedule nothing (the shared host tier is full) waits before retrying. */
const IDLE_WAIT_MS = 2;

/**
 * Steps that ran the model yield to the event loop (I/O, timers, cancels) once this long has passed
 * since the last yield: a model run does not yield (GraphSession), and a turn of the event loop per
 * step costs a sizeable part of a small model's step.
 */
const YIELD_INTERVAL_MS = 1;

/**
 * Continuous-batching KCache engine. Each step: schedule → plan → execute → sample → commit.
 * The scheduler picks chunks under a token budget; planBatches groups decodes that share a graph
 * variant and TopN (one graph run each, one per prefill chunk); the runner executes the plan; the
 * sampled tokens are committed to the scheduler, then stop conditions checked. The loop yields to
 * the event loop between steps, at least every YIELD_INTERVAL_MS.
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
  private readonly stepStats = new StepStats();
  private lastYieldMs = 0;

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
    ({ kv: this.kv, scheduler: this.scheduler, runner: this.runner } = createEngineParts(model.weights, options, sharedHost));
  }

  /** Compiles the default attention's graphs so the first request does not pay for it. */
  async warmUp(): Promise<void> {
    await this.runner.warmUp(graphVariantOf(this.options.defaultAttention, this.modelConfig.numLayers));
  }

  submit(request: GenerationRequest, listener: GenerationListener): void {
    if (this.closing) throw new EngineClosedError();
    this.enqueue(request, listener, checkAdmission(request, this.modelConfig, this.kv.capacity));
  }

  /** submit for a request whose fields the caller already validated (ThreadedEngine, before posting it here). */
  submitValidated(request: GenerationRequest, listener: GenerationListener): void {
    if (this.closing) throw new EngineClosedError();
    this.enqueue(request, listener, admittedLength(request, this.modelConfig, this.kv.capacity));
  }

  private enqueue(request: GenerationRequest, listener: GenerationListener, maxTotalTokens: number): void {
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
  stats(): LlmEngineStats {
    return llmEngineStats({ kv: this.kv, scheduler: this.scheduler, runner: this.runner }, this.stepStats, this.sharedHost);
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
      const idle = this.stepStats.numScheduledLastStep === 0;
      if (idle && this.sharedHost) await sleep(IDLE_WAIT_MS);
      else if (idle || performance.now() - this.lastYieldMs >= YIELD_INTERVAL_MS) await yieldToEventLoop();
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

  /** One step: schedule → plan → execute → sample → commit, then stop conditions. */
  async step(): Promise<void> {
    const output = this.scheduler.schedule();
    this.stepStats.recordSchedule(output);
    for (const rejected of output.rejected) this.endRequest(rejected.requestId, 'cancelled', rejected.reason);
    const plan = planBatches(output, this.modelConfig.numLayers);
    this.stepStats.recordPlan(plan);
    const logits = await this.runner.execute(plan);
    const sampled = sampleStep(logits, this.requests, this.pendingCancels);
    this.scheduler.commit(output, sampled.tokenIds);
    this.acceptSampled(sampled);
  }

  /** Emits the committed tokens and ends the requests a stop condition hit. */
  private acceptSampled(sampled: SampledTokens): void {
    const ended: Array<{ requestId: string; reason: 'stop' | 'eos' | 'length' }> = [];
    for (const [requestId, tokenId] of sampled.tokenIds) {
      const state = this.requests.get(requestId);
      if (!state) continue;
      this.stepStats.numGeneratedTokens++;
      const decision = state.accept(tokenId, sampled.logprobs.get(requestId), sampled.topLogprobs.get(requestId));
      if (decision) ended.push({ requestId, reason: decision.reason });
    }
    for (const { requestId, reason } of ended) this.endRequest(requestId, reason);
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
