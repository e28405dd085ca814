import type { Redis } from 'ioredis';
import { RedisKeys } from '@kcache-serve/proto';

/**
 * Cancel requests over Redis pub/sub (RedisKeys.cancelChannel, message = request id). Workers stop the
 * request if they run it; the gateway owning the stream removes the job if it still waits.
 */
export class CancelBus {
  private readonly subscriber: Redis;

  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
  ) {
    this.subscriber = redis.duplicate();
    this.subscriber.on('error', () => undefined); // reconnects and resubscribes by itself; errors are logged for `redis`
  }

  async subscribe(onCancel: (requestId: string) => void): Promise<void> {
    this.subscriber.on('message', (_channel: string, requestId: string) => onCancel(requestId));
    await this.subscriber.subscribe(this.keys.cancelChannel);
  }

  async publish(requestId: string): Promise<void> {
    await this.redis.publish(this.keys.cancelChannel, requestId);
  }

  close(): void {
    this.subscriber.disconnect();
  }
}
