import { Inject, Injectable, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { GENERATION_QUEUE_NAME, RedisKeys, requestIdOfJobId } from '@kcache-serve/proto';
import { QueueEvents } from 'bullmq';
import type { Redis } from 'ioredis';
import { REDIS } from '../core/tokens';
import { GenerationFailedError } from '../errors/gateway-errors';
import { StreamRegistry } from './stream-registry';

/**
 * Ends our streams whose job failed without a worker saying so over the relay (e.g. BullMQ gave up on a
 * job that stalled more than maxStalledCount times). Streams already ended ignore it.
 */
@Injectable()
export class JobFailureListener implements OnModuleInit, OnApplicationShutdown {
  private events: QueueEvents | null = null;

  constructor(
    @Inject(REDIS) private readonly redis: Redis,
    @Inject(RedisKeys) private readonly keys: RedisKeys,
    @Inject(StreamRegistry) private readonly registry: StreamRegistry,
  ) {}

  async onModuleInit(): Promise<void> {
    this.events = new QueueEvents(GENERATION_QUEUE_NAME, { connection: this.redis.duplicate(), prefix: this.keys.bullPrefix });
    this.events.on('error', () => undefined); // reconnects by itself; the connection's errors are logged in main.ts
    this.events.on('failed', ({ jobId, failedReason }) => {
      this.registry.get(requestIdOfJobId(jobId))?.fail(new GenerationFailedError(`generation failed: ${failedReason}`));
    });
    await this.events.waitUntilReady();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.events?.close();
  }
}
