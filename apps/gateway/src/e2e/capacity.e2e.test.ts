import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { status as Status } from '@grpc/grpc-js';
import { stories260kDir } from '@kcache-serve/kcache/testing';
import { AttentionMode, FinishReason, GenerateRequest } from '@kcache-serve/proto';
import { collectStream, fetchMetric, ServingCluster, waitFor } from '@kcache-serve/proto/dist/testing';

/**
 * A worker whose device tier holds 160 positions of full attention (stories260K: 5 layers · 32 kvDim ·
 * 4 bytes of K and of V = 1280 bytes a position), so a request that may grow past that can never run there.
 */
const DEVICE_CAPACITY_BYTES = 160 * 1280;

let cluster: ServingCluster;

before(async () => {
  cluster = await ServingCluster.start({ model: stories260kDir(), workerEnv: { DEVICE_CAPACITY_BYTES: String(DEVICE_CAPACITY_BYTES) } });
  await cluster.waitUntilReady();
});

after(async () => {
  await cluster?.stop();
});

const request = (requestId: string, maxNewTokens: number): Partial<GenerateRequest> => ({
  requestId,
  prompt: 'Once upon a time',
  maxNewTokens,
  sampling: { temperature: 0 },
  attention: { mode: AttentionMode.ATTENTION_MODE_FULL },
});

describe('a request larger than the worker memory tiers', () => {
  it('ends RESOURCE_EXHAUSTED with a message saying why, is not retried, and the worker keeps serving', async () => {
    const tooBig = await collectStream(cluster.client(), request('too-big', 400), 10_000);
    assert.equal(tooBig.error?.code, Status.RESOURCE_EXHAUSTED, tooBig.error?.details);
    assert.match(tooBig.error?.details ?? '', /needs up to \d+ tokens of KV cache, more than the memory tiers hold/);
    assert.equal(tooBig.tokens.length, 0);

    const fits = await collectStream(cluster.client(), request('fits', 100), 10_000);
    assert.equal(fits.error, null);
    assert.ok(fits.final !== null && [FinishReason.FINISH_REASON_LENGTH, FinishReason.FINISH_REASON_EOS].includes(fits.final.finishReason));
    assert.equal(fits.tokens.length, fits.final.usage?.completionTokens);

    const queue = cluster.queue();
    // The refused job is kept as failed, for an hour, with the reason; it is not retried.
    await waitFor(async () => (await queue.getJob('gen-too-big'))?.finishedOn !== undefined, 3000, 'the refused job to end');
    const refused = await queue.getJob('gen-too-big');
    assert.equal(await refused?.getState(), 'failed');
    assert.match(refused?.failedReason ?? '', /more than the memory tiers hold/);
    assert.equal(refused?.attemptsMade, 1);
    assert.deepEqual(await queue.getJobCounts('wait', 'prioritized', 'active', 'failed'), { wait: 0, prioritized: 0, active: 0, failed: 1 });
    assert.equal(await fetchMetric(cluster.workers[0].metricsUrl, 'kcache_worker_running_sequences'), 0);
    const metrics = await (await fetch(`${cluster.httpUrl}/metrics`)).text();
    assert.match(metrics, /kcache_gateway_requests_total\{transport="grpc",status="RESOURCE_EXHAUSTED",finish_reason="error",model="[^"]+"\} 1\n/);
  });
});
