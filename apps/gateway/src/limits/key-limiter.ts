import { Principal } from '../auth/principal';
import { KeyLimits } from '../config/gateway-config';
import { RateLimitedError } from '../errors/gateway-errors';
import { TokenWindow } from './token-window';

/** What one admitted stream holds of its key's limits: tokens are charged as they stream, release once at the end. */
export interface KeyLease {
  addTokens(numTokens: number): void;
  release(): void;
}

/** Retry hint when the concurrent-stream limit is hit (when a stream ends is unknown). */
const STREAMS_RETRY_AFTER_MS = 1000;

interface KeyUsage {
  numStreams: number;
  readonly window: TokenWindow;
}

/**
 * Per-key limits of one gateway (KEY_MAX_CONCURRENT_STREAMS, KEY_MAX_TOKENS_PER_MINUTE): a request is
 * admitted while the key has a free stream and has used less than its tokens per minute (prompt tokens
 * count at admission, generated tokens as they reach the client). Beyond them: RateLimitedError with the
 * time after which a retry can succeed.
 */
export class KeyLimiter {
  private readonly usage = new Map<string, KeyUsage>();

  constructor(
    private readonly limits: KeyLimits,
    private readonly nowMs: () => number = Date.now,
  ) {}

  acquire(principal: Principal, numPromptTokens: number): KeyLease {
    const usage = this.usageOf(principal.name);
    const { maxConcurrentStreams, maxTokensPerMinute } = this.limits;
    if (maxConcurrentStreams !== null && usage.numStreams >= maxConcurrentStreams) {
      throw new RateLimitedError(`key '${principal.name}' has ${usage.numStreams} streams open, its limit`, STREAMS_RETRY_AFTER_MS);
    }
    const nowMs = this.nowMs();
    if (maxTokensPerMinute !== null && usage.window.used(nowMs) >= maxTokensPerMinute) {
      const retryAfterMs = usage.window.msUntilBelow(maxTokensPerMinute, nowMs);
      throw new RateLimitedError(`key '${principal.name}' used its ${maxTokensPerMinute} tokens per minute`, retryAfterMs);
    }
    usage.numStreams++;
    usage.window.add(numPromptTokens, nowMs);
    let isReleased = false;
    return {
      addTokens: (numTokens) => usage.window.add(numTokens, this.nowMs()),
      release: () => {
        if (isReleased) return;
        isReleased = true;
        usage.numStreams--;
        if (usage.numStreams === 0 && usage.window.used(this.nowMs()) === 0) this.usage.delete(principal.name);
      },
    };
  }

  numStreamsOf(principal: Principal): number {
    return this.usage.get(principal.name)?.numStreams ?? 0;
  }

  private usageOf(name: string): KeyUsage {
    let usage = this.usage.get(name);
    if (usage === undefined) {
      usage = { numStreams: 0, window: new TokenWindow() };
      this.usage.set(name, usage);
    }
    return usage;
  }
}
