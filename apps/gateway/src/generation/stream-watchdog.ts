import { Inject, Injectable, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { generationJobId } from '@kcache-serve/proto';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { GATEWAY_CONFIG, GatewayConfig } from '../config/gateway-config';
import { GenerationQueue } from '../core/core.module';
import { GENERATION_QUEUE, LOGGER, REDIS } from '../core/tokens';
import { GatewayMetrics } from '../metrics/gateway-metrics';
import { GenerationFailedError, RequestLostError } from '../errors/gateway-errors';
import { StreamRegistry } from './stream-registry';

/**
 * No stream waits forever: every STREAM_CHECK_INTERVAL_MS, each queued stream that heard nothing from a
 * worker for that long is looked up in the queue. A job that is gone (Redis lost it, or its finish never
 * reached us) ends the stream UNAVAILABLE; a failed job ends it with the failure (in case the failed event
 * was missed while Redis was away). Nothing is checked while Redis is unreachable.
 */
@Injectable()
export class StreamWatchdog implements OnApplicationBootstrap, OnApplicationShutdown {
  private timer: NodeJS.Timeout | undefined;
  private isChecking = false;

  constructor(
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
    @Inject(GENERATION_QUEUE) private readonly queue: GenerationQueue,
    @Inject(REDIS) private readonly redis: Redis,
    @Inject(StreamRegistry) private readonly registry: StreamRegistry,
    @Inject(GatewayMetrics) private readonly metrics: GatewayMetrics,
    @Inject(LOGGER) private readonly log: Logger,
  ) {}

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => void this.check(), this.config.streamCheckIntervalMs);
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    clearInterval(this.timer);
  }

  async check(): Promise<void> {
    if (this.isChecking || this.redis.status !== 'ready') return;
    this.isChecking = true;
    try {
      for (const stream of this.registry.all()) {
        if (stream.ended || !stream.isQueued || stream.idleMs() < this.config.streamCheckIntervalMs) continue;
        const job = await this.queue.getJob(generationJobId(stream.requestId));
        const state = job === undefined ? 'missing' : await job.getState();
        if (state === 'missing' || state === 'unknown' || state === 'completed') {
          this.metrics.lostRequests.inc();
          this.log.warn({ requestId: stream.requestId, state }, 'stream has no job in the queue; ending it UNAVAILABLE');
          stream.fail(new RequestLostError('the request was lost by the queue (Redis restarted without its data?) before it finished; retry it'));
        } else if (state === 'failed') {
          stream.fail(new GenerationFailedError(`generation failed: ${job?.failedReason ?? 'unknown reason'}`));
        }
      }
    } catch (error) {
      this.log.warn({ err: error }, 'stream check failed; retrying next interval');
    } finally {
      this.isChecking = false;
    }
  }
}
