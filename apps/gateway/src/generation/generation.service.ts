import { randomUUID } from 'node:crypto';
import { BeforeApplicationShutdown, Inject, Injectable, OnModuleInit } from '@nestjs/common';
import {
  DeliveredTokens,
  FinishReason,
  GENERATION_JOB_NAME,
  GenerateRequest,
  GenerationJobData,
  GenerationJobRequest,
  generationJobId,
  newRelayCapability,
  relayCapabilityBytes,
  toQueuePriority,
} from '@kcache-serve/proto';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { Principal } from '../auth/principal';
import { GATEWAY_CONFIG, GatewayConfig } from '../config/gateway-config';
import { CancelBus } from '../core/cancel-bus';
import { GenerationQueue } from '../core/core.module';
import { GENERATION_QUEUE, LOGGER, REDIS } from '../core/tokens';
import { GatewayMetrics } from '../metrics/gateway-metrics';
import { KeyLimiter } from '../limits/key-limiter';
import { QueueFullError, QueueUnavailableError, DuplicateRequestIdError, ShuttingDownError } from '../errors/gateway-errors';
import { RelayAddress } from './relay-address';
import { RequestStream, StreamListener } from './request-stream';
import { RequestValidator } from './request-validator';
import { StreamRegistry } from './stream-registry';

const DRAIN_POLL_MS = 50;
/** Longest a request waits for Redis to queue it before it fails UNAVAILABLE. */
const ADMISSION_TIMEOUT_MS = 5000;
/** Longest a new submission waits for the worker to complete an earlier job of its id that already finished. */
const FINISHED_JOB_WAIT_MS = 1000;
const FINISHED_JOB_POLL_MS = 5;
/** Longest a Cancel waits for Redis (which may have just gone away) before it fails UNAVAILABLE. */
const REDIS_CALL_TIMEOUT_MS = 2000;

/**
 * Transport-independent request handling: validate, queue as a BullMQ job, stream the worker's events
 * back, cancel. Used by the gRPC Generation service and by POST /v1/completions and /v1/chat/completions.
 */
@Injectable()
export class GenerationService implements OnModuleInit, BeforeApplicationShutdown {
  private isShuttingDown = false;
  /** Admission (bound check + add) runs one request at a time, so one gateway never overshoots the bound. */
  private admission: Promise<unknown> = Promise.resolve();

  constructor(
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
    @Inject(GENERATION_QUEUE) private readonly queue: GenerationQueue,
    @Inject(REDIS) private readonly redis: Redis,
    @Inject(CancelBus) private readonly cancelBus: CancelBus,
    @Inject(GatewayMetrics) private readonly metrics: GatewayMetrics,
    @Inject(LOGGER) private readonly log: Logger,
    @Inject(RequestValidator) private readonly validator: RequestValidator,
    @Inject(StreamRegistry) private readonly registry: StreamRegistry,
    @Inject(RelayAddress) private readonly relayAddress: RelayAddress,
    @Inject(KeyLimiter) private readonly keyLimiter: KeyLimiter,
    @Inject(DeliveredTokens) private readonly delivered: DeliveredTokens,
  ) {}

  get isAccepting(): boolean {
    return !this.isShuttingDown;
  }

  async onModuleInit(): Promise<void> {
    await this.cancelBus.subscribe((requestId) => this.onCancelMessage(requestId));
  }

  /**
   * Validates and applies defaults; throws InvalidArgumentError. Synchronous, so the id is known at once.
   * Logs the request's shape at debug level; its content (prompt, messages, stop strings) only with LOG_REQUEST_CONTENT.
   */
  prepare(input: GenerateRequest, principal: Principal): GenerationJobRequest {
    const request = this.validator.toJobRequest(input);
    if (this.log.isLevelEnabled('debug')) {
      const content = this.config.isRequestContentLogged ? { prompt: input.prompt, messages: input.messages, promptTokenIds: request.promptTokenIds, stop: request.stopStrings } : {};
      this.log.debug(
        { requestId: request.requestId, key: principal.name, numPromptTokens: request.promptTokenIds.length, maxNewTokens: request.maxNewTokens, content },
        'request validated',
      );
    }
    return request;
  }

  /**
   * Opens the stream and queues the job. `listener` may be called before this resolves; `onQueued` is
   * called once the job is in the queue (from then on Cancel on any gateway finds it), before this
   * resolves. Throws ShuttingDownError, DuplicateRequestIdError, RateLimitedError, QueueFullError or
   * QueueUnavailableError, with nothing left queued.
   */
  async start(
    request: GenerationJobRequest,
    principal: Principal,
    listener: StreamListener,
    deadlineUnixMs: number | null,
    onQueued: () => void = () => undefined,
  ): Promise<void> {
    if (this.isShuttingDown) throw new ShuttingDownError();
    const requestId = request.requestId;
    if (this.registry.get(requestId) !== undefined) throw new DuplicateRequestIdError(requestId);
    const lease = this.keyLimiter.acquire(principal, request.promptTokenIds.length);
    const countingListener: StreamListener = (event) => {
      if (event.$case === 'token') lease.addTokens(1);
      listener(event);
    };
    const onEnd = (s: RequestStream): void => {
      this.registry.delete(s);
      lease.release();
    };
    const relayCapability = newRelayCapability();
    const stream = new RequestStream(requestId, request.promptTokenIds.length, relayCapabilityBytes(relayCapability), countingListener, this.metrics, onEnd);
    this.registry.add(stream);
    try {
      await this.admit(request, relayCapability, deadlineUnixMs);
    } catch (error) {
      stream.abandon();
      throw error;
    }
    stream.markQueued();
    if (stream.isAbandoned) return this.stopJob(requestId); // the client left while the job was being queued
    onQueued();
    // Cancel called while the job was being queued: now there is a job to remove or a worker to stop.
    if (stream.isCancelRequested) await this.cancelBus.publish(requestId);
  }

  /**
   * Cancel RPC: true if the request was in flight (on any gateway); its stream ends CANCELLED. A stream
   * of this gateway wins whatever its state: before its job is queued (applied once it is), queued,
   * running, or in between (the relay's reply then stops the worker). Throws QueueUnavailableError at
   * once while Redis is unreachable.
   */
  async cancel(requestId: string): Promise<boolean> {
    if (this.redis.status !== 'ready') throw new QueueUnavailableError('the queue (Redis) is unreachable; nothing was cancelled, retry later');
    const local = this.registry.get(requestId);
    if (local !== undefined) {
      local.isCancelRequested = true;
      if (local.isQueued) await this.withRedisTimeout(this.cancelBus.publish(requestId), 'nothing was cancelled');
      return true;
    }
    return this.withRedisTimeout(this.cancelQueued(requestId), 'nothing was cancelled');
  }

  /** The client went away (disconnect, deadline): stop the work, tell the client nothing. */
  async abandon(requestId: string): Promise<void> {
    const stream = this.registry.get(requestId);
    if (stream === undefined) return;
    stream.abandon();
    await this.stopJob(requestId);
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.isShuttingDown = true;
    const giveUpAt = Date.now() + this.config.shutdownGraceMs;
    this.log.info({ numStreams: this.registry.size }, 'draining client streams');
    while (this.registry.size > 0 && Date.now() < giveUpAt) await new Promise((r) => setTimeout(r, DRAIN_POLL_MS));
    for (const stream of this.registry.all()) {
      stream.fail(new ShuttingDownError());
      await this.stopJob(stream.requestId).catch(() => undefined);
    }
  }

  /** One at a time; fails fast (QueueUnavailableError) while Redis is unreachable instead of waiting for it. */
  private admit(request: GenerationJobRequest, relayCapability: string, deadlineUnixMs: number | null): Promise<void> {
    const run = this.admission.then(() => {
      if (this.redis.status !== 'ready') throw new QueueUnavailableError('the queue (Redis) is unreachable; nothing was queued, retry later');
      return withTimeout(this.enqueue(request, relayCapability, deadlineUnixMs), ADMISSION_TIMEOUT_MS, () => new QueueUnavailableError(`the queue (Redis) did not answer within ${ADMISSION_TIMEOUT_MS} ms; retry later`));
    });
    this.admission = run.catch(() => undefined);
    return run;
  }

  private async enqueue(request: GenerationJobRequest, relayCapability: string, deadlineUnixMs: number | null): Promise<void> {
    const counts = await this.queue.getJobCounts('wait', 'prioritized');
    const numQueued = (counts.wait ?? 0) + (counts.prioritized ?? 0);
    if (numQueued >= this.config.maxQueuedRequests) throw new QueueFullError(numQueued);
    const jobId = generationJobId(request.requestId);
    const existing = await this.queue.getJob(jobId);
    if (existing !== undefined) {
      const state = await this.settledStateOf(existing);
      if (state !== 'completed' && state !== 'failed' && state !== 'unknown') throw new DuplicateRequestIdError(request.requestId);
      if (state !== 'unknown') await existing.remove();
      await this.delivered.delete(request.requestId);
    }
    const data: GenerationJobData = {
      request,
      relayAddress: this.relayAddress.value,
      submissionId: randomUUID(),
      relayCapability,
      deadlineUnixMs,
    };
    await this.queue.add(GENERATION_JOB_NAME, data, {
      jobId,
      priority: toQueuePriority(request.priority),
      removeOnComplete: true,
      removeOnFail: { age: 3600 },
      attempts: 1,
    });
    // Another gateway may have queued the same id between getJob and add; BullMQ then kept its job.
    const stored = await this.queue.getJob(jobId);
    if (stored !== undefined && stored.data.submissionId !== data.submissionId) throw new DuplicateRequestIdError(request.requestId);
  }

  /**
   * The state of an earlier job with the same id. One whose stream here already got the worker's finish
   * is waited for (up to FINISHED_JOB_WAIT_MS): the worker completes it moments after that finish, and a
   * client reusing the id on its final event must not be told the id is in flight. 'unknown': gone.
   */
  private async settledStateOf(job: NonNullable<Awaited<ReturnType<GenerationQueue['getJob']>>>): Promise<string> {
    let state: string = await job.getState();
    if (state !== 'active' || !this.registry.wasEndedByWorker(job.data.relayCapability)) return state;
    const giveUpAt = Date.now() + FINISHED_JOB_WAIT_MS;
    while (state === 'active' && Date.now() < giveUpAt) {
      await new Promise((resolve) => setTimeout(resolve, FINISHED_JOB_POLL_MS));
      state = await job.getState();
    }
    return state;
  }

  /** A request of another gateway (or one whose stream is gone): found by its job. */
  private async cancelQueued(requestId: string): Promise<boolean> {
    const job = await this.queue.getJob(generationJobId(requestId));
    if (job === undefined) return false;
    const state = await job.getState();
    if (state === 'completed' || state === 'failed' || state === 'unknown') return false;
    await this.cancelBus.publish(requestId);
    return true;
  }

  private withRedisTimeout<T>(promise: Promise<T>, consequence: string): Promise<T> {
    return withTimeout(promise, REDIS_CALL_TIMEOUT_MS, () => new QueueUnavailableError(`the queue (Redis) did not answer within ${REDIS_CALL_TIMEOUT_MS} ms; ${consequence}, retry later`));
  }

  /**
   * Cancel published by any gateway: if the stream is ours, drop a still-waiting job and end the stream.
   * A stream whose job is not queued yet only remembers it; start() applies it once the job is queued.
   */
  private onCancelMessage(requestId: string): void {
    const stream = this.registry.get(requestId);
    if (stream === undefined) return;
    stream.isCancelRequested = true;
    if (!stream.isQueued) return;
    this.removeWaitingJob(requestId).then(
      (isRemoved) => isRemoved && stream.finish(FinishReason.FINISH_REASON_CANCELLED),
      (error) => this.log.warn({ err: error, requestId }, 'could not remove cancelled job'),
    );
  }

  /** Removes the job if no worker holds it, else asks the workers to cancel it. */
  private async stopJob(requestId: string): Promise<void> {
    if (!(await this.removeWaitingJob(requestId))) await this.cancelBus.publish(requestId);
  }

  /** true if the job is gone now (removed here, or never there); false if a worker holds it. */
  private async removeWaitingJob(requestId: string): Promise<boolean> {
    const job = await this.queue.getJob(generationJobId(requestId));
    if (job === undefined) return true;
    if ((await job.getState()) === 'active') return false;
    try {
      await job.remove();
      await this.delivered.delete(requestId);
      return true;
    } catch {
      return false; // a worker took it meanwhile (its lock blocks removal)
    }
  }
}

function withTimeout<T>(promise: Promise<T>, timeoutMs: number, onTimeout: () => Error): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(onTimeout()), timeoutMs);
    promise.then(
      (value) => (clearTimeout(timer), resolve(value)),
      (error) => (clearTimeout(timer), reject(error)),
    );
  });
}
