import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  AttentionConfig,
  automaticNumThreads,
  createEngine,
  FULL_ATTENTION,
  GenerationRequest,
  loadModel,
  resolveModelSpec,
} from '@kcache-serve/kcache';
import { describeMachine } from '@kcache-serve/kcache-bench';
import { repoRoot, stories260kDir } from '@kcache-serve/kcache/testing';
import { AttentionMode, GenerateRequest } from '@kcache-serve/proto';
import { collectStream, fetchMetric, ServingCluster } from '@kcache-serve/proto/dist/testing';
import { parseWorkerConfig } from '../worker-config';
import { directLevel } from './direct-level';
import { LevelResult, runClosedLoop } from './latency-levels';

/**
 * Serving benchmark: a real Redis, gateway and workers (child processes) on this machine, driven over
 * gRPC by closed-loop clients at each concurrency level; and the same workload submitted straight to an
 * in-process engine configured like a worker (with one worker, the ratio is the serving path's overhead).
 *   in:  flags (see USAGE); REDIS_URL to use an existing Redis
 *   out: a table on stderr, JSON (with the machine it ran on) in bench/results/serving.json (or --out FILE)
 */
const USAGE = `bench-serving [--model SPEC] [--workers N] [--concurrency 1,8,32,64] [--requests N]
                    [--max-new-tokens N] [--attention full|kcache] [--top-n N] [--threads N] [--out FILE]
  --threads: onnxruntime threads of the direct engine and of each worker (default: NUM_THREADS, else the
             engine's automatic choice: 1 for small models, else one per core)`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: 'string', default: stories260kDir() },
      workers: { type: 'string', default: '1' },
      concurrency: { type: 'string', default: '1,8,32,64' },
      requests: { type: 'string', default: '64' },
      'max-new-tokens': { type: 'string', default: '128' },
      attention: { type: 'string', default: 'full' },
      'top-n': { type: 'string', default: '32' },
      threads: { type: 'string', default: process.env.NUM_THREADS ?? '0' },
      out: { type: 'string', default: join(repoRoot(), 'bench', 'results', 'serving.json') },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) return void console.error(USAGE);
  const levels = values.concurrency.split(',').map(Number);
  const numRequests = Number(values.requests);
  const maxNewTokens = Number(values['max-new-tokens']);
  const topN = Number(values['top-n']);
  const isKcache = values.attention === 'kcache';
  // One workload, written once for each path: a public API request and the engine request it becomes.
  const prompt = 'Once upon a time';
  const temperature = 0.8;
  const request = (i: number): Partial<GenerateRequest> => ({
    prompt,
    maxNewTokens,
    sampling: { temperature, seed: i },
    attention: isKcache ? { mode: AttentionMode.ATTENTION_MODE_KCACHE, topN } : { mode: AttentionMode.ATTENTION_MODE_FULL },
  });
  const engineAttention: AttentionConfig = isKcache ? { mode: 'kcache', topN, denseLayers: 0, renormalize: false } : FULL_ATTENTION;

  // Direct first, alone on the machine; then the serving path with the same per-worker engine config.
  const model = loadModel(await resolveModelSpec(values.model));
  const numThreads = Number(values.threads) || automaticNumThreads(model.weights.config) || availableParallelism();
  const engineOptions = { ...parseWorkerConfig(process.env).engine, numThreads };
  const engine = await createEngine({ model: model.name, ...engineOptions }, model);
  const direct: LevelResult[] = [];
  try {
    for (const concurrency of levels) {
      const engineRequest = (i: number): GenerationRequest => ({
        requestId: `direct-${concurrency}-${i}`,
        promptTokenIds: model.tokenizer.encode(prompt),
        maxNewTokens,
        sampling: { temperature, topK: 0, topP: 1, seed: i },
        stopTokenIds: [],
        stopStrings: [],
        attention: engineAttention,
        priority: 0,
        logprobs: false,
      });
      direct.push(await directLevel(engine, concurrency, numRequests, engineRequest));
      console.error(describeLevel('direct', direct.at(-1)!));
    }
  } finally {
    await engine.close();
  }

  const cluster = await ServingCluster.start({ model: values.model, numWorkers: Number(values.workers), workerEnv: { NUM_THREADS: String(numThreads) } });
  try {
    const results: LevelResult[] = [];
    for (const concurrency of levels) {
      results.push(await servingLevel(cluster, concurrency, numRequests, request));
      console.error(describeLevel('serving', results.at(-1)!));
    }
    const comparison = levels.map((concurrency, i) => ({
      concurrency,
      tokensPerSecondRatio: results[i].tokensPerSecond / direct[i].tokensPerSecond,
      addedTtftP50Ms: results[i].ttftMs.p50 - direct[i].ttftMs.p50,
    }));
    console.error('\nconcurrency  serving/direct tok/s  added TTFT p50 (ms)');
    for (const c of comparison) console.error(`${String(c.concurrency).padStart(11)}  ${c.tokensPerSecondRatio.toFixed(2).padStart(20)}  ${c.addedTtftP50Ms.toFixed(1).padStart(19)}`);
    const batchSizeMax = Math.max(...(await Promise.all(cluster.workers.map((w) => fetchMetric(w.metricsUrl, 'kcache_worker_batch_size_max')))));
    const report = {
      benchmark: 'serving',
      date: new Date().toISOString(),
      machine: describeMachine(),
      model: values.model === stories260kDir() ? 'stories260K' : basename(values.model),
      numWorkers: Number(values.workers),
      numThreads,
      maxNewTokens,
      attention: values.attention,
      batchSizeMax,
      levels: results,
      direct,
      comparison,
    };
    const json = JSON.stringify(report, null, 2);
    mkdirSync(dirname(values.out), { recursive: true });
    writeFileSync(values.out, json + '\n');
    console.error(`wrote ${values.out}`);
  } finally {
    await cluster.stop();
  }
}

/** The same workload through the gateway, the queue and a worker. */
function servingLevel(cluster: ServingCluster, concurrency: number, numRequests: number, request: (i: number) => Partial<GenerateRequest>): Promise<LevelResult> {
  const client = cluster.client();
  return runClosedLoop(concurrency, numRequests, async (i, onToken) => {
    const result = await collectStream(client, request(i), undefined, onToken);
    return { numTokens: result.tokens.length, isError: result.error !== null };
  });
}

function describeLevel(path: string, r: LevelResult): string {
  return (
    `${path.padEnd(7)} c=${String(r.concurrency).padStart(3)}  ${r.tokensPerSecond.toFixed(0).padStart(7)} tok/s  ` +
    `TTFT p50 ${r.ttftMs.p50.toFixed(1)} p99 ${r.ttftMs.p99.toFixed(1)} ms  ` +
    `ITL p50 ${r.interTokenMs.p50.toFixed(2)} p99 ${r.interTokenMs.p99.toFixed(2)} ms  errors ${r.numErrors}`
  );
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
