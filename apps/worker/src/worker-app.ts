import type { GenerationEngine } from '@kcache-serve/kcache';
import { DeliveredTokens, GENERATION_QUEUE_NAME, GenerationJobData, GenerationJobResult, RedisKeys } from '@kcache-serve/proto';
import { Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { GenerationProcessor } from './generation-processor';
import { Heartbeat } from './heartbeat';
import { MetricsServer } from './metrics/metrics-server';
import { WorkerMetrics } from './metrics/worker-metrics';
import { DeliveryRecorder } from './relay/delivery-recorder';
import { relayChannelOf } from './relay/relay-credentials';
import { RelayPool } from './relay/relay-pool';
import { WorkerConfig } from './worker-config';

/** Longest a closing worker waits to write the tokens it still holds for crash recovery. */
const RECORDER_FLUSH_TIMEOUT_MS = 2000;

/**
 * Wires one engine to the queue: a BullMQ Worker whose concurrency follows the engine's free slots,
 * cancel messages from Redis pub/sub, the relay to gateways, heartbeat and metrics.
 */
export class WorkerApp {
  private readonly keys: RedisKeys;
  private readonly redis: Redis;
  private readonly subscriber: Redis;
  private readonly relays: RelayPool;
  private readonly recorder: DeliveryRecorder;
  private readonly processor: GenerationProcessor;
  private readonly worker: Worker<GenerationJobData, GenerationJobResult>;
  private readonly metrics: WorkerMetrics;
  private readonly metricsServer: MetricsServer;
  private heartbeat: Heartbeat | undefined;
  private isClosing = false;

  /** redis: the worker's connection, already answering (main.ts waits for it); closed by close(). */
  constructor(
    private readonly config: WorkerConfig,
    private readonly engine: GenerationEngine,
    private readonly log: Logger,
    redis: Redis,
  ) {
    const keys = (this.keys = new RedisKeys(config.redisPrefix));
    this.redis = redis;
    this.subscriber = this.redis.duplicate();
    this.subscriber.on('error', () => undefined); // reconnects and resubscribes by itself; errors are logged for `redis`
    const delivered = new DeliveredTokens(this.redis, keys);
    this.recorder = new DeliveryRecorder(delivered, log);
    this.relays = new RelayPool({
      workerId: config.workerId,
      channel: relayChannelOf(config.relayTls),
      timeoutMs: config.relayTimeoutMs,
      recorder: this.recorder,
      onCancelRequested: (ids) => ids.forEach((id) => this.processor.cancel(id)),
      log,
    });
    this.processor = new GenerationProcessor(engine, this.relays, delivered, this.recorder, log);
    this.worker = new Worker<GenerationJobData, GenerationJobResult>(GENERATION_QUEUE_NAME, this.processor.process, {
      connection: this.redis,
      prefix: keys.bullPrefix,
      name: config.workerId,
      autorun: false,
      concurrency: Math.max(1, engine.numFreeSlots()),
      lockDuration: config.lockDurationMs,
      stalledInterval: config.stalledIntervalMs,
      maxStalledCount: config.maxStalledCount,
    });
    this.worker.on('active', () => this.followEngineSlots());
    this.worker.on('completed', () => this.followEngineSlots());
    this.worker.on('failed', () => this.followEngineSlots());
    this.worker.on('error', (error) => log.error({ err: error }, 'queue error'));
    this.worker.on('stalled', (jobId) => log.warn({ jobId }, 'job stalled; resuming it'));
    this.metrics = new WorkerMetrics(engine, () => this.processor.numActive);
    this.metricsServer = new MetricsServer(
      this.metrics.registry,
      () => !this.isClosing,
      () => !this.isClosing && this.redis.status === 'ready',
    );
    this.subscriber.on('message', (_channel: string, requestId: string) => {
      if (this.processor.cancel(requestId)) log.info({ requestId }, 'cancelled');
    });
    this.subscriber.subscribe(keys.cancelChannel).catch((error) => log.error({ err: error }, 'cancel subscription failed'));
  }

  async start(): Promise<void> {
    const metricsAddress = await this.metricsServer.listen(this.config.metricsHost, this.config.metricsPort);
    this.heartbeat = new Heartbeat(this.redis, this.keys, {
      workerId: this.config.workerId,
      metricsAddress,
      intervalMs: this.config.heartbeatIntervalMs,
      ttlMs: this.config.heartbeatTtlMs,
      numRunning: () => this.processor.numActive,
      onError: (error) => this.log.warn({ err: error }, 'heartbeat failed'),
    });
    await this.heartbeat.start();
    void this.worker.run().catch((error) => this.log.error({ err: error }, 'worker loop stopped'));
    this.log.info({ metricsAddress, concurrency: this.worker.concurrency }, 'worker started');
  }

  /**
   * Stops taking jobs and lets running ones finish for up to shutdownGraceMs. Returns 'abandoned' if jobs
   * are still running then: the caller must exit without closing the engine (which would end them as
   * cancelled), so that their locks lapse and other workers resume them from their delivered tokens.
   */
  async close(): Promise<'drained' | 'abandoned'> {
    if (this.isClosing) return 'drained';
    this.isClosing = true;
    await this.heartbeat?.stop().catch(() => undefined);
    this.log.info({ numActive: this.processor.numActive }, 'closing: finishing running jobs');
    const isDrained = await Promise.race([
      this.worker.close().then(() => true),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), this.config.shutdownGraceMs).unref()),
    ]);
    // What the gateways acknowledged is written before leaving (bounded: Redis may be away), so that
    // resumed attempts start where the clients are.
    await Promise.race([this.recorder.flushed(), new Promise((resolve) => setTimeout(resolve, RECORDER_FLUSH_TIMEOUT_MS).unref())]);
    if (!isDrained) {
      this.log.warn({ numActive: this.processor.numActive }, 'grace period over; other workers will resume the rest');
      return 'abandoned';
    }
    await this.engine.close();
    this.relays.close();
    this.metrics.close();
    await this.metricsServer.close();
    this.subscriber.disconnect();
    await this.redis.quit();
    return 'drained';
  }

  /** Keep fetching while the engine can admit more: concurrency = jobs running + free engine slots. */
  private followEngineSlots(): void {
    if (this.isClosing) return;
    this.worker.concurrency = Math.max(1, this.processor.numActive + this.engine.numFreeSlots());
  }
}
