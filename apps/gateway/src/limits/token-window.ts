/**
 * Tokens counted over a sliding window (default 60 s), in one-second buckets: `used` is the sum of the
 * buckets younger than the window, so a count leaves the window at most one bucket late.
 */
export class TokenWindow {
  /** Oldest first; at most windowMs / BUCKET_MS + 1 buckets. */
  private readonly buckets: Array<{ startMs: number; numTokens: number }> = [];

  constructor(private readonly windowMs = 60_000) {}

  add(numTokens: number, nowMs: number): void {
    if (numTokens <= 0) return;
    const startMs = nowMs - (nowMs % BUCKET_MS);
    const last = this.buckets.at(-1);
    if (last !== undefined && last.startMs === startMs) last.numTokens += numTokens;
    else this.buckets.push({ startMs, numTokens });
  }

  used(nowMs: number): number {
    this.expire(nowMs);
    return this.buckets.reduce((sum, b) => sum + b.numTokens, 0);
  }

  get isEmpty(): boolean {
    return this.buckets.length === 0;
  }

  /** How long until `used` drops below `limit` (0 if it is already below). */
  msUntilBelow(limit: number, nowMs: number): number {
    let used = this.used(nowMs);
    for (const bucket of this.buckets) {
      if (used < limit) break;
      used -= bucket.numTokens;
      if (used < limit) return Math.max(0, bucket.startMs + BUCKET_MS + this.windowMs - nowMs);
    }
    return 0;
  }

  private expire(nowMs: number): void {
    while (this.buckets.length > 0 && this.buckets[0].startMs + BUCKET_MS + this.windowMs <= nowMs) this.buckets.shift();
  }
}

const BUCKET_MS = 1000;
