import { ClientReadableStream, Metadata, ServiceError, status as Status } from '@grpc/grpc-js';
import { createEngine, generate, resolveModelSpec } from '@kcache-serve/kcache';
import { FinishReason, GENERATION_QUEUE_NAME, GenerateRequest, GenerateResponse, GenerationClient } from '@kcache-serve/proto';
import { bearer, ServingCluster, WorkerProcess } from '@kcache-serve/proto/dist/testing';
import { randomBytes } from 'node:crypto';
import { sha256Hex } from '../auth/api-key';
import { rssBytes } from './process-rss';
import { SoakOptions } from './soak-options';

/**
 * A soak run against real processes (ServingCluster: Redis with AOF, one gateway with API keys, workers):
 * closed-loop clients stream seeded requests, some cancelled with the Cancel RPC or dropped mid-stream,
 * while a worker is restarted every restartEveryMs (SIGTERM and SIGKILL in turn). Every stream is checked
 * (indices 0..n-1, usage = tokens received, a proper ending); every verifyEvery-th completed one is
 * replayed on an in-process engine and must match token for token. RSS of every process is sampled
 * after the warm-up and at the end.
 */
export interface SoakReport {
  readonly durationS: number;
  readonly numRequests: number;
  readonly numTokens: number;
  /** How requests ended: OK/<finish reason>, or the status code name. */
  readonly outcomes: Record<string, number>;
  readonly numCancelRpcs: number;
  readonly numDisconnects: number;
  readonly numUnexpected: number;
  /** The first few unexpected outcomes, described. */
  readonly unexpected: string[];
  readonly numLostTokens: number;
  readonly numDuplicatedTokens: number;
  readonly faults: { readonly workerSigterms: number; readonly workerSigkills: number; readonly jobsOnRestartedWorkers: number };
  readonly verification: { readonly numReplayed: number; readonly numMismatched: number };
  readonly rss: ReadonlyArray<{ readonly process: string; readonly startMiB: number | null; readonly endMiB: number | null; readonly growthPercent: number | null }>;
  /** What Redis holds under the run's prefix, after the warm-up and at the end: a leak of keys shows here. */
  readonly redisData: ReadonlyArray<{ readonly at: 'start' | 'end'; readonly numKeys: number; readonly numQueueEvents: number; readonly usedMemoryMiB: number }>;
  /** Processes that exited on their own (not restarted by the soak). */
  readonly numCrashes: number;
}

const PROMPTS = ['Once upon a time', 'The little dog', 'Lily and Ben went to the park', 'One day, a big bear', 'Tom had a red ball'];
const STREAM_DEADLINE_MS = 120_000;
const MAX_UNEXPECTED_LISTED = 20;
const RSS_SAMPLE_MS = 2000;
const RSS_WINDOW_MS = 30_000;
const WORKER_SAMPLES = 5;

type Mode = 'normal' | 'cancel' | 'disconnect';

interface SoakRequest {
  readonly requestId: string;
  readonly prompt: string;
  readonly maxNewTokens: number;
  readonly seed: number;
  readonly mode: Mode;
  /** cancel/disconnect after this many tokens. */
  readonly stopAfterTokens: number;
}

interface StreamResult {
  readonly request: SoakRequest;
  readonly indices: number[];
  readonly tokenIds: number[];
  readonly finishReason: FinishReason | null;
  readonly completionTokens: number | null;
  readonly error: ServiceError | null;
}

/** Deterministic per request index (mulberry32), so a run can be replayed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function soakRequest(i: number, options: SoakOptions): SoakRequest {
  const next = random(i * 7919 + 17);
  const roll = next();
  const mode: Mode = roll < options.cancelFraction ? 'cancel' : roll < options.cancelFraction + options.disconnectFraction ? 'disconnect' : 'normal';
  return {
    requestId: `soak-${i}`,
    prompt: PROMPTS[Math.floor(next() * PROMPTS.length)],
    maxNewTokens: 16 + Math.floor(next() * 185),
    seed: Math.floor(next() * 2 ** 31),
    mode,
    stopAfterTokens: 1 + Math.floor(next() * 12),
  };
}

function runStream(client: GenerationClient, metadata: Metadata, request: SoakRequest): Promise<StreamResult> {
  return new Promise((resolve) => {
    const indices: number[] = [];
    const tokenIds: number[] = [];
    let finishReason: FinishReason | null = null;
    let completionTokens: number | null = null;
    const call: ClientReadableStream<GenerateResponse> = client.generate(
      GenerateRequest.fromPartial({ requestId: request.requestId, prompt: request.prompt, maxNewTokens: request.maxNewTokens, sampling: { temperature: 0.8, seed: request.seed } }),
      metadata,
      { deadline: Date.now() + STREAM_DEADLINE_MS },
    );
    call.on('data', (response: GenerateResponse) => {
      if (response.event?.$case === 'token') {
        indices.push(response.event.value.index);
        tokenIds.push(response.event.value.tokenId);
        if (indices.length === request.stopAfterTokens) {
          if (request.mode === 'disconnect') call.cancel();
          if (request.mode === 'cancel') client.cancel({ requestId: request.requestId }, metadata, () => undefined);
        }
      } else if (response.event?.$case === 'final') {
        finishReason = response.event.value.finishReason;
        completionTokens = response.event.value.usage?.completionTokens ?? null;
      }
    });
    call.on('error', (error: ServiceError) => resolve({ request, indices, tokenIds, finishReason, completionTokens, error }));
    call.on('end', () => resolve({ request, indices, tokenIds, finishReason, completionTokens, error: null }));
  });
}

/** Why a stream's ending is not one its mode allows, or null. */
function unexpectedOf(result: StreamResult): string | null {
  const { request, error, finishReason, completionTokens, indices } = result;
  const id = `${request.requestId} (${request.mode})`;
  if (error !== null) {
    if (request.mode === 'disconnect' && error.code === Status.CANCELLED) return null;
    return `${id}: ${Status[error.code]} ${error.details}`;
  }
  if (finishReason === null) return `${id}: ended without a final event`;
  if (completionTokens !== indices.length) return `${id}: usage says ${completionTokens} tokens, received ${indices.length}`;
  if (finishReason === FinishReason.FINISH_REASON_CANCELLED && request.mode !== 'cancel') return `${id}: CANCELLED without a Cancel`;
  if (finishReason === FinishReason.FINISH_REASON_LENGTH && indices.length !== request.maxNewTokens) return `${id}: LENGTH after ${indices.length} of ${request.maxNewTokens}`;
  return null;
}

/** Tokens missing (gaps) and repeated in a stream's index sequence. */
function lossOf(indices: readonly number[]): { lost: number; duplicated: number } {
  const seen = new Set<number>();
  let duplicated = 0;
  for (const i of indices) {
    if (seen.has(i)) duplicated++;
    seen.add(i);
  }
  const max = indices.length === 0 ? -1 : Math.max(...indices);
  return { lost: max + 1 - seen.size, duplicated };
}

const mib = (bytes: number | null) => (bytes === null ? null : Math.round((bytes / 2 ** 20) * 10) / 10);

export async function runSoak(options: SoakOptions, log: (line: string) => void = () => undefined): Promise<SoakReport> {
  const model = await resolveModelSpec(options.model);
  const apiKey = `soak-${randomBytes(12).toString('hex')}`;
  const cluster = await ServingCluster.start({
    model,
    numWorkers: options.numWorkers,
    redis: { isAppendOnly: true },
    apiKey,
    gatewayEnv: { AUTH_MODE: 'api-key', API_KEY_HASHES: `soak:${sha256Hex(apiKey)}` },
    workerEnv: { LOCK_DURATION_MS: '1000', STALLED_INTERVAL_MS: '500', MAX_STALLED_COUNT: '20', SHUTDOWN_GRACE_MS: '10000' },
  });
  const restarted = new Set<WorkerProcess>();
  try {
    const client = cluster.client();
    const metadata = bearer(apiKey);
    const results: StreamResult[] = [];
    const startedAt = Date.now();
    const endAt = startedAt + options.durationMs;
    let nextIndex = 0;

    const clientLoop = async (): Promise<void> => {
      while (Date.now() < endAt) results.push(await runStream(client, metadata, soakRequest(nextIndex++, options)));
    };

    const faults = { workerSigterms: 0, workerSigkills: 0, jobsOnRestartedWorkers: 0 };
    const restartLoop = async (): Promise<void> => {
      for (let n = 1; Date.now() + options.restartEveryMs < endAt; n++) {
        await sleep(startedAt + n * options.restartEveryMs - Date.now());
        const victim = cluster.workers.find((w) => !restarted.has(w) && w.child.exitCode === null);
        if (victim === undefined) continue;
        const signal = n % 2 === 1 ? 'SIGTERM' : 'SIGKILL';
        const active = await cluster.queue().getActive();
        faults.jobsOnRestartedWorkers += active.filter((j) => j.processedBy === victim.name).length;
        restarted.add(victim);
        victim.child.kill(signal);
        if (signal === 'SIGTERM') faults.workerSigterms++;
        else faults.workerSigkills++;
        log(`soak: ${signal} ${victim.name} at ${((Date.now() - startedAt) / 1000).toFixed(0)} s; starting a replacement`);
        await cluster.startWorker();
        await victim.exited;
      }
    };

    const liveProcesses = () => [
      { name: 'gateway', pid: cluster.gateway.child.pid },
      { name: 'redis', pid: cluster.redis.pid() },
      ...cluster.workers.filter((w) => w.child.exitCode === null && w.child.signalCode === null && !restarted.has(w)).map((w) => ({ name: w.name, pid: w.child.pid })),
    ];
    // RSS moves with garbage collection, so one sample says little: every RSS_SAMPLE_MS each live process is
    // sampled; "start" is the median over the RSS_WINDOW_MS after the warm-up, "end" over the last RSS_WINDOW_MS.
    const samples: Array<{ atMs: number; rss: Map<string, number | null> }> = [];
    const rssSampler = setInterval(() => samples.push({ atMs: Date.now(), rss: new Map(liveProcesses().map((p) => [p.name, rssBytes(p.pid)])) }), RSS_SAMPLE_MS);
    const redis = cluster.redisClient();
    const redisData: Array<SoakReport['redisData'][number]> = [];
    const sampleRedis = async (at: 'start' | 'end'): Promise<void> => {
      let numKeys = 0;
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${cluster.keys.prefix}:*`, 'COUNT', 1000);
        cursor = next;
        numKeys += keys.length;
      } while (cursor !== '0');
      const numQueueEvents = await redis.xlen(`${cluster.keys.bullPrefix}:${GENERATION_QUEUE_NAME}:events`);
      const usedMemory = Number(/^used_memory:(\d+)/m.exec(await redis.info('memory'))?.[1] ?? 0);
      redisData.push({ at, numKeys, numQueueEvents, usedMemoryMiB: mib(usedMemory) ?? 0 });
    };
    const redisSampler = sleep(Math.min(options.warmupMs, options.durationMs / 2)).then(() => sampleRedis('start'));
    const progress = setInterval(
      () => log(`soak: ${((Date.now() - startedAt) / 1000).toFixed(0)} s, ${results.length} requests done; RSS ${liveProcesses().map((p) => `${p.name} ${mib(rssBytes(p.pid))}`).join(', ')} MiB`),
      30_000,
    );
    progress.unref();

    await Promise.all([...Array.from({ length: options.numClients }, clientLoop), restartLoop(), redisSampler]);
    await sampleRedis('end');
    clearInterval(progress);
    clearInterval(rssSampler);
    const durationS = (Date.now() - startedAt) / 1000;

    const warmEndMs = startedAt + Math.min(options.warmupMs, options.durationMs / 2);
    const windowMs = Math.min(RSS_WINDOW_MS, (Date.now() - warmEndMs) / 2);
    const startSamples = samples.filter((x) => x.atMs >= warmEndMs && x.atMs < warmEndMs + windowMs);
    const endSamples = samples.filter((x) => x.atMs >= Date.now() - windowMs);
    // The workers as a set: the restarted ones are new processes, so compare sums.
    const sumWorkers = (m: Map<string, number | null>) => [...m].filter(([n]) => n.startsWith('worker')).reduce((sum, [, b]) => sum + (b ?? 0), 0);
    const medianOf = (window: typeof samples, read: (m: Map<string, number | null>) => number | null | undefined) => median(window.map((x) => read(x.rss) ?? null));
    const growth = (start: number | null, end: number | null) => (start === null || end === null ? null : Math.round(((end - start) / start) * 1000) / 10);
    const row = (process: string, read: (m: Map<string, number | null>) => number | null | undefined) => {
      const [start, end] = [medianOf(startSamples, read), medianOf(endSamples, read)];
      return { process, startMiB: mib(start), endMiB: mib(end), growthPercent: growth(start, end) };
    };
    // Each worker over its own life: median of its first and of its last WORKER_SAMPLES samples.
    const workerNames = [...new Set(samples.flatMap((x) => [...x.rss.keys()]).filter((n) => n.startsWith('worker')))];
    const workerRows = workerNames.map((name) => {
      const own = samples.map((x) => x.rss.get(name)).filter((v): v is number => v !== undefined && v !== null);
      const [start, end] = [median(own.slice(0, WORKER_SAMPLES)), median(own.slice(-WORKER_SAMPLES))];
      return { process: `${name} (own life)`, startMiB: mib(start), endMiB: mib(end), growthPercent: growth(start, end) };
    });
    const rss = [row('gateway', (m) => m.get('gateway')), row('redis', (m) => m.get('redis')), row('workers (sum of live)', sumWorkers), ...workerRows];

    const outcomes: Record<string, number> = {};
    const unexpected: string[] = [];
    let numUnexpected = 0;
    let numTokens = 0;
    let numLostTokens = 0;
    let numDuplicatedTokens = 0;
    for (const result of results) {
      const outcome = result.error !== null ? Status[result.error.code] : `OK/${FinishReason[result.finishReason ?? FinishReason.FINISH_REASON_UNSPECIFIED].replace('FINISH_REASON_', '')}`;
      outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
      numTokens += result.indices.length;
      const loss = lossOf(result.indices);
      numLostTokens += loss.lost;
      numDuplicatedTokens += loss.duplicated;
      const why = unexpectedOf(result) ?? (loss.lost + loss.duplicated > 0 ? `${result.request.requestId}: ${loss.lost} lost, ${loss.duplicated} repeated` : null);
      if (why !== null) {
        numUnexpected++;
        if (unexpected.length < MAX_UNEXPECTED_LISTED) unexpected.push(why);
      }
    }

    const toReplay = results.filter((r, k) => k % options.verifyEvery === 0 && r.error === null && r.request.mode === 'normal');
    let numMismatched = 0;
    const engine = await createEngine({ model, numThreads: 1 });
    try {
      // Replayed in batches no larger than the live ones (numClients), so the engine picks the same decode
      // graph (its choice depends on batch size x past length, and the graphs are not bit-identical).
      const replays = await inBatches(toReplay, options.numClients, (r) =>
        generate(engine, {
          requestId: `replay-${r.request.requestId}`,
          promptTokenIds: engine.tokenizer.encode(r.request.prompt),
          maxNewTokens: r.request.maxNewTokens,
          sampling: { temperature: 0.8, topK: 0, topP: 1, seed: r.request.seed },
          stopTokenIds: [],
          stopStrings: [],
          attention: { mode: 'full' },
          priority: 0,
          logprobs: false,
        }),
      );
      for (const [k, replay] of replays.entries()) {
        if (replay.tokenIds.join(',') !== toReplay[k].tokenIds.join(',')) {
          numMismatched++;
          numUnexpected++;
          if (unexpected.length < MAX_UNEXPECTED_LISTED) unexpected.push(`${toReplay[k].request.requestId}: tokens differ from an undisturbed run`);
        }
      }
    } finally {
      await engine.close();
    }

    const numCrashes = [cluster.gateway, ...cluster.workers].filter((p) => !restarted.has(p as WorkerProcess) && (p.child.exitCode !== null || p.child.signalCode !== null)).length;
    return {
      durationS: Math.round(durationS),
      numRequests: results.length,
      numTokens,
      outcomes,
      numCancelRpcs: results.filter((r) => r.request.mode === 'cancel').length,
      numDisconnects: results.filter((r) => r.request.mode === 'disconnect').length,
      numUnexpected,
      unexpected,
      numLostTokens,
      numDuplicatedTokens,
      faults,
      verification: { numReplayed: toReplay.length, numMismatched },
      rss,
      redisData,
      numCrashes,
    };
  } finally {
    await cluster.stop();
  }
}

function median(values: ReadonlyArray<number | null>): number | null {
  const known = values.filter((v): v is number => v !== null).sort((a, b) => a - b);
  return known.length === 0 ? null : known[Math.floor(known.length / 2)];
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}

/** The report as the few lines a person reads. */
export function formatSoakReport(report: SoakReport): string {
  const lines = [
    `soak: ${report.durationS} s, ${report.numRequests} requests (${report.numCancelRpcs} cancelled by RPC, ${report.numDisconnects} dropped by the client), ${report.numTokens} tokens served`,
    `  outcomes: ${Object.entries(report.outcomes).sort().map(([k, v]) => `${k} ${v}`).join(', ')}`,
    `  faults injected: ${report.faults.workerSigterms} worker SIGTERM, ${report.faults.workerSigkills} worker SIGKILL; ${report.faults.jobsOnRestartedWorkers} jobs in flight on them`,
    `  tokens lost ${report.numLostTokens}, repeated ${report.numDuplicatedTokens}; replayed ${report.verification.numReplayed} streams, ${report.verification.numMismatched} differ`,
    `  unexpected outcomes: ${report.numUnexpected}; crashes: ${report.numCrashes}`,
    ...report.unexpected.map((u) => `    ${u}`),
    `  Redis under the run's prefix: ${report.redisData.map((d) => `${d.at} ${d.numKeys} keys, ${d.numQueueEvents} queue events, ${d.usedMemoryMiB} MiB used`).join('; ')}`,
    '  RSS, median of 2 s samples (the 30 s after warm-up → the last 30 s):',
    ...report.rss.map((r) => `    ${r.process.padEnd(24)} ${String(r.startMiB ?? '-').padStart(7)} → ${String(r.endMiB ?? '-').padStart(7)} MiB${r.growthPercent === null ? '' : `  (${r.growthPercent > 0 ? '+' : ''}${r.growthPercent}%)`}`),
  ];
  return lines.join('\n');
}

/** run over items, at most `size` at a time (in order). */
async function inBatches<T, R>(items: readonly T[], size: number, run: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = [];
  for (let start = 0; start < items.length; start += size) results.push(...(await Promise.all(items.slice(start, start + size).map(run))));
  return results;
}
