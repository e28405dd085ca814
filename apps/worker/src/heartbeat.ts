import type { Redis } from 'ioredis';
import { RedisKeys, WorkerHeartbeat } from '@kcache-serve/proto';

/** Keeps RedisKeys.workerHeartbeat(workerId) alive (TTL) while the worker takes jobs; see RedisKeys. */
export class Heartbeat {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly options: {
      readonly workerId: string;
      readonly metricsAddress: string;
      readonly intervalMs: number;
      readonly ttlMs: number;
      readonly numRunning: () => number;
      readonly onError: (error: unknown) => void;
    },
  ) {}

  async start(): Promise<void> {
    await this.beat();
    this.timer = setInterval(() => this.beat().catch(this.options.onError), this.options.intervalMs);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.redis.del(this.keys.workerHeartbeat(this.options.workerId));
  }

  private async beat(): Promise<void> {
    const heartbeat: WorkerHeartbeat = {
      workerId: this.options.workerId,
      metricsAddress: this.options.metricsAddress,
      numRunning: this.options.numRunning(),
      unixMs: Date.now(),
    };
    await this.redis.set(this.keys.workerHeartbeat(this.options.workerId), JSON.stringify(heartbeat), 'PX', this.options.ttlMs);
  }
}
