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
  /** The GPU and its driver (nvidia-smi), or null where there is none. */
  readonly gpu: string | null;
}

/** What a benchmark result must state about where it ran. */
export function describeMachine(): MachineInfo {
  // A copy of the app without git history (the GPU machine's bundle) is told its commit by KCACHE_COMMIT.
  let commit: string | null = process.env.KCACHE_COMMIT || null;
  try {
    commit ??= execFileSync('git', ['rev-parse', '--short', 'HEAD'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
  } catch {
    commit = null;
  }
  return {
    cpuModel: cpus()[0]?.model ?? 'unknown',
    numCores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    onnxruntime: onnxruntimeVersion(),
    commit,
    gpu: describeGpu(),
  };
}

/** The version of onnxruntime-node this process loads. */
export function onnxruntimeVersion(): string {
  try {
    return JSON.parse(readFileSync(require.resolve('onnxruntime-node/package.json'), 'utf8')).version;
  } catch {
    return 'unknown';
  }
}

/** The first GPU's name and driver as nvidia-smi reports them, or null where there is none. */
export function describeGpu(): string | null {
  try {
    const line = execFileSync('nvidia-smi', ['--query-gpu=name,driver_version', '--format=csv,noheader'], { stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 })
      .toString()
      .split('\n')[0]
      .trim();
    const [name, driver] = line.split(',').map((part) => part.trim());
    return name ? `${name}, driver ${driver}` : null;
  } catch {
    return null;
  }
}
