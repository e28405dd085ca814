import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { status as Status } from '@grpc/grpc-js';
import { stories260kDir } from '@kcache-serve/kcache';
import { FinishReason, GenerateRequest } from '@kcache-serve/proto';
import { collectStream, fetchMetric, ServingCluster, waitFor } from '@kcache-serve/proto/dist/testing';

let cluster: ServingCluster;

before(async () => {
  cluster = await ServingCluster.start({ model: stories260kDir(), numWorkers: 0, gatewayEnv: { MAX_QUEUED_REQUESTS: '2' } });
});

after(async () => {
  await cluster?.stop();
});

const request: Partial<GenerateRequest> = { prompt: 'Once upon a time', maxNewTokens: 500, sampling: { temperature: 1, seed: 3 } };

describe('without workers', () => {
  it('/readyz is 503 while no worker heartbeat exists', async () => {
    const response = await fetch(`${cluster.httpUrl}/readyz`);
    assert.equal(response.status, 503);
    assert.deepEqual(await response.json(), { isReady: false, isRedisReachable: true, numWorkers: 0, isAccepting: true });
  });

  it('a full queue answers RESOURCE_EXHAUSTED at once; deadlines end queued requests with no job left', async () => {
    const client = cluster.client();
    const queue = cluster.queue();
    const queued = [collectStream(client, request, 1500), collectStream(client, request, 1500)];
    await waitFor(async () => (await queue.getPrioritizedCount()) === 2, 2000, 'two queued jobs');
    const startedAt = Date.now();
    const rejected = await collectStream(client, request, 1500);
    assert.equal(rejected.error?.code, Status.RESOURCE_EXHAUSTED);
    assert.ok(Date.now() - startedAt < 500, 'rejected at once');
    for (const result of await Promise.all(queued)) assert.equal(result.error?.code, Status.DEADLINE_EXCEEDED);
    await waitFor(async () => (await queue.getPrioritizedCount()) + (await queue.getWaitingCount()) === 0, 2000, 'the jobs to be removed');
    assert.match(await (await fetch(`${cluster.httpUrl}/metrics`)).text(), /kcache_gateway_requests_total\{transport="grpc",status="RESOURCE_EXHAUSTED"\} 1/);
  });

  it('Cancel of a queued request ends its stream CANCELLED and removes the job', async () => {
    const client = cluster.client();
    const queue = cluster.queue();
    const streamed = collectStream(client, { ...request, requestId: 'queued-cancel' }, 5000);
    await waitFor(async () => (await queue.getJob('gen-queued-cancel')) !== undefined, 2000, 'the queued job');
    const response = await new Promise<{ cancelled: boolean }>((resolve, reject) =>
      client.cancel({ requestId: 'queued-cancel' }, (error, r) => (error ? reject(error) : resolve(r))),
    );
    assert.equal(response.cancelled, true);
    const result = await streamed;
    assert.equal(result.error, null);
    assert.equal(result.final?.finishReason, FinishReason.FINISH_REASON_CANCELLED);
    assert.deepEqual(result.final?.usage, { promptTokens: 5, completionTokens: 0 });
    assert.equal(await queue.getJob('gen-queued-cancel'), undefined);
  });
});

/**
 * Generation must outlast the deadline whatever the machine: the ~110M synthetic model makes a few dozen
 * tokens a second on a CPU, so 500 of them take many seconds, while the first ones arrive well within it.
 */
describe('with a worker on a model slower than the deadline', () => {
  let slowCluster: ServingCluster;

  before(async () => {
    slowCluster = await ServingCluster.start({ model: 'synthetic:llama-110m', numWorkers: 0 });
  });

  after(async () => {
    await slowCluster?.stop();
  });

  it('a deadline during generation → DEADLINE_EXCEEDED after some tokens, the sequence is freed and the job gone', async () => {
    const worker = await slowCluster.startWorker();
    await slowCluster.waitUntilReady();
    const deadlineMs = 3000;
    const result = await collectStream(slowCluster.client(), { ...request, requestId: 'late' }, deadlineMs);
    assert.equal(result.error?.code, Status.DEADLINE_EXCEEDED);
    assert.ok(result.tokens.length > 0 && result.tokens.length < 500, `the deadline fell mid-generation (${result.tokens.length} tokens)`);
    const queue = slowCluster.queue();
    await waitFor(async () => (await queue.getJob('gen-late')) === undefined, 5000, 'the job to end');
    await waitFor(async () => (await fetchMetric(worker.metricsUrl, 'kcache_worker_running_sequences')) === 0, 5000, 'the sequence to be freed');
    assert.deepEqual(await queue.getJobCounts('wait', 'prioritized', 'active', 'failed'), { wait: 0, prioritized: 0, active: 0, failed: 0 });
  });
});
