import { machineCpuSeconds } from './machine-cpu';

/**
 * Waits until the whole machine keeps fewer than maxBusyCores busy over a 2 s window (the benchmark's own
 * stack idles at a few hundredths of a core), or maxWaitS has passed. Returns the seconds waited and the
 * last window's busy cores (null where /proc/stat is unreadable: no wait).
 */
export async function waitForQuietMachine(maxBusyCores: number, maxWaitS: number): Promise<{ waitedS: number; busyCores: number | null }> {
  const startMs = performance.now();
  for (;;) {
    const before = machineCpuSeconds();
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const after = machineCpuSeconds();
    const waitedS = (performance.now() - startMs) / 1000;
    if (before === null || after === null) return { waitedS, busyCores: null };
    const busyCores = (after.busy - before.busy) / 2;
    if (busyCores < maxBusyCores || waitedS >= maxWaitS) return { waitedS: Math.round(waitedS), busyCores: Math.round(busyCores * 100) / 100 };
  }
}
