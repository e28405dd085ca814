import { AttentionConfig, FULL_ATTENTION } from '@kcache-serve/kcache/dist/attention/attention-config';
import { createEngine } from '@kcache-serve/kcache/dist/engine/create-engine';
import { automaticNumThreads } from '@kcache-serve/kcache/dist/engine/engine-options';
import { generate } from '@kcache-serve/kcache/dist/engine/generate';
import { loadModel, LoadedModel } from '@kcache-serve/kcache/dist/formats/model-source';
import { ExecutionProviderName, parseExecutionProvider } from '@kcache-serve/kcache/dist/runtime/execution-provider';
import { GREEDY } from '@kcache-serve/kcache/dist/sampling/sampling-params';
import { stories260kDir } from '@kcache-serve/kcache/testing';
import { formatTable, saveBenchResults } from './bench-results';
import { benchDecode } from './decode-bench';
import { flagValue } from './flag-value';
import { decodeStepBytes, gpuMemoryBytesPerSecond, rooflineFraction } from './hbm-roofline';
import { describeMachine } from './machine-info';

/**
 * `npm run bench:engine`: decode throughput of the engine on this machine.
 * - stories260K end to end (engine: scheduling, sampling, detokenizing), one stream, full and kcache;
 * - decode steps with a filled cache, batch 1 and 32, for stories260K and the ~110M synthetic model.
 * Flags: --quick (fewer steps, for smoke tests), --threads N (default: all cores),
 * --ep cpu|webgpu|cuda (onnxruntime execution provider; default cpu; see docs/gpu.md),
 * --only TEXT (only the models whose name contains TEXT, e.g. stories260K or llama-110m),
 * --native-backend (onnxruntime's C API through the kcache_ort addon; on by default for cuda),
 * --hbm-tb-per-s X (the GPU's memory bandwidth; default by the name nvidia-smi reports),
 * --contexts 512,2048 and --batch-sizes 1,32 (decode-step rows to measure instead of the defaults).
 * On a GPU provider each decode-step row gets the fraction of the HBM roofline it reaches:
 * (weight bytes + K/V bytes read from GPU memory per step) / bandwidth ÷ the measured step.
 */
const KCACHE_64: AttentionConfig = { mode: 'kcache', topN: 64, denseLayers: 0, renormalize: false };

interface Row {
  readonly model: string;
  readonly kind: 'end-to-end' | 'decode-step';
  readonly mode: string;
  readonly context: number;
  readonly batchSize: number;
  readonly tokensPerSecond: number;
  readonly msPerStep: number;
  /** GPU providers, decode steps: fraction of the HBM roofline (see hbm-roofline.ts); null where the bandwidth is unknown. */
  readonly rooflineFraction?: number | null;
  /** Decode steps: the decode attention measured, where --kernels names more than onnx's graph. */
  readonly kernel?: DecodeKernel;
}

/**
 * A decode step's attention: onnx's operators (the default graph), the addon's PagedDecodeAttention (pagedAttention),
 * or that graph run as CUDA graphs (paged-graphs: cudaGraphs, one per padded shape).
 */
type DecodeKernel = 'onnx' | 'paged' | 'paged-graphs';

function parseDecodeKernel(name: string): DecodeKernel {
  if (name !== 'onnx' && name !== 'paged' && name !== 'paged-graphs') throw new RangeError(`--kernels: each must be onnx, paged or paged-graphs, got '${name}'`);
  return name;
}

/** Tier budgets of the end-to-end rows off the CPU: a GPU provider uploads every arena (a graph input) each run, so keep them small. */
const GPU_END_TO_END_CAPACITY = { deviceCapacityBytes: 32 << 20, hostCapacityBytes: 32 << 20 };

async function endToEnd(model: LoadedModel, attention: AttentionConfig, numThreads: number, quick: boolean, executionProvider: ExecutionProviderName, nativeBackend: boolean | undefined): Promise<Row> {
  const capacity = executionProvider === 'cpu' ? {} : GPU_END_TO_END_CAPACITY;
  const engine = await createEngine({ model: model.name, numThreads, defaultAttention: attention, executionProvider, ...(nativeBackend === undefined ? {} : { nativeBackend }), ...capacity }, model);
  const prompt = model.tokenizer.encode('Once upon a time', { bos: true });
  const request = { promptTokenIds: prompt, maxNewTokens: quick ? 50 : 500, sampling: GREEDY, stopTokenIds: [], stopStrings: [], attention, priority: 0, logprobs: false };
  await generate(engine, { ...request, requestId: 'warm-up', maxNewTokens: 20 });
  let bestMs = Infinity;
  let numTokens = 0;
  for (let rep = 0; rep < (quick ? 1 : 3); rep++) {
    const start = performance.now();
    const result = await generate(engine, { ...request, requestId: `run-${rep}` });
    bestMs = Math.min(bestMs, performance.now() - start);
    numTokens = result.tokenIds.length;
  }
  await engine.close();
  return { model: 'stories260K', kind: 'end-to-end', mode: attention.mode, context: prompt.length + numTokens, batchSize: 1, tokensPerSecond: (numTokens / bestMs) * 1000, msPerStep: bestMs / numTokens };
}

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const threadsFlag = process.argv.indexOf('--threads');
  const numThreads = threadsFlag >= 0 ? Number(process.argv[threadsFlag + 1]) : 0;
  const epFlag = process.argv.indexOf('--ep');
  const executionProvider = epFlag >= 0 ? parseExecutionProvider(process.argv[epFlag + 1] ?? '', '--ep') : 'cpu';
  const onlyFlag = process.argv.indexOf('--only');
  const only = onlyFlag >= 0 ? (process.argv[onlyFlag + 1] ?? '') : '';
  const nativeBackend = process.argv.includes('--native-backend') ? true : undefined;
  // --kernels onnx,paged: decode steps with each decode attention (paged: the addon's PagedDecodeAttention), in this one run.
  const kernels = (flagValue(process.argv, '--kernels') ?? 'onnx').split(',').map(parseDecodeKernel);
  const failures: Array<{ model: string; mode: string; context: number; batchSize: number; kernel: DecodeKernel; error: string }> = [];
  const contextsFlag = listFlag('--contexts');
  const batchSizesFlag = listFlag('--batch-sizes');
  const bandwidth = executionProvider === 'cpu' ? null : gpuMemoryBytesPerSecond(flagValue(process.argv, '--hbm-tb-per-s'));
  const rows: Row[] = [];
  const stories = loadModel(stories260kDir());
  if ('stories260K'.includes(only)) {
    for (const attention of [FULL_ATTENTION, KCACHE_64]) rows.push(await endToEnd(stories, attention, numThreads, quick, executionProvider, nativeBackend));
  }

  const models: Array<{ name: string; spec: string; contexts: number[] }> = [
    { name: 'stories260K', spec: stories260kDir(), contexts: [256] },
    { name: 'llama-110m (synthetic)', spec: 'synthetic:llama-110m', contexts: quick ? [512] : [512, 2048] },
  ];
  for (const m of models.filter((m) => m.name.includes(only))) {
    const weights = m.spec === stories260kDir() ? stories.weights : loadModel(m.spec).weights;
    const isLarge = weights.config.dim >= 512;
    for (const context of contextsFlag ?? m.contexts) {
      for (const batchSize of batchSizesFlag ?? (quick && isLarge ? [1] : [1, 32])) {
        for (const kernel of kernels) for (const attention of [FULL_ATTENTION, KCACHE_64]) {
          const numSteps = quick ? 3 : isLarge ? (batchSize === 1 ? 40 : 5) : batchSize === 1 ? 2000 : 300;
          const threads = numThreads || automaticNumThreads(weights.config);
          const paged = kernel === 'onnx' ? {} : { pagedAttention: true, nativeBackend: true, ...(kernel === 'paged-graphs' ? { cudaGraphs: true } : {}) };
          let r: Awaited<ReturnType<typeof benchDecode>>;
          try {
            r = await benchDecode(weights, { attention, context, batchSize, numSteps, numThreads: threads, blockSize: 16, executionProvider, ...(nativeBackend === undefined ? {} : { nativeBackend }), ...paged });
          } catch (error) {
            // A kernel that cannot run here (CUDA graphs the provider refuses, say) is reported, and the other rows still run.
            const reason = error instanceof Error ? error.message : String(error);
            failures.push({ model: m.name, mode: attention.mode, context, batchSize, kernel, error: reason });
            process.stderr.write(`  ${m.name} ${attention.mode} (${kernel}) ctx ${context} batch ${batchSize}: FAILED: ${reason}\n`);
            continue;
          }
          const fraction = bandwidth === null ? null : rooflineFraction(decodeStepBytes(weights.config, attention, context, batchSize), bandwidth, r.msPerStep);
          rows.push({ model: m.name, kind: 'decode-step', mode: attention.mode, context, batchSize, ...r, ...(executionProvider === 'cpu' ? {} : { rooflineFraction: fraction }), ...(kernels.length > 1 || kernel !== 'onnx' ? { kernel } : {}) });
          const roofline = fraction === null ? '' : `, ${(100 * fraction).toFixed(1)}% of the HBM roofline`;
          process.stderr.write(`  ${m.name} ${attention.mode}${kernel === 'onnx' ? '' : ` (${kernel})`} ctx ${context} batch ${batchSize}: ${r.tokensPerSecond.toFixed(1)} tok/s${roofline}\n`);
        }
      }
    }
  }
  const onGpu = executionProvider !== 'cpu';
  const table = formatTable(
    ['model', 'measure', 'attention', 'context', 'batch', 'tokens/s', 'ms/step', ...(onGpu ? ['of HBM roofline'] : [])],
    rows.map((r) => [
      r.model,
      r.kind,
      (r.mode === 'kcache' ? 'kcache N=64' : 'full') + (r.kernel && r.kernel !== 'onnx' ? ` (${r.kernel} kernel)` : ''),
      r.context,
      r.batchSize,
      r.tokensPerSecond.toFixed(1),
      r.msPerStep.toFixed(3),
      ...(onGpu ? [r.rooflineFraction == null ? '-' : `${(100 * r.rooflineFraction).toFixed(1)}%`] : []),
    ]),
  );
  process.stdout.write(table + '\n');
  const machine = describeMachine();
  process.stdout.write(`on ${machine.gpu ? `${machine.gpu} (${executionProvider}), ` : ''}${machine.cpuModel}, ${machine.numCores} cores, commit ${machine.commit ?? 'unknown'}\n`);
  const name = (quick ? 'engine-quick' : 'engine') + (executionProvider === 'cpu' ? (nativeBackend ? '-native-cpu' : '') : `-${executionProvider}`);
  const settings = { numThreads, quick, kcacheTopN: 64, blockSize: 16, executionProvider, ...(nativeBackend ? { nativeBackend } : {}), ...(kernels.some((k) => k !== 'onnx') ? { decodeKernels: kernels } : {}), ...(bandwidth ? { hbmBytesPerSecond: bandwidth } : {}), ...(only ? { only } : {}) };
  const path = saveBenchResults(name, { ...settings, ...(failures.length > 0 ? { failures } : {}) }, rows);
  for (const f of failures) process.stdout.write(`failed: ${f.model} ${f.mode} (${f.kernel}) ctx ${f.context} batch ${f.batchSize}: ${f.error}\n`);
  if (failures.length > 0) process.exitCode = 1;
  process.stdout.write(`saved ${path}\n`);
}

/** `--name 1,2,3` as positive integers, or undefined when the flag is absent. */
function listFlag(name: string): number[] | undefined {
  const value = flagValue(process.argv, name);
  if (value === undefined) return undefined;
  const list = value.split(',').map(Number);
  if (list.some((n) => !Number.isInteger(n) || n < 1)) throw new RangeError(`${name} must be a comma-separated list of positive integers, got '${value}'`);
  return list;
}

main().catch((error) => {
  process.stderr.write(`bench:engine failed: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
