import { readFileSync } from 'node:fs';

/** Busy and total CPU time of the whole machine so far, in seconds summed over cores (/proc/stat). */
export function machineCpuSeconds(): { busy: number; total: number } | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]; // cpu user nice system idle iowait irq softirq steal ...
    const ticks = line.trim().split(/\s+/).slice(1, 9).map(Number);
    const total = ticks.reduce((a, b) => a + b, 0);
    const idle = ticks[3] + ticks[4];
    return { busy: (total - idle) / 100, total: total / 100 };
  } catch {
    return null;
  }
}
