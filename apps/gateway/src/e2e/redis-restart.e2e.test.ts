import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { status as Status } from '@grpc/grpc-js';
import { createEngine, generate, GenerationResult, LlmEngine } from '@kcache-serve/kcache';
import { stories260kDir } from '@kcache-serve/kcache/testing';
import { GenerateRequest } from '@kcache-serve/proto';
import { CollectedStream, collectStream, fetchMetric, ServingCluster, waitFor } from '@kcache-serve/proto/dist/testing';

/**
 * Redis (AOF, fsync always) killed with -9 and restarted on the same port while requests are queued and
 * running: queued requests are not lost; running streams complete with the undisturbed tokens or end
 * UNAVAILABLE with a clear message; gateway and worker reconnect by themselves. And when Redis comes back
 * without the data (simulated with FLUSHALL), waiting streams end UNAVAILABLE instead of hanging.
 */
const MODEL = stories260kDir();
const PROMPT = 'Once upon a time';

let cluster: ServingCluster;
let engine: LlmEngine;

before(async () => {
  [cluster, engine] = await Promise.all([
    ServingCluster.start({ model: MODEL, numWorkers: 0, redis: { isAppendOnly: true }, gatewayEnv: { STREAM_CHECK_INTERVAL_MS: '1000' } }),
    createEngine({ model: MODEL, numThreads: 1 }),
  ]);
});

after(async () => {
  await engine?.close();
  await cluster?.stop();
});

const request = (id: string, i: number, maxNewTokens: number): Partial<GenerateRequest> => ({
  requestId: id,
  prompt: PROMPT,
  maxNewTokens,
  sampling: { temperature: 0.9, seed: 300 + i },
});

function reference(r: Partial<GenerateRequest>): Promise<GenerationResult> {
  return generate(engine, {
    requestId: `ref-${r.requestId}`,
    promptTokenIds: engine.tokenizer.encode(PROMPT),
    maxNewTokens: r.maxNewTokens!,
    sampling: { temperature: 0.9, topK: 0, topP: 1, seed: r.sampling!.seed! },
    stopTokenIds: [],
    stopStrings: [],
    attention: { mode: 'full' },
    priority: 0,
    logprobs: false,
  });
}

async function assertUndisturbed(r: Partial<GenerateRequest>, result: CollectedStream): Promise<void> {
  assert.equal(result.error, null, `${r.requestId}: ${result.error?.details}`);
  assert.deepEqual(result.tokens.map((t) => t.tokenId), (await reference(r)).tokenIds, `${r.requestId}: tokens`);
  assert.deepEqual(result.tokens.map((t) => t.index), result.tokens.map((_, i) => i), `${r.requestId}: indices`);
}

describe('Redis restart with AOF', () => {
  it('queued requests survive a kill -9 of Redis and run once a worker comes', async () => {
    const client = cluster.client();
    const queue = cluster.queue();
    const requests = Array.from({ length: 6 }, (_, i) => request(`queued-${i}`, i, 60));
    const streams = requests.map((r) => collectStream(client, r, 60_000));
    await waitFor(async () => (await queue.getPrioritizedCount()) === 6, 5000, 'six queued jobs');

    await cluster.redis.restart({ signal: 'SIGKILL', downMs: 500 });
    await waitFor(async () => (await queue.getPrioritizedCount().catch(() => -1)) === 6, 10_000, 'the six jobs back from the AOF');
    await cluster.startWorker({ MAX_NUM_SEQS: '4' });
    for (const [i, result] of (await Promise.all(streams)).entries()) await assertUndisturbed(requests[i], result);
  });

  it('running streams complete or end UNAVAILABLE with a clear message; everything reconnects', async () => {
    const client = cluster.client();
    const worker = cluster.workers[0];
    const requests = Array.from({ length: 12 }, (_, i) => request(`running-${i}`, 10 + i, 480));
    const counts = new Array<number>(requests.length).fill(0);
    const streams = requests.map((r, i) => collectStream(client, r, 60_000, () => counts[i]++));
    await waitFor(() => counts.filter((c) => c > 0).length >= 4, 10_000, 'four streams generating');

    await cluster.redis.restart({ signal: 'SIGKILL', downMs: 1000 });
    const results = await Promise.all(streams);
    let numCompleted = 0;
    for (const [i, result] of results.entries()) {
      if (result.error === null) {
        await assertUndisturbed(requests[i], result);
        numCompleted++;
      } else {
        assert.equal(result.error.code, Status.UNAVAILABLE, `${requests[i].requestId}: ${result.error.code} ${result.error.details}`);
        assert.match(result.error.details, /Redis|queue/);
      }
    }
    assert.ok(numCompleted >= 1, 'some streams completed');

    // Both reconnected: readiness, a fresh request end to end, and an empty queue.
    await cluster.waitUntilReady();
    await assertUndisturbed(request('after-restart', 99, 40), await collectStream(client, request('after-restart', 99, 40), 20_000));
    const queue = cluster.queue();
    await waitFor(async () => (await queue.getActiveCount()) + (await queue.getPrioritizedCount()) === 0, 10_000, 'the queue to drain');
    assert.equal(await fetchMetric(worker.metricsUrl, 'kcache_worker_running_sequences'), 0);
    assert.equal(worker.child.exitCode, null);
    assert.equal(cluster.gateway.child.exitCode, null);
    console.log(`redis restart: ${numCompleted} of ${requests.length} running/queued streams completed, ${requests.length - numCompleted} ended UNAVAILABLE`);
  });

  it('requests while Redis is down are refused UNAVAILABLE at once, not held', async () => {
    const restarting = cluster.redis.restart({ signal: 'SIGKILL', downMs: 1500 });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const startedAt = Date.now();
    const refused = await collectStream(cluster.client(), request('while-down', 1, 10), 10_000);
    assert.equal(refused.error?.code, Status.UNAVAILABLE, refused.error?.details);
    assert.match(refused.error!.details, /the queue \(Redis\) is unreachable; nothing was queued/);
    assert.ok(Date.now() - startedAt < 1000, 'refused at once');
    await restarting;
    await cluster.waitUntilReady();
  });

  it('a job lost by Redis (FLUSHALL) ends its stream UNAVAILABLE instead of leaving it waiting', async () => {
    const worker = cluster.workers[0];
    worker.child.kill('SIGTERM');
    await worker.exited;
    const client = cluster.client();
    const queue = cluster.queue();
    const streams = [0, 1, 2].map((i) => collectStream(client, request(`lost-${i}`, i, 20), 30_000));
    await waitFor(async () => (await queue.getPrioritizedCount()) === 3, 5000, 'three queued jobs');
    await cluster.redisClient().flushall();
    const startedAt = Date.now();
    for (const result of await Promise.all(streams)) {
      assert.equal(result.error?.code, Status.UNAVAILABLE);
      assert.match(result.error!.details, /lost by the queue/);
    }
    assert.ok(Date.now() - startedAt < 5000, 'ended within a few check intervals');
  });
});
