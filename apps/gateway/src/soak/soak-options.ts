import { parseArgs } from 'node:util';

/** One soak run. Durations in ms. */
export interface SoakOptions {
  readonly durationMs: number;
  /** Closed-loop clients, each with one stream open at a time. */
  readonly numClients: number;
  readonly numWorkers: number;
  /** A worker is restarted this often (alternately SIGTERM with a grace period and SIGKILL). */
  readonly restartEveryMs: number;
  /** Share of requests cancelled with the Cancel RPC, and share abandoned by the client, mid-stream. */
  readonly cancelFraction: number;
  readonly disconnectFraction: number;
  /** RSS "start" is sampled after this long, once the processes have warmed up. */
  readonly warmupMs: number;
  /** Every Nth completed request is replayed on an in-process engine and must match token for token. */
  readonly verifyEvery: number;
  /** Exit non-zero when the gateway's RSS grew more than this (percent, after warm-up to end). */
  readonly maxRssGrowthPercent: number;
  readonly model: string | undefined;
  readonly reportPath: string | undefined;
}

export const SOAK_USAGE = `usage: npm run soak -- [--duration 10m] [--clients 6] [--workers 2] [--restart-every 60s]
       [--cancel-fraction 0.1] [--disconnect-fraction 0.05] [--warmup duration/10, 5s..60s] [--verify-every 10]
       [--max-rss-growth 5] [--model SPEC] [--report FILE.json]
Durations: 90 (seconds), 90s, 10m, 1h.`;

export class SoakUsageError extends Error {
  override readonly name = 'SoakUsageError';
}

/** "90", "90s", "10m", "1h", "500ms" → ms. */
export function parseDurationMs(text: string, flag: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (match === null) throw new SoakUsageError(`--${flag} expects a duration like 90s, 10m or 1h, got '${text}'`);
  const unitMs = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[match[2] ?? 's'] ?? 1000;
  return Math.round(Number(match[1]) * unitMs);
}

function parseNumber(text: string | undefined, flag: string, fallback: number, min: number, max = Infinity): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value) || value < min || value > max) throw new SoakUsageError(`--${flag} expects a number in [${min}, ${max}], got '${text}'`);
  return value;
}

export function parseSoakOptions(argv: readonly string[]): SoakOptions {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      duration: { type: 'string' },
      clients: { type: 'string' },
      workers: { type: 'string' },
      'restart-every': { type: 'string' },
      'cancel-fraction': { type: 'string' },
      'disconnect-fraction': { type: 'string' },
      warmup: { type: 'string' },
      'verify-every': { type: 'string' },
      'max-rss-growth': { type: 'string' },
      model: { type: 'string' },
      report: { type: 'string' },
    },
    strict: true,
  });
  const durationMs = parseDurationMs(values.duration ?? '10m', 'duration');
  return {
    durationMs,
    numClients: Math.trunc(parseNumber(values.clients, 'clients', 6, 1, 256)),
    numWorkers: Math.trunc(parseNumber(values.workers, 'workers', 2, 1, 16)),
    restartEveryMs: parseDurationMs(values['restart-every'] ?? '60s', 'restart-every'),
    cancelFraction: parseNumber(values['cancel-fraction'], 'cancel-fraction', 0.1, 0, 1),
    disconnectFraction: parseNumber(values['disconnect-fraction'], 'disconnect-fraction', 0.05, 0, 1),
    warmupMs: values.warmup === undefined ? Math.min(60_000, Math.max(5_000, durationMs / 10)) : parseDurationMs(values.warmup, 'warmup'),
    verifyEvery: Math.trunc(parseNumber(values['verify-every'], 'verify-every', 10, 1)),
    maxRssGrowthPercent: parseNumber(values['max-rss-growth'], 'max-rss-growth', 5, 0),
    model: values.model,
    reportPath: values.report,
  };
}
