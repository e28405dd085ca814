import type { Logger } from 'pino';
import { DeliveredRun, DeliveredTokens } from '@kcache-serve/proto';

/**
 * Records acknowledged tokens in DeliveredTokens without holding up the relay. Runs wait here, merged per
 * request into one consecutive run; one write is in flight at a time and takes everything that waits, so
 * each request's list grows in index order. While Redis is away the write waits for the reconnect and
 * new runs keep merging; the next write catches up. Memory: the unwritten tokens of the requests in
 * flight, each at most its max_new_tokens.
 *
 * What waits is lost if the worker dies: a resumed attempt then starts at an earlier index and recomputes
 * the same tokens (bit-identical decode), and the gateway drops the indices it already forwarded, so the
 * client sees nothing twice.
 */
export class DeliveryRecorder {
  private waiting = new Map<string, { startIndex: number; tokenIds: number[] }>();
  private isWriting = false;
  /** The write in flight (resolved when none). */
  private currentWrite: Promise<void> = Promise.resolve();

  constructor(
    private readonly delivered: DeliveredTokens,
    private readonly log: Logger,
  ) {}

  /** Number of tokens recorded but not written yet. */
  get numWaitingTokens(): number {
    let n = 0;
    for (const run of this.waiting.values()) n += run.tokenIds.length;
    return n;
  }

  record(runs: readonly DeliveredRun[]): void {
    for (const run of runs) this.merge(run);
    if (!this.isWriting && this.waiting.size > 0) void this.writeAll();
  }

  /** Resolves once everything recorded before the call is written (or its write failed). */
  async flushed(): Promise<void> {
    while (this.isWriting) await this.currentWrite;
  }

  /** A finished request: what waits for it is dropped; its list is deleted after a write in flight that may hold it. */
  async delete(requestId: string): Promise<void> {
    this.waiting.delete(requestId);
    await this.currentWrite;
    await this.delivered.delete(requestId);
  }

  private merge(run: DeliveredRun): void {
    const waiting = this.waiting.get(run.requestId);
    if (waiting === undefined) {
      this.waiting.set(run.requestId, { startIndex: run.startIndex, tokenIds: [...run.tokenIds] });
      return;
    }
    const endIndex = waiting.startIndex + waiting.tokenIds.length;
    // Indices already waiting are skipped; a run past the end would leave a gap (the list refuses gaps too).
    if (run.startIndex > endIndex) return;
    waiting.tokenIds.push(...run.tokenIds.slice(endIndex - run.startIndex));
  }

  private async writeAll(): Promise<void> {
    this.isWriting = true;
    while (this.waiting.size > 0) {
      const runs = [...this.waiting].map(([requestId, run]) => ({ requestId, ...run }));
      this.waiting = new Map();
      this.currentWrite = this.delivered.append(runs).catch((error) => {
        // Only resumption after a crash loses precision: a retry restarts earlier and the gateway drops repeats.
        this.log.warn({ err: error }, 'could not record delivered tokens');
      });
      await this.currentWrite;
    }
    this.isWriting = false;
  }
}
