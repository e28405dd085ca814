import { performance } from 'node:perf_hooks';

/** One concurrency level of a closed-loop run: `concurrency` clients, each sending its next request when the last one ended. */
export interface LevelResult {
  readonly concurrency: number;
  readonly numRequests: number;
  readonly numErrors: number;
  readonly wallSeconds: number;
  readonly tokensPerSecond: number;
  readonly ttftMs: Percentiles;
  readonly interTokenMs: Percentiles;
  readonly requestMs: Percentiles;
}

export interface Percentiles {
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
}

/** What one request reported: its tokens (the callback runs as each arrives) and whether it failed. */
export type RunRequest = (i: number, onToken: () => void) => Promise<{ numTokens: number; isError: boolean }>;

export async function runClosedLoop(concurrency: number, numRequests: number, runRequest: RunRequest): Promise<LevelResult> {
  const ttftMs: number[] = [];
  const interTokenMs: number[] = [];
  const requestMs: number[] = [];
  let numTokens = 0;
  let numErrors = 0;
  let next = 0;
  const startedAt = performance.now();
  const runClient = async (): Promise<void> => {
    for (let i = next++; i < numRequests; i = next++) {
      const sentAt = performance.now();
      let lastAt = sentAt;
      const result = await runRequest(i, () => {
        const now = performance.now();
        if (lastAt === sentAt) ttftMs.push(now - sentAt);
        else interTokenMs.push(now - lastAt);
        lastAt = now;
      });
      requestMs.push(performance.now() - sentAt);
      numTokens += result.numTokens;
      if (result.isError) numErrors++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, runClient));
  const wallSeconds = (performance.now() - startedAt) / 1000;
  return {
    concurrency,
    numRequests,
    numErrors,
    wallSeconds,
    tokensPerSecond: numTokens / wallSeconds,
    ttftMs: percentiles(ttftMs),
    interTokenMs: percentiles(interTokenMs),
    requestMs: percentiles(requestMs),
  };
}

function percentiles(values: number[]): Percentiles {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]);
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99) };
}
