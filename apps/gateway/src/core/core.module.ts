import { DynamicModule, Global, Inject, Injectable, Module, OnApplicationShutdown } from '@nestjs/common';
import { DeliveredTokens, GENERATION_QUEUE_NAME, GenerationJobData, GenerationJobResult, RedisKeys } from '@kcache-serve/proto';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { ApiKeyAuthenticator } from '../auth/api-key-authenticator';
import { GATEWAY_CONFIG, GatewayConfig } from '../config/gateway-config';
import { GatewayMetrics } from '../metrics/gateway-metrics';
import { CancelBus } from './cancel-bus';
import { ServedModel } from './served-model';
import { GENERATION_QUEUE, LOGGER, REDIS, SERVED_MODEL } from './tokens';

export type GenerationQueue = Queue<GenerationJobData, GenerationJobResult>;

/** Closes the shared connections last, after every other provider stopped using them. */
@Injectable()
class ConnectionsCloser implements OnApplicationShutdown {
  constructor(
    @Inject(REDIS) private readonly redis: Redis,
    @Inject(GENERATION_QUEUE) private readonly queue: GenerationQueue,
    @Inject(CancelBus) private readonly cancelBus: CancelBus,
  ) {}

  async onApplicationShutdown(): Promise<void> {
    this.cancelBus.close();
    await this.queue.close();
    await this.redis.quit();
  }
}

/** Config, model, Redis, the queue, the cancel bus and metrics: shared by every feature module. */
@Global()
@Module({})
export class CoreModule {
  /** redis: the gateway's connection, already answering (main.ts waits for it). */
  static register(config: GatewayConfig, model: ServedModel, log: Logger, redis: Redis): DynamicModule {
    const keys = new RedisKeys(config.redisPrefix);
    const providers = [
      { provide: GATEWAY_CONFIG, useValue: config },
      { provide: SERVED_MODEL, useValue: model },
      { provide: LOGGER, useValue: log },
      { provide: RedisKeys, useValue: keys },
      { provide: REDIS, useValue: redis },
      { provide: ApiKeyAuthenticator, useValue: new ApiKeyAuthenticator(config.auth.apiKeys) },
      {
        provide: GENERATION_QUEUE,
        inject: [REDIS],
        useFactory: (redis: Redis): GenerationQueue => {
          const queue: GenerationQueue = new Queue(GENERATION_QUEUE_NAME, { connection: redis, prefix: keys.bullPrefix });
          // Without a listener an 'error' event (Redis restarting) would be thrown.
          queue.on('error', (error) => log.warn({ err: error }, 'queue error'));
          return queue;
        },
      },
      { provide: CancelBus, inject: [REDIS], useFactory: (redis: Redis) => new CancelBus(redis, keys) },
      { provide: DeliveredTokens, inject: [REDIS], useFactory: (redis: Redis) => new DeliveredTokens(redis, keys) },
      {
        provide: GatewayMetrics,
        inject: [GENERATION_QUEUE, REDIS],
        useFactory: (queue: GenerationQueue, redis: Redis) =>
          new GatewayMetrics(async () => {
            // ioredis would hold the command until it reconnects.
            if (redis.status !== 'ready') throw new Error('Redis is unreachable');
            const counts = await queue.getJobCounts('wait', 'prioritized');
            return (counts.wait ?? 0) + (counts.prioritized ?? 0);
          }, model.name),
      },
      ConnectionsCloser,
    ];
    return {
      module: CoreModule,
      providers,
      exports: [GATEWAY_CONFIG, SERVED_MODEL, LOGGER, RedisKeys, REDIS, GENERATION_QUEUE, CancelBus, DeliveredTokens, GatewayMetrics, ApiKeyAuthenticator],
    };
  }
}
