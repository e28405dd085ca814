import { LoadSamples } from './closed-loop';
import { percentiles, Percentiles } from './latency-summary';
import { LoadOptions } from './load-options';
import { StreamStatus } from './timed-stream';

/** The result of one run, as `kcache load --json` prints it. Latencies in ms, measured by the client. */
export interface LoadReport {
  readonly target: string;
  readonly concurrency: number;
  readonly durationS: number;
  readonly wallS: number;
  readonly promptLen: number;
  readonly maxNewTokens: number;
  readonly seed: number;
  readonly numRequestsCompleted: number;
  readonly numRequestsFailed: number;
  /** Token events received, failed streams included (what the gateway's kcache_gateway_tokens_total counts). */
  readonly numTokens: number;
  /** numTokens / wallS. */
  readonly tokensPerSecond: number;
  /** From the call to the first token event, completed requests. */
  readonly ttftMs: Percentiles;
  /** Between consecutive token events of one stream. */
  readonly interTokenMs: Percentiles;
  /** From the call to the end of the stream, completed requests. */
  readonly totalMs: Percentiles;
  /** Failed requests by gRPC status name; PROTOCOL: ended OK but with an index gap or no FinalEvent. */
  readonly errors: Partial<Record<StreamStatus, number>>;
  readonly errorSamples: readonly string[];
}

export function summarizeLoad(options: LoadOptions, samples: LoadSamples): LoadReport {
  return {
    target: options.target,
    concurrency: options.concurrency,
    durationS: options.durationS,
    wallS: samples.wallS,
    promptLen: options.promptLen,
    maxNewTokens: options.maxNewTokens,
    seed: options.seed,
    numRequestsCompleted: samples.numCompleted,
    numRequestsFailed: samples.numFailed,
    numTokens: samples.numTokens,
    tokensPerSecond: samples.wallS > 0 ? samples.numTokens / samples.wallS : 0,
    ttftMs: percentiles(samples.ttftMs),
    interTokenMs: percentiles(samples.interTokenMs),
    totalMs: percentiles(samples.totalMs),
    errors: samples.errors,
    errorSamples: samples.errorSamples,
  };
}

export function formatLoadReport(r: LoadReport): string {
  const ms = (v: number | null) => (v === null ? '-' : v < 10 ? v.toFixed(2) : v.toFixed(1)).padStart(9);
  const row = (name: string, p: Percentiles) => `  ${name.padEnd(12)}${ms(p.p50)}${ms(p.p90)}${ms(p.p99)}`;
  const errors = Object.entries(r.errors).map(([name, n]) => `${name} ${n}`);
  return [
    `target ${r.target}, concurrency ${r.concurrency}, ${r.durationS} s (${r.wallS.toFixed(1)} s with the drain), ` +
      `prompt ${r.promptLen} tokens, max_new_tokens ${r.maxNewTokens}, seed ${r.seed}`,
    `requests   ${r.numRequestsCompleted} completed, ${r.numRequestsFailed} failed`,
    `tokens     ${r.numTokens} received, ${r.tokensPerSecond.toFixed(1)} tokens/s`,
    `latency ms        p50      p90      p99`,
    row('TTFT', r.ttftMs),
    row('inter-token', r.interTokenMs),
    row('total', r.totalMs),
    `errors     ${errors.length === 0 ? 'none' : errors.join(', ')}`,
    ...r.errorSamples.map((s) => `  ${s}`),
  ].join('\n');
}

export function formatProgress(p: { elapsedS: number; numCompleted: number; numFailed: number; numInFlight: number; numTokens: number }, durationS: number): string {
  const rate = p.elapsedS > 0 ? p.numTokens / p.elapsedS : 0;
  return (
    `${p.elapsedS.toFixed(0).padStart(4)}/${durationS} s  requests ${p.numCompleted} ok ${p.numFailed} failed ` +
    `${p.numInFlight} in flight  tokens ${p.numTokens} (${rate.toFixed(0)}/s)`
  );
}
