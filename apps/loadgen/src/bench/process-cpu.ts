import { readdirSync, readFileSync } from 'node:fs';
import { machineCpuSeconds } from './machine-cpu';

/** Linux's USER_HZ: /proc/<pid>/stat counts CPU time in these ticks. */
const TICKS_PER_SECOND = 100;

/** CPU seconds (user + system) a process has used so far; null when /proc cannot tell (exited, not Linux). */
export function processCpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces: fields are counted after its closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND; // utime, stime: fields 14 and 15
  } catch {
    return null;
  }
}

/**
 * Cores kept busy between start() and stop() (CPU seconds / wall seconds): by each named process, by the
 * whole machine, and by everything else on it (`other`: the machine less the named processes).
 */
export class CpuMeter {
  private readonly startCpu = new Map<string, number | null>();
  private startMachine: { busy: number } | null = null;
  private startMs = 0;

  constructor(private readonly pids: ReadonlyMap<string, number>) {}

  start(): void {
    this.startMs = performance.now();
    this.startMachine = machineCpuSeconds();
    for (const [name, pid] of this.pids) this.startCpu.set(name, processCpuSeconds(pid));
  }

  stop(): Record<string, number | null> {
    const wallS = (performance.now() - this.startMs) / 1000;
    const cores: Record<string, number | null> = {};
    let named = 0;
    for (const [name, pid] of this.pids) {
      const before = this.startCpu.get(name) ?? null;
      const after = processCpuSeconds(pid);
      cores[name] = before === null || after === null ? null : round2((after - before) / wallS);
      named += cores[name] ?? 0;
    }
    const machine = machineCpuSeconds();
    cores.machine = machine && this.startMachine ? round2((machine.busy - this.startMachine.busy) / wallS) : null;
    cores.other = cores.machine === null ? null : round2(Math.max(0, cores.machine - named));
    return cores;
  }
}

export function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

/** The pid of the redis-server listening on `port` on this machine, found by its process title; null if none. */
export function findRedisPid(port: number): number | null {
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const cmdline = readFileSync(`/proc/${name}/cmdline`, 'utf8').replaceAll('\0', ' ');
      if (/redis-server/.test(cmdline) && new RegExp(`(:|--port )${port}\\b`).test(cmdline)) return Number(name);
    } catch {
      // exited meanwhile
    }
  }
  return null;
}
