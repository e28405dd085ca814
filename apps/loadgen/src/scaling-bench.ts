import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { describeMachine } from '@kcache-serve/kcache-bench';
import { repoRoot, stories260kDir } from '@kcache-serve/kcache/testing';

import { fetchMetric, ServingCluster, waitFor } from '@kcache-serve/proto/dist/testing';
import { createGenerationClient } from './cli/gateway-client';
import { parseIntFlag, parseNumberFlag } from './cli/parse-flags';
import { UsageError } from './cli/usage-error';
import { LoadAverage, loadAverage } from './bench/load-avg';
import { waitForQuietMachine } from './bench/quiet-machine';
import { CpuMeter, findRedisPid, round2 } from './bench/process-cpu';
import { runLoad } from './load/closed-loop';
import { LoadOptions } from './load/load-options';
import { LoadReport, summarizeLoad } from './load/load-report';

/**
 * Worker scaling on this machine: one gateway and Redis, workers with one onnxruntime thread each
 * (NUM_THREADS=1), closed-loop load over gRPC (this process) at each concurrency level against 1 worker,
 * then against 2 (a second worker joins the same gateway and queue), then a soak run against the 2.
 * Saturation throughput is the best tokens/s over the levels; the ratio is 2 workers' over 1's.
 * The machine is shared: each run waits (up to --quiet-wait s) for it to go quiet, and a run during which
 * other processes kept more than --max-other-cores busy is measured again (up to --retries times); every
 * attempt is kept in the JSON.
 *   in:  flags (USAGE); REDIS_URL to use an existing Redis
 *   out: a table on stderr as it goes, Markdown rows on stdout, JSON at --out
 *        (default bench/results/scaling.json)
 *   exit: 1 when a run had errors or the soak's tokens differ from the gateway's counter.
 */
const USAGE = `npm run bench:scaling -- [--model SPEC] [--levels 64,128] [--duration S] [--warmup S]
       [--prompt-len L] [--max-new-tokens M] [--attention full|kcache] [--soak-duration S] [--soak-concurrency C]
       [--quiet-wait S] [--max-other-cores N] [--retries N] [--out FILE]`;

const TOKENS_METRIC = 'kcache_gateway_tokens_total';
const API_KEY = `bench-${randomBytes(16).toString('hex')}`;
/** A machine this busy (in cores, over 2 s) counts as quiet: the idle stack itself takes a few hundredths. */
const QUIET_BUSY_CORES = 0.25;

interface Run {
  readonly numWorkers: number;
  readonly concurrency: number;
  readonly report: LoadReport;
  /** Cores busy per process (gateway, worker-0, worker-1, loadgen, redis), the machine and everything else. */
  readonly cores: Record<string, number | null>;
  /** tokens/s per core the workers used. */
  readonly tokensPerWorkerCore: number | null;
  readonly loadAverage: LoadAverage;
  /** Seconds waited for a quiet machine before the run, and its busy cores then. */
  readonly quietWait: { waitedS: number; busyCores: number | null };
  /** Earlier attempts of this run that other processes disturbed. */
  readonly disturbedAttempts: ReadonlyArray<{ tokensPerSecond: number; otherCores: number | null }>;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: 'string', default: stories260kDir() },
      levels: { type: 'string', default: '64,128' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      'prompt-len': { type: 'string' },
      'max-new-tokens': { type: 'string' },
      attention: { type: 'string', default: 'full' },
      'soak-duration': { type: 'string' },
      'soak-concurrency': { type: 'string' },
      'quiet-wait': { type: 'string' },
      'max-other-cores': { type: 'string' },
      retries: { type: 'string' },
      out: { type: 'string', default: join(repoRoot(), 'bench', 'results', 'scaling.json') },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) return void console.error(USAGE);
  const levels = values.levels.split(',').map((c) => parseIntFlag('levels', c, 0, 1));
  const durationS = parseNumberFlag('duration', values.duration, 15, 1);
  const warmupS = parseNumberFlag('warmup', values.warmup, 5, 0);
  const soakS = parseNumberFlag('soak-duration', values['soak-duration'], 60, 0);
  const soakConcurrency = parseIntFlag('soak-concurrency', values['soak-concurrency'], 32, 1);
  const quietWaitS = parseNumberFlag('quiet-wait', values['quiet-wait'], 180, 0);
  const maxOtherCores = parseNumberFlag('max-other-cores', values['max-other-cores'], 0.2, 0);
  const maxRetries = parseIntFlag('retries', values.retries, 2, 0);
  if (values.attention !== 'full' && values.attention !== 'kcache') throw new UsageError(`--attention expects full or kcache, got '${values.attention}'`);
  const workload = {
    promptLen: parseIntFlag('prompt-len', values['prompt-len'], 256, 1),
    maxNewTokens: parseIntFlag('max-new-tokens', values['max-new-tokens'], 256, 1),
    attention: values.attention as 'full' | 'kcache',
  };

  const startedAt = new Date().toISOString();
  const uptimeBefore = uptime();
  const loadBefore = loadAverage();
  console.error(`uptime before: ${uptimeBefore}`);
  const cluster = await ServingCluster.start({
    model: values.model,
    numWorkers: 1,
    gatewayEnv: { AUTH_MODE: 'api-key', API_KEY_HASHES: `bench:${sha256Hex(API_KEY)}` },
    workerEnv: { NUM_THREADS: '1' },
  });
  const metricsUrl = `${cluster.httpUrl}/metrics`;
  const options = (concurrency: number, seconds: number): LoadOptions => ({
    target: cluster.grpcAddress,
    apiKey: API_KEY,
    isTls: false,
    caFile: null,
    concurrency,
    durationS: seconds,
    ...workload,
    vocabSize: 512,
    seed: 1,
    temperature: 1,
    topN: null,
    requestTimeoutS: 120,
  });
  const client = createGenerationClient(options(1, 0));
  const redisUrl = new URL(cluster.redis.url);
  const redisPid = ['127.0.0.1', 'localhost'].includes(redisUrl.hostname) ? findRedisPid(Number(redisUrl.port || 6379)) : null;
  const pids = () =>
    new Map<string, number>([
      ['gateway', cluster.gateway.child.pid!],
      ...cluster.workers.map((w) => [w.name, w.child.pid!] as [string, number]),
      ['loadgen', process.pid],
      ...(redisPid === null ? [] : [['redis', redisPid] as [string, number]]),
    ]);
  const measure = async (numWorkers: number, concurrency: number, seconds: number, retries = maxRetries): Promise<Run> => {
    const disturbedAttempts: Run['disturbedAttempts'][number][] = [];
    for (;;) {
      const quietWait = await waitForQuietMachine(QUIET_BUSY_CORES, quietWaitS);
      const meter = new CpuMeter(pids());
      meter.start();
      const report = summarizeLoad(options(concurrency, seconds), await runLoad(client, options(concurrency, seconds)));
      const cores = meter.stop();
      const workerCores = Object.entries(cores).filter(([name]) => name.startsWith('worker')).reduce((sum, [, n]) => sum + (n ?? NaN), 0);
      const tokensPerWorkerCore = Number.isFinite(workerCores) && workerCores > 0 ? round2(report.tokensPerSecond / workerCores) : null;
      const run = { numWorkers, concurrency, report, cores, tokensPerWorkerCore, loadAverage: loadAverage(), quietWait, disturbedAttempts };
      const isDisturbed = cores.other !== null && cores.other > maxOtherCores;
      console.error(formatRun(run) + (isDisturbed ? '  (disturbed)' : ''));
      if (!isDisturbed || disturbedAttempts.length >= retries) return run;
      disturbedAttempts.push({ tokensPerSecond: round2(report.tokensPerSecond), otherCores: cores.other });
    }
  };

  const runs: Run[] = [];
  let soak: { run: Run; gatewayTokens: number } | null = null;
  try {
    for (const numWorkers of [1, 2]) {
      if (numWorkers === 2) {
        await cluster.startWorker({ NUM_THREADS: '1' });
        await waitForWorkers(cluster, 2);
      }
      if (warmupS > 0) await runLoad(client, options(Math.max(...levels), warmupS));
      for (const concurrency of levels) runs.push(await measure(numWorkers, concurrency, durationS));
    }
    if (soakS > 0) {
      const before = await fetchMetric(metricsUrl, TOKENS_METRIC);
      // Not repeated when disturbed: the gateway's counter must cover exactly this one run.
      const run = await measure(2, soakConcurrency, soakS, 0);
      soak = { run, gatewayTokens: (await fetchMetric(metricsUrl, TOKENS_METRIC)) - before };
    }
  } finally {
    client.close();
    await cluster.stop();
  }

  const best = (n: number) => runs.filter((r) => r.numWorkers === n).reduce((a, b) => (b.report.tokensPerSecond > a.report.tokensPerSecond ? b : a));
  const [best1, best2] = [best(1), best(2)];
  const ratio = best2.report.tokensPerSecond / best1.report.tokensPerSecond;
  const numErrors = [...runs, ...(soak ? [soak.run] : [])].reduce((n, r) => n + r.report.numRequestsFailed, 0);
  const isSoakConsistent = soak === null || soak.gatewayTokens === soak.run.report.numTokens;
  const result = {
    benchmark: 'scaling',
    date: startedAt,
    machine: { ...describeMachine(), uptimeBefore, uptimeAfter: uptime(), loadAverageBefore: loadBefore },
    settings: {
      model: values.model === stories260kDir() ? 'stories260K' : basename(values.model),
      numThreadsPerWorker: 1,
      levels,
      durationS,
      warmupS,
      ...workload,
      temperature: 1,
      vocabSize: 512,
      quietWaitS,
      maxOtherCores,
      maxRetries,
    },
    saturation: {
      oneWorker: { concurrency: best1.concurrency, tokensPerSecond: round2(best1.report.tokensPerSecond), cores: best1.cores },
      twoWorkers: { concurrency: best2.concurrency, tokensPerSecond: round2(best2.report.tokensPerSecond), cores: best2.cores },
      ratio: round2(ratio),
      /** The ratio of tokens/s per worker core: how far the workers scale given the cores they got. */
      perWorkerCoreRatio: best1.tokensPerWorkerCore && best2.tokensPerWorkerCore ? round2(best2.tokensPerWorkerCore / best1.tokensPerWorkerCore) : null,
    },
    soak: soak && {
      concurrency: soakConcurrency,
      durationS: soakS,
      numTokens: soak.run.report.numTokens,
      gatewayTokensIncrease: soak.gatewayTokens,
      isConsistent: isSoakConsistent,
      run: soak.run,
    },
    runs,
  };
  mkdirSync(dirname(resolve(values.out)), { recursive: true });
  writeFileSync(values.out, JSON.stringify(result, null, 2) + '\n');
  console.error(`ratio 2 workers / 1 worker at saturation: ${ratio.toFixed(2)}x (per worker core: ${result.saturation.perWorkerCoreRatio}x); uptime after: ${result.machine.uptimeAfter}; JSON: ${values.out}`);
  console.log(markdownRows([...runs, ...(soak ? [soak.run] : [])]));
  if (numErrors > 0 || !isSoakConsistent) {
    console.error(`FAILED: ${numErrors} failed requests; soak tokens ${soak?.run.report.numTokens} vs gateway counter +${soak?.gatewayTokens}`);
    process.exitCode = 1;
  }
}

async function waitForWorkers(cluster: ServingCluster, numWorkers: number): Promise<void> {
  await waitFor(
    async () => ((await (await fetch(`${cluster.httpUrl}/readyz`)).json()) as { numWorkers: number }).numWorkers >= numWorkers,
    30_000,
    `${numWorkers} workers in /readyz`,
  );
}

function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

function uptime(): string {
  try {
    return execFileSync('uptime', { encoding: 'utf8' }).trim();
  } catch {
    const l = loadAverage();
    return `load average: ${l.oneMin}, ${l.fiveMin}, ${l.fifteenMin}`;
  }
}

function formatRun(r: Run): string {
  const cores = Object.entries(r.cores)
    .map(([name, n]) => `${name} ${n ?? '?'}`)
    .join(', ');
  return (
    `workers ${r.numWorkers}  c=${String(r.concurrency).padStart(3)}  ${r.report.tokensPerSecond.toFixed(0).padStart(6)} tok/s  ` +
    `TTFT p50 ${fmt(r.report.ttftMs.p50)} p99 ${fmt(r.report.ttftMs.p99)} ms  errors ${r.report.numRequestsFailed}  cores: ${cores}`
  );
}

function markdownRows(runs: readonly Run[]): string {
  const header =
    '| workers | concurrency | duration s | requests | errors | tokens/s | tokens/s per worker core | TTFT p50 / p99 ms | ITL p50 / p99 ms | ' +
    'cores: gateway, workers, loadgen, redis, other |';
  const rows = runs.map((r) => {
    const workers = Object.entries(r.cores).filter(([name]) => name.startsWith('worker')).map(([, n]) => n);
    return (
      `| ${r.numWorkers} | ${r.concurrency} | ${r.report.durationS} | ${r.report.numRequestsCompleted} | ${r.report.numRequestsFailed} | ` +
      `${r.report.tokensPerSecond.toFixed(0)} | ${r.tokensPerWorkerCore?.toFixed(0) ?? '-'} | ${fmt(r.report.ttftMs.p50)} / ${fmt(r.report.ttftMs.p99)} | ` +
      `${fmt(r.report.interTokenMs.p50)} / ${fmt(r.report.interTokenMs.p99)} | ` +
      `${r.cores.gateway}, ${workers.join(' + ')}, ${r.cores.loadgen}, ${r.cores.redis ?? '-'}, ${r.cores.other} |`
    );
  });
  return [header, '|---|---|---|---|---|---|---|---|---|---|', ...rows].join('\n');
}

function fmt(ms: number | null): string {
  return ms === null ? '-' : ms < 10 ? ms.toFixed(2) : ms.toFixed(0);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
