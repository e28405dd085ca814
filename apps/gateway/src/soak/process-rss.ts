import { readFileSync } from 'node:fs';

/** Resident set size of a process (Linux /proc), or null when it is gone or /proc is not there. */
export function rssBytes(pid: number | undefined | null): number | null {
  if (pid === undefined || pid === null) return null;
  try {
    const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match === null ? null : Number(match[1]) * 1024;
  } catch {
    return null;
  }
}
