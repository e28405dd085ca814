import { loadavg } from 'node:os';

/** The 1, 5 and 15 minute load averages, as `uptime` shows them. */
export interface LoadAverage {
  readonly oneMin: number;
  readonly fiveMin: number;
  readonly fifteenMin: number;
}

export function loadAverage(): LoadAverage {
  const [oneMin, fiveMin, fifteenMin] = loadavg().map((x) => Math.round(x * 100) / 100);
  return { oneMin, fiveMin, fifteenMin };
}
