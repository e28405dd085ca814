import assert from 'node:assert/strict';
import { ChildProcess, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stories260kDir } from '@kcache-serve/kcache/testing';
import { GENERATION_JOB_NAME, GENERATION_QUEUE_NAME, GenerationJobRequest, generationJobId, newRelayCapability, RedisKeys, relay } from '@kcache-serve/proto';
import { freePort, RecordingRelay, startRecordingRelay, startTestRedis, TestRedis, waitFor } from '@kcache-serve/proto/dist/testing';
import { Job, Queue } from 'bullmq';
import { Redis } from 'ioredis';

/**
 * The worker does not trust the queue: jobs written straight into Redis with bad data fail at once
 * (unrecoverable, one attempt), nothing of them reaches the relay address they name, and the worker
 * keeps serving good jobs.
 */
const keys = new RedisKeys(`kcache-test-${randomBytes(4).toString('hex')}`);
let redisServer: TestRedis;
let redis: Redis;
let queue: Queue;
let relayServer: RecordingRelay;
let relayAddress: string;
let worker: ChildProcess;
let workerOutput = '';
const received: relay.RelayEvent[] = [];

before(async () => {
  redisServer = await startTestRedis();
  redis = new Redis(redisServer.url, { maxRetriesPerRequest: null });
  queue = new Queue(GENERATION_QUEUE_NAME, { connection: redis, prefix: keys.bullPrefix });
  relayServer = await startRecordingRelay((event) => received.push(event));
  relayAddress = relayServer.address;
  worker = spawn(process.execPath, [join(__dirname, 'main.js')], {
    env: { ...process.env, REDIS_URL: redisServer.url, REDIS_PREFIX: keys.prefix, MODEL: stories260kDir(), WORKER_ID: 'w-validate', METRICS_HOST: '127.0.0.1', METRICS_PORT: String(await freePort()), NUM_THREADS: '1', LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  worker.stdout?.on('data', (d: Buffer) => (workerOutput += d.toString()));
  worker.stderr?.on('data', (d: Buffer) => (workerOutput += d.toString()));
  await waitFor(async () => (await redis.exists(keys.workerHeartbeat('w-validate'))) === 1, 30_000, 'the worker heartbeat');
});

after(async () => {
  worker.kill('SIGKILL');
  relayServer.close();
  await queue.close();
  const leftover = await redis.keys(`${keys.prefix}:*`);
  if (leftover.length > 0) await redis.del(...leftover);
  await redis.quit();
  await redisServer.stop();
});

function goodRequest(requestId: string): GenerationJobRequest {
  return {
    requestId,
    promptTokenIds: [1, 403, 407],
    maxNewTokens: 6,
    sampling: { temperature: 0, topK: 0, topP: 1, seed: 1 },
    stopTokenIds: [],
    stopStrings: [],
    attention: { mode: 'full', topN: 64, denseLayers: 0, renormalize: false },
    priority: 0,
    logprobs: false,
  };
}

async function add(jobId: string, data: unknown): Promise<Job> {
  return queue.add(GENERATION_JOB_NAME, data, { jobId, attempts: 3 });
}

async function settled(jobId: string): Promise<{ state: string; failedReason: string; attemptsMade: number }> {
  let job: Job | undefined;
  await waitFor(async () => {
    job = await queue.getJob(jobId);
    const state = await job?.getState();
    return state === 'failed' || state === 'completed';
  }, 10_000, `job ${jobId} to settle\n${workerOutput}`);
  job = await queue.getJob(jobId); // the copy read while waiting may predate the failure
  return { state: await job!.getState(), failedReason: job!.failedReason, attemptsMade: job!.attemptsMade };
}

describe('job data from the queue', () => {
  const envelope = (request: unknown, extra: object = {}) => ({ request, relayAddress, submissionId: randomUUID(), relayCapability: newRelayCapability(), deadlineUnixMs: null, ...extra });
  // Data is built when a test runs, once the relay address is known.
  const bad: Array<[string, string, () => unknown, RegExp]> = [
    ['token ids of the wrong type', 'bad-type', () => envelope({ ...goodRequest('bad-type'), promptTokenIds: 'abc' }), /at request\.promptTokenIds/],
    ['a huge max_new_tokens', 'bad-huge', () => envelope({ ...goodRequest('bad-huge'), maxNewTokens: 1e12 }), /at request\.maxNewTokens/],
    ['a missing field', 'bad-missing', () => envelope((({ sampling: _s, ...rest }) => rest)(goodRequest('bad-missing'))), /at request\.sampling/],
    ['a conversation instead of token ids', 'bad-chat', () => envelope({ ...(({ promptTokenIds: _p, ...rest }) => rest)(goodRequest('bad-chat')), messages: [{ role: 'user', content: 'hi' }] }), /at request\.promptTokenIds/],
    ['an unknown field', 'bad-unknown', () => envelope({ ...goodRequest('bad-unknown'), admin: true }), /at request: .*admin/],
    ['a job id that is not its request id', 'bad-id', () => envelope(goodRequest('someone-else')), /request\.requestId: does not match the job id/],
    ['a relay address that is not host:port', 'bad-relay', () => ({ ...envelope(goodRequest('bad-relay')), relayAddress: 'http://evil/x' }), /at relayAddress/],
    ['no data at all', 'bad-null', () => null, /at \(root\)/],
  ];
  for (const [what, requestId, data, reason] of bad) {
    it(`${what}: fails at once without retries, and nothing goes to its relay address`, async () => {
      const jobId = generationJobId(requestId);
      await add(jobId, data());
      const result = await settled(jobId);
      assert.equal(result.state, 'failed');
      assert.match(result.failedReason, /^invalid job data at /);
      assert.match(result.failedReason, reason);
      assert.equal(result.attemptsMade, 1, 'unrecoverable: no retry');
      assert.deepEqual(received.filter((e) => e.requestId === requestId || e.requestId === 'someone-else'), []);
    });
  }

  it('the worker is still alive and runs a good job', async () => {
    assert.equal(worker.exitCode, null);
    await add(generationJobId('good'), envelope(goodRequest('good')));
    await waitFor(() => received.some((e) => e.requestId === 'good' && e.event?.$case === 'finished'), 10_000, `the good job's finish\n${workerOutput}`);
    assert.equal(received.filter((e) => e.requestId === 'good' && e.event?.$case === 'token').length, 6);
  });
});
