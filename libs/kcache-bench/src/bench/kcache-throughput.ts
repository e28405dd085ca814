import { writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { loadModel } from '@kcache-serve/kcache/dist/formats/model-source';
import { stories260kDir } from '@kcache-serve/kcache/testing';
import { benchmarksDocPath, currentLoadAverage, defaultResultsDir, describeKcacheMachine, KcacheMachine, updateMarkdownSection, writeJsonResult } from './kcache-results';
import { NATIVE_BACKEND_FLAGS, ThroughputSettings, throughputMarkdown, throughputSvg } from './kcache-throughput-report';
import { NativeBackendChoices, runThroughputBench, ThroughputModelCase, ThroughputRun } from './kcache-throughput-run';
import { ExecutionProviderName, parseExecutionProvider } from '@kcache-serve/kcache/dist/runtime/execution-provider';
import { flagValue } from './flag-value';

/**
 * `npm run bench:kcache [-- --quick] [-- --no-docs] [-- --out DIR] [-- --ep cpu|webgpu|cuda] [-- --native-backend]
 * [-- --paged-attention] [-- --host-huge-pages] [-- --cuda-graphs] [-- --contexts 2048,8192] [-- --budget-sequences N]`: decode throughput and memory of
 * KCache against full attention at a fixed device-tier budget (see kcache-throughput-run.ts).
 * Prints a Markdown report, writes bench/results/kcache-throughput[-quick].json and, for a full run,
 * the "KCache vs full" section of docs/benchmarks.md and docs/img/kcache-throughput.svg.
 */
export interface KcacheThroughputOptions extends NativeBackendChoices {
  /** Small models and contexts, few steps: a smoke test in seconds. */
  readonly quick: boolean;
  /** Folder for the JSON result. Default bench/results. */
  readonly resultsDir?: string;
  /** Update docs/benchmarks.md and its SVG. Default: true unless quick. */
  readonly writeDocs?: boolean;
  /** TopN of the kcache mode. Default 64. */
  readonly topN?: number;
  /**
   * onnxruntime execution provider. Default cpu. A GPU provider runs the ~110M model alone, at a
   * budget of 16 full-attention sequences of 2048 positions, without the step profile, and writes
   * kcache-throughput-<provider>.json (never the docs).
   */
  readonly executionProvider?: ExecutionProviderName;
  /** Run through onnxruntime's C API (the native backend; default: on for cuda). */
  readonly nativeBackend?: boolean;
  /** Contexts to measure instead of the defaults (e.g. 2048..32768 on a GPU). */
  readonly contexts?: readonly number[];
  /** The device budget: this many full-attention sequences at the model's reference context (GPU default 16 at 2048). */
  readonly budgetSequences?: number;
  readonly log?: (line: string) => void;
}

export interface KcacheThroughputResults {
  readonly benchmark: 'kcache-throughput';
  readonly date: string;
  readonly durationSeconds: number;
  readonly machine: KcacheMachine;
  readonly settings: ThroughputSettings & { readonly models: ThroughputRun['models'] };
  readonly rows: ThroughputRun['rows'];
  readonly ratios: ThroughputRun['ratios'];
  readonly unconstrained: ThroughputRun['unconstrained'];
  /** The report as printed (and as published in docs/benchmarks.md). */
  readonly markdown: string;
}

export const THROUGHPUT_SECTION_TITLE = 'KCache vs full';
const SVG_NAME = 'kcache-throughput.svg';

/** cuda's default contexts: where KCache should pay (the paper's long-context regime); the model's RoPE tables grow to cover them. */
const CUDA_CONTEXTS = [2048, 4096, 8192, 16384, 32768];

function modelCases(quick: boolean, executionProvider: ExecutionProviderName, contextsOverride?: readonly number[]): ThroughputModelCase[] {
  const withContexts = (c: ThroughputModelCase): ThroughputModelCase => (contextsOverride ? { ...c, contexts: contextsOverride } : c);
  if (executionProvider !== 'cpu') {
    const contexts = quick ? [512] : executionProvider === 'cuda' ? CUDA_CONTEXTS : [512, 1024, 2048, 4096];
    return [withContexts({ name: 'llama-110m (synthetic)', weights: loadModel('synthetic:llama-110m').weights, contexts, numFullSequencesAtReference: 16, referenceContext: 2048, numThreads: 0, numStepsPerRep: 4, numProfiledSteps: 0 })];
  }
  const stories = loadModel(stories260kDir()).weights;
  if (quick) {
    return [withContexts({ name: 'stories260K', weights: stories, contexts: [128, 256], numFullSequencesAtReference: 4, referenceContext: 256, numThreads: 1, numStepsPerRep: 4, numProfiledSteps: 2 })];
  }
  return [
    { name: 'llama-110m (synthetic)', weights: loadModel('synthetic:llama-110m').weights, contexts: [512, 1024, 2048, 4096], numFullSequencesAtReference: 4, referenceContext: 2048, numThreads: 0, numStepsPerRep: 6, numProfiledSteps: 5 },
    { name: 'stories260K', weights: stories, contexts: [512, 1024, 2048], numFullSequencesAtReference: 4, referenceContext: 2048, numThreads: 1, numStepsPerRep: 48, numProfiledSteps: 8 },
  ].map(withContexts);
}

export async function benchKcacheThroughput(options: KcacheThroughputOptions): Promise<KcacheThroughputResults> {
  const log = options.log ?? (() => {});
  const started = performance.now();
  const machine = describeKcacheMachine();
  const date = new Date().toISOString();
  const executionProvider = options.executionProvider ?? 'cpu';
  const nativeBackend = options.nativeBackend ?? executionProvider === 'cuda';
  const onCpu = executionProvider === 'cpu' && !nativeBackend;
  const backendChoices: NativeBackendChoices = Object.fromEntries(NATIVE_BACKEND_FLAGS.filter((c) => options[c.key]).map((c) => [c.key, true]));
  const settings: ThroughputSettings = { quick: options.quick, topN: options.topN ?? 64, denseLayers: 0, renormalize: false, blockSize: 16, numReps: options.quick ? 2 : onCpu ? 7 : 3, maxNumSeqs: 256, executionProvider, nativeBackend, ...backendChoices };
  // The step profile runs a second onnxruntime-node runner over the arenas: not with the native backend.
  const models = modelCases(options.quick, executionProvider, options.contexts).map((m) => ({
    ...m,
    ...(nativeBackend ? { numProfiledSteps: 0 } : {}),
    ...(options.budgetSequences ? { numFullSequencesAtReference: options.budgetSequences } : {}),
  }));
  const run = await runThroughputBench({ models, numReps: settings.numReps, topN: settings.topN, blockSize: settings.blockSize, maxNumSeqs: settings.maxNumSeqs, log, executionProvider, nativeBackend, ...backendChoices });
  machine.loadAverageEnd = currentLoadAverage();

  const writeDocs = onCpu && (options.writeDocs ?? !options.quick);
  const docPath = benchmarksDocPath();
  const svgPath = join(dirname(docPath), 'img', SVG_NAME);
  const markdown = throughputMarkdown(run, settings, machine, date, writeDocs ? relative(dirname(docPath), svgPath) : null);
  const results: KcacheThroughputResults = {
    benchmark: 'kcache-throughput',
    date,
    durationSeconds: (performance.now() - started) / 1000,
    machine,
    settings: { ...settings, models: run.models },
    rows: run.rows,
    ratios: run.ratios,
    unconstrained: run.unconstrained,
    markdown,
  };
  const name = (options.quick ? 'kcache-throughput-quick' : 'kcache-throughput') + (onCpu ? '' : executionProvider === 'cpu' ? '-native-cpu' : `-${executionProvider}`);
  writeJsonResult(options.resultsDir ?? defaultResultsDir(), name, results);
  if (writeDocs) {
    mkdirSync(dirname(svgPath), { recursive: true });
    writeFileSync(svgPath, throughputSvg(run, settings.topN));
    updateMarkdownSection(docPath, THROUGHPUT_SECTION_TITLE, markdown);
  }
  return results;
}

/** --contexts 2048,4096: positive integers. */
function parseContexts(value: string): number[] {
  const contexts = value.split(',').map(Number);
  if (contexts.length === 0 || contexts.some((c) => !Number.isInteger(c) || c < 2)) throw new RangeError(`--contexts must be a comma-separated list of integers >= 2, got '${value}'`);
  return contexts;
}

/** --budget-sequences 64: a positive integer. */
function parseBudgetSequences(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`--budget-sequences must be a positive integer, got '${value}'`);
  return n;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const quick = args.includes('--quick');
  const topN = flagValue(args, '--top-n');
  const results = await benchKcacheThroughput({
    quick,
    resultsDir: flagValue(args, '--out'),
    writeDocs: args.includes('--no-docs') ? false : undefined,
    topN: topN === undefined ? undefined : Number(topN),
    executionProvider: parseExecutionProvider(flagValue(args, '--ep') ?? 'cpu', '--ep'),
    ...(args.includes('--native-backend') ? { nativeBackend: true } : {}),
    ...Object.fromEntries(NATIVE_BACKEND_FLAGS.filter((c) => args.includes(c.flag)).map((c) => [c.key, true])),
    ...(flagValue(args, '--contexts') === undefined ? {} : { contexts: parseContexts(flagValue(args, '--contexts')!) }),
    ...(flagValue(args, '--budget-sequences') === undefined ? {} : { budgetSequences: parseBudgetSequences(flagValue(args, '--budget-sequences')!) }),
    log: (line) => process.stderr.write(`  ${line}\n`),
  });
  process.stdout.write(results.markdown);
  process.stderr.write(`bench:kcache done in ${results.durationSeconds.toFixed(0)} s\n`);
}

if (require.main === module) {
  main().catch((error) => {
    process.stderr.write(`bench:kcache failed: ${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  });
}
