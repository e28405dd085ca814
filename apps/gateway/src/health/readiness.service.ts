import { Inject, Injectable } from '@nestjs/common';
import { RedisKeys } from '@kcache-serve/proto';
import type { Redis } from 'ioredis';
import { REDIS } from '../core/tokens';
import { GenerationService } from '../generation/generation.service';

export interface Readiness {
  readonly isReady: boolean;
  readonly isRedisReachable: boolean;
  readonly numWorkers: number;
  readonly isAccepting: boolean;
}

const REDIS_TIMEOUT_MS = 1000;

/** Ready = accepting requests, Redis answers, and at least one worker heartbeat key is alive. */
@Injectable()
export class ReadinessService {
  constructor(
    @Inject(REDIS) private readonly redis: Redis,
    @Inject(RedisKeys) private readonly keys: RedisKeys,
    @Inject(GenerationService) private readonly generation: GenerationService,
  ) {}

  async check(): Promise<Readiness> {
    const isAccepting = this.generation.isAccepting;
    try {
      const numWorkers = await withTimeout(this.countWorkers(), REDIS_TIMEOUT_MS);
      return { isReady: isAccepting && numWorkers > 0, isRedisReachable: true, numWorkers, isAccepting };
    } catch {
      return { isReady: false, isRedisReachable: false, numWorkers: 0, isAccepting };
    }
  }

  private async countWorkers(): Promise<number> {
    let cursor = '0';
    let numWorkers = 0;
    do {
      const [next, keys] = await this.redis.scan(cursor, 'MATCH', this.keys.workerHeartbeatPattern, 'COUNT', 1000);
      cursor = next;
      numWorkers += keys.length;
    } while (cursor !== '0');
    return numWorkers;
  }
}

function withTimeout<T>(promise: Promise<T>, timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer in ${timeoutMs} ms`)), timeoutMs);
    promise.then(
      (value) => (clearTimeout(timer), resolve(value)),
      (error) => (clearTimeout(timer), reject(error)),
    );
  });
}
