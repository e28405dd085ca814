import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';

export interface MachineInfo {
  readonly cpuModel: string;
  readonly numCores: number;
  readonly memoryGiB: number;
  readonly node: string;
  readonly onnxruntime: string;
  readonly commit: string | null;
}

/** What a benchmark result must state about where it ran. */
export function describeMachine(): MachineInfo {
  let commit: string | null = null;
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
  } catch {
    commit = null;
  }
  let onnxruntime = 'unknown';
  try {
    onnxruntime = JSON.parse(readFileSync(require.resolve('onnxruntime-node/package.json'), 'utf8')).version;
  } catch {
    onnxruntime = 'unknown';
  }
  return {
    cpuModel: cpus()[0]?.model ?? 'unknown',
    numCores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    onnxruntime,
    commit,
  };
}
