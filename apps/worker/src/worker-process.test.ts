import assert from 'node:assert/strict';
import { ChildProcess, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createEngine, generate, GenerationResult } from '@kcache-serve/kcache';
import { stories260kDir } from '@kcache-serve/kcache/testing';
import {
  GENERATION_JOB_NAME,
  GENERATION_QUEUE_NAME,
  GenerationJobData,
  GenerationJobRequest,
  generationJobId,
  newRelayCapability,
  RedisKeys,
  relay,
  TokenEvent,
  toQueuePriority,
  WorkerHeartbeat,
} from '@kcache-serve/proto';
import { freePort, RecordingRelay, startRecordingRelay, startTestRedis, TestRedis, waitFor as waitForCondition } from '@kcache-serve/proto/dist/testing';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';

/**
 * One worker process against a real Redis and a real gRPC Relay endpoint played by this test (the
 * gateway's part), with jobs queued directly through BullMQ.
 */
const MODEL = stories260kDir();
const keys = new RedisKeys(`kcache-test-${randomBytes(4).toString('hex')}`);
let redisServer: TestRedis;
let redis: Redis;
let queue: Queue<GenerationJobData>;
let relayServer: RecordingRelay;
let relayAddress: string;
let worker: ChildProcess;
let workerOutput = '';
let metricsUrl: string;
const received = new Map<string, relay.RelayEvent[]>();

before(async () => {
  redisServer = await startTestRedis();
  redis = new Redis(redisServer.url, { maxRetriesPerRequest: null });
  queue = new Queue<GenerationJobData>(GENERATION_QUEUE_NAME, { connection: redis, prefix: keys.bullPrefix });
  relayServer = await startRecordingRelay((event) => received.set(event.requestId, [...(received.get(event.requestId) ?? []), event]));
  relayAddress = relayServer.address;
  const metricsPort = await freePort();
  metricsUrl = `http://127.0.0.1:${metricsPort}`;
  worker = spawn(process.execPath, [join(__dirname, 'main.js')], {
    env: {
      ...process.env,
      REDIS_URL: redisServer.url,
      REDIS_PREFIX: keys.prefix,
      MODEL,
      WORKER_ID: 'w-test',
      METRICS_HOST: '127.0.0.1',
      METRICS_PORT: String(metricsPort),
      NUM_THREADS: '1',
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  worker.stdout?.on('data', (d: Buffer) => (workerOutput += d.toString()));
  worker.stderr?.on('data', (d: Buffer) => (workerOutput += d.toString()));
  await waitFor(async () => (await redis.exists(keys.workerHeartbeat('w-test'))) === 1, 30_000, 'the worker heartbeat');
});

after(async () => {
  if (worker.exitCode === null) {
    worker.kill('SIGKILL');
    await new Promise((r) => worker.once('exit', r));
  }
  relayServer.close();
  await queue.close();
  const leftover = await redis.keys(`${keys.prefix}:*`);
  if (leftover.length > 0) await redis.del(...leftover);
  await redis.quit();
  await redisServer.stop();
});

function jobRequest(requestId: string, maxNewTokens: number): GenerationJobRequest {
  return {
    requestId,
    promptTokenIds: [1, 403, 407, 261, 378],
    maxNewTokens,
    sampling: { temperature: 0.8, topK: 0, topP: 1, seed: 77 },
    stopTokenIds: [],
    stopStrings: [],
    attention: { mode: 'full', topN: 64, denseLayers: 0, renormalize: false },
    priority: 0,
    logprobs: false,
  };
}

async function enqueue(request: GenerationJobRequest): Promise<void> {
  await queue.add(
    GENERATION_JOB_NAME,
    { request, relayAddress, submissionId: randomUUID(), relayCapability: newRelayCapability(), deadlineUnixMs: null },
    { jobId: generationJobId(request.requestId), priority: toQueuePriority(0), removeOnComplete: true },
  );
}

async function reference(request: GenerationJobRequest): Promise<GenerationResult> {
  const engine = await createEngine({ model: MODEL, numThreads: 1 });
  try {
    return await generate(engine, request);
  } finally {
    await engine.close();
  }
}

function tokensOf(requestId: string): TokenEvent[] {
  return (received.get(requestId) ?? []).flatMap((e) => (e.event?.$case === 'token' ? [e.event.value] : []));
}

function finishOf(requestId: string): relay.JobFinished | undefined {
  const last = received.get(requestId)?.at(-1)?.event;
  return last?.$case === 'finished' ? last.value : undefined;
}

describe('worker process', () => {
  it('relays every token with its index, then the finish; the job completes', async () => {
    const request = jobRequest('plain', 30);
    const [expected] = await Promise.all([reference(request), enqueue(request)]);
    await waitFor(() => finishOf('plain') !== undefined, 10_000, 'the finish event');
    assert.deepEqual(tokensOf('plain').map((t) => t.tokenId), expected.tokenIds);
    assert.deepEqual(tokensOf('plain').map((t) => t.index), expected.tokenIds.map((_, i) => i));
    assert.equal(received.get('plain')?.[0].event?.$case, 'started');
    await waitFor(async () => (await queue.getJob(generationJobId('plain'))) === undefined, 5000, 'the job to complete');
  });

  it('a retried job resumes from the delivered-token list and continues at that index', async () => {
    const request = jobRequest('resumed', 30);
    const expected = await reference(request);
    await redis.rpush(keys.deliveredTokens('resumed'), ...expected.tokenIds.slice(0, 12));
    await enqueue(request);
    await waitFor(() => finishOf('resumed') !== undefined, 10_000, 'the finish event');
    const started = received.get('resumed')?.[0].event;
    assert.equal(started?.$case === 'started' && started.value.numResumedTokens, 12);
    assert.deepEqual(tokensOf('resumed').map((t) => t.index), expected.tokenIds.slice(12).map((_, i) => 12 + i));
    assert.deepEqual(tokensOf('resumed').map((t) => t.tokenId), expected.tokenIds.slice(12));
    assert.equal(finishOf('resumed')?.completionTokens, 30);
    // The worker deletes the list after the gateway acknowledged the finish, so just after this test saw it.
    await waitFor(async () => (await redis.exists(keys.deliveredTokens('resumed'))) === 0, 2000, 'the list to be deleted with the job');
  });

  it('publishes a heartbeat with a TTL and serves metrics', async () => {
    const heartbeat = JSON.parse((await redis.get(keys.workerHeartbeat('w-test'))) ?? '{}') as WorkerHeartbeat;
    assert.equal(heartbeat.workerId, 'w-test');
    assert.ok((await redis.pttl(keys.workerHeartbeat('w-test'))) > 0);
    const text = await (await fetch(`${metricsUrl}/metrics`)).text();
    for (const name of ['kcache_worker_batch_size', 'kcache_worker_sequence_capacity', 'process_cpu_seconds_total', 'kcache_worker_preemptions_total', 'kcache_worker_generated_tokens_total']) {
      assert.ok(text.includes(name), name);
    }
    assert.match(text, /kcache_worker_kv_capacity_bytes\{tier="device"\} [1-9]/);
    assert.match(text, /kcache_worker_kv_used_bytes\{tier="host"\} \d/);
    assert.match(text, /kcache_worker_kv_cache_usage_ratio\{tier="device"\} (?:0|0\.\d+|1)\n/);
  });

  it('SIGTERM: exits 0 and removes its heartbeat', async () => {
    worker.kill('SIGTERM');
    const code = await new Promise<number | null>((resolve) => worker.once('exit', resolve));
    assert.equal(code, 0, workerOutput);
    assert.equal(await redis.exists(keys.workerHeartbeat('w-test')), 0);
  });
});

function waitFor(condition: () => Promise<boolean> | boolean, timeoutMs: number, what: string): Promise<void> {
  return waitForCondition(condition, timeoutMs, what, () => `\nworker output:\n${workerOutput}`);
}
