/**
 * Redis names shared by gateways and workers, all under one prefix (default DEFAULT_REDIS_PREFIX) so that
 * several deployments or tests can share a Redis.
 *
 * - BullMQ keys: `${prefix}:${GENERATION_QUEUE_NAME}:*` (BullMQ's `prefix` option = `bullPrefix`).
 * - workerHeartbeat(workerId): string, JSON WorkerHeartbeat, set with a TTL by each live worker;
 *   a gateway is ready when at least one exists (scan workerHeartbeatPattern).
 * - cancelChannel: pub/sub; message = request id. Every worker cancels that request if it runs it.
 * - deliveredTokens(requestId): list of the token ids the owning gateway has acknowledged, index order;
 *   written only by the worker's appendDeliveredTokens script; a retried job resumes from it.
 */
export const DEFAULT_REDIS_PREFIX = 'kcache';

export class RedisKeys {
  constructor(readonly prefix: string = DEFAULT_REDIS_PREFIX) {}

  /** The `prefix` option of BullMQ's Queue and Worker. */
  get bullPrefix(): string {
    return this.prefix;
  }

  get cancelChannel(): string {
    return `${this.prefix}:cancel`;
  }

  get workerHeartbeatPattern(): string {
    return `${this.prefix}:worker:*`;
  }

  workerHeartbeat(workerId: string): string {
    return `${this.prefix}:worker:${workerId}`;
  }

  deliveredTokens(requestId: string): string {
    return `${this.prefix}:delivered:${requestId}`;
  }
}

export interface WorkerHeartbeat {
  readonly workerId: string;
  /** host:port of the worker's HTTP metrics endpoint. */
  readonly metricsAddress: string;
  readonly numRunning: number;
  readonly unixMs: number;
}
