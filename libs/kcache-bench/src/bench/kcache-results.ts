import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { repoRoot } from '@kcache-serve/kcache/testing';
import { describeGpu, onnxruntimeVersion } from './machine-info';

export interface KcacheMachine {
  /** "model name" of /proc/cpuinfo (os.cpus() where there is none). */
  readonly cpuModel: string;
  readonly numCores: number;
  readonly memoryBytes: number;
  readonly node: string;
  readonly onnxruntime: string;
  readonly gitCommit: string | null;
  /** The GPU and its driver, or null where there is none. */
  readonly gpu: string | null;
  /** Uncommitted changes in the working tree when the run started. */
  readonly gitDirty: boolean | null;
  /** 1-minute load average at the start and the end of the run: other work on the machine skews timings. */
  readonly loadAverageStart: number;
  loadAverageEnd: number;
}

/** Where the run happens; call at its start, then set loadAverageEnd at its end. */
export function describeKcacheMachine(): KcacheMachine {
  return {
    cpuModel: cpuModelName(),
    numCores: cpus().length,
    memoryBytes: totalmem(),
    node: process.version,
    onnxruntime: onnxruntimeVersion(),
    gitCommit: process.env.KCACHE_COMMIT || git(['rev-parse', 'HEAD']),
    gpu: describeGpu(),
    gitDirty: ((status) => (status === null ? null : status.length > 0))(git(['status', '--porcelain'])),
    loadAverageStart: loadavg()[0],
    loadAverageEnd: loadavg()[0],
  };
}

export function currentLoadAverage(): number {
  return loadavg()[0];
}

function cpuModelName(): string {
  try {
    const match = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (match) return match[1].trim();
  } catch {
    // not Linux
  }
  return cpus()[0]?.model ?? 'unknown';
}

function git(args: string[]): string | null {
  try {
    return execFileSync('git', args, { cwd: repoRoot(), stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
  } catch {
    return null;
  }
}

/** Default folder for result files: `bench/results` of the repository. */
export function defaultResultsDir(): string {
  return join(repoRoot(), 'bench', 'results');
}

/** Writes `<dir>/<name>.json`; returns the path. */
export function writeJsonResult(dir: string, name: string, body: object): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${name}.json`);
  writeFileSync(path, JSON.stringify(body, null, 2) + '\n');
  return path;
}

/** docs/benchmarks.md of the repository. */
export function benchmarksDocPath(): string {
  return join(repoRoot(), 'docs', 'benchmarks.md');
}

/**
 * Replaces the section `## <title>` of a Markdown file (up to the next `## ` heading) with `body`,
 * or appends it; creates the file with a title if missing. Other sections are left as they are.
 */
export function updateMarkdownSection(path: string, title: string, body: string): void {
  const heading = `## ${title}`;
  const text = existsSync(path) ? readFileSync(path, 'utf8') : '# Benchmarks\n';
  const lines = text.split('\n');
  const start = lines.findIndex((line) => line.trim() === heading);
  const section = [heading, '', ...body.trimEnd().split('\n'), ''];
  let next: string[];
  if (start < 0) {
    next = [...trimTrailingBlank(lines), '', ...section];
  } else {
    let end = lines.findIndex((line, i) => i > start && /^## /.test(line));
    if (end < 0) end = lines.length;
    next = [...lines.slice(0, start), ...section, ...lines.slice(end)];
  }
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, trimTrailingBlank(next).join('\n') + '\n');
}

function trimTrailingBlank(lines: string[]): string[] {
  let end = lines.length;
  while (end > 0 && lines[end - 1].trim() === '') end--;
  return lines.slice(0, end);
}

/** A GitHub-flavoured Markdown table. */
export function markdownTable(header: readonly string[], rows: ReadonlyArray<ReadonlyArray<string | number>>, alignRight: readonly boolean[] = []): string {
  const separator = header.map((_, c) => (alignRight[c] ? '---:' : '---'));
  const line = (cells: ReadonlyArray<string | number>) => `| ${cells.map(String).join(' | ')} |`;
  return [line(header), line(separator), ...rows.map(line)].join('\n');
}
