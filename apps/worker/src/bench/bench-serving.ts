import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { describeMachine, repoRoot, stories260kDir } from '@kcache-serve/kcache';
import { AttentionMode, GenerateRequest } from '@kcache-serve/proto';
import { collectStream, fetchMetric, ServingCluster } from '@kcache-serve/proto/dist/testing';

/**
 * Serving benchmark: a real Redis, gateway and workers (child processes) on this machine, driven over
 * gRPC by closed-loop clients at each concurrency level.
 *   in:  flags (see USAGE); REDIS_URL to use an existing Redis
 *   out: a table on stderr, JSON (with the machine it ran on) in bench/results/serving.json (or --out FILE)
 */
const USAGE = `bench-serving [--model SPEC] [--workers N] [--concurrency 1,8,32,64] [--requests N]
                    [--max-new-tokens N] [--attention full|kcache] [--top-n N] [--out FILE]`;

interface LevelResult {
  readonly concurrency: number;
  readonly numRequests: number;
  readonly numErrors: number;
  readonly wallSeconds: number;
  readonly tokensPerSecond: number;
  readonly ttftMs: Percentiles;
  readonly interTokenMs: Percentiles;
  readonly requestMs: Percentiles;
}

interface Percentiles {
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
}

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
      out: { type: 'string', default: join(repoRoot(), 'bench', 'results', 'serving.json') },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) return void console.error(USAGE);
  const levels = values.concurrency.split(',').map(Number);
  const numRequests = Number(values.requests);
  const maxNewTokens = Number(values['max-new-tokens']);
  const attention =
    values.attention === 'kcache'
      ? { mode: AttentionMode.ATTENTION_MODE_KCACHE, topN: Number(values['top-n']) }
      : { mode: AttentionMode.ATTENTION_MODE_FULL };

  const cluster = await ServingCluster.start({ model: values.model, numWorkers: Number(values.workers) });
  try {
    const results: LevelResult[] = [];
    for (const concurrency of levels) {
      const request = (i: number): Partial<GenerateRequest> => ({
        prompt: 'Once upon a time',
        maxNewTokens,
        sampling: { temperature: 0.8, seed: i },
        attention,
      });
      results.push(await runLevel(cluster, concurrency, numRequests, request));
      const r = results.at(-1)!;
      console.error(
        `c=${String(concurrency).padStart(3)}  ${r.tokensPerSecond.toFixed(0).padStart(7)} tok/s  ` +
          `TTFT p50 ${r.ttftMs.p50.toFixed(1)} p99 ${r.ttftMs.p99.toFixed(1)} ms  ` +
          `ITL p50 ${r.interTokenMs.p50.toFixed(2)} p99 ${r.interTokenMs.p99.toFixed(2)} ms  errors ${r.numErrors}`,
      );
    }
    const batchSizeMax = Math.max(...(await Promise.all(cluster.workers.map((w) => fetchMetric(w.metricsUrl, 'kcache_worker_batch_size_max')))));
    const report = {
      benchmark: 'serving',
      date: new Date().toISOString(),
      machine: describeMachine(),
      model: values.model === stories260kDir() ? 'stories260K' : basename(values.model),
      numWorkers: Number(values.workers),
      maxNewTokens,
      attention: values.attention,
      batchSizeMax,
      levels: results,
    };
    const json = JSON.stringify(report, null, 2);
    mkdirSync(dirname(values.out), { recursive: true });
    writeFileSync(values.out, json + '\n');
    console.error(`wrote ${values.out}`);
  } finally {
    await cluster.stop();
  }
}

/** Closed loop: `concurrency` clients, each sending its next request when the last one ended. */
async function runLevel(
  cluster: ServingCluster,
  concurrency: number,
  numRequests: number,
  request: (i: number) => Partial<GenerateRequest>,
): Promise<LevelResult> {
  const client = cluster.client();
  const ttftMs: number[] = [];
  const interTokenMs: number[] = [];
  const requestMs: number[] = [];
  let numTokens = 0;
  let numErrors = 0;
  let next = 0;
  const startedAt = performance.now();
  const runClient = async (): Promise<void> => {
    for (let i = next++; i < numRequests; i = next++) {
      const sentAt = performance.now();
      let lastAt = sentAt;
      const result = await collectStream(client, request(i), undefined, () => {
        const now = performance.now();
        if (lastAt === sentAt) ttftMs.push(now - sentAt);
        else interTokenMs.push(now - lastAt);
        lastAt = now;
      });
      requestMs.push(performance.now() - sentAt);
      numTokens += result.tokens.length;
      if (result.error !== null) numErrors++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, runClient));
  const wallSeconds = (performance.now() - startedAt) / 1000;
  return {
    concurrency,
    numRequests,
    numErrors,
    wallSeconds,
    tokensPerSecond: numTokens / wallSeconds,
    ttftMs: percentiles(ttftMs),
    interTokenMs: percentiles(interTokenMs),
    requestMs: percentiles(requestMs),
  };
}

function percentiles(values: number[]): Percentiles {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]);
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99) };
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
