import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { status as Status } from '@grpc/grpc-js';
import { stories260kDir } from '@kcache-serve/kcache/testing';
import { AttentionMode, FinishReason, GenerateRequest } from '@kcache-serve/proto';
import { collectStream, fetchMetric, ServingCluster, waitFor, WorkerProcess } from '@kcache-serve/proto/dist/testing';

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
    assert.match(await (await fetch(`${cluster.httpUrl}/metrics`)).text(), /kcache_gateway_requests_total\{transport="grpc",status="RESOURCE_EXHAUSTED",finish_reason="error",model="[^"]+"\} 1/);
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
  let worker: WorkerProcess;

  before(async () => {
    slowCluster = await ServingCluster.start({ model: 'synthetic:llama-110m', numWorkers: 0 });
    worker = await slowCluster.startWorker();
    await slowCluster.waitUntilReady();
  });

  after(async () => {
    await slowCluster?.stop();
  });

  it('a deadline during generation → DEADLINE_EXCEEDED after some tokens, the sequence is freed and the job gone', async () => {
    const deadlineMs = 3000;
    const result = await collectStream(slowCluster.client(), { ...request, requestId: 'late' }, deadlineMs);
    assert.equal(result.error?.code, Status.DEADLINE_EXCEEDED);
    assert.ok(result.tokens.length > 0 && result.tokens.length < 500, `the deadline fell mid-generation (${result.tokens.length} tokens)`);
    const queue = slowCluster.queue();
    await waitFor(async () => (await queue.getJob('gen-late')) === undefined, 5000, 'the job to end');
    await waitFor(async () => (await fetchMetric(worker.metricsUrl, 'kcache_worker_running_sequences')) === 0, 5000, 'the sequence to be freed');
    assert.deepEqual(await queue.getJobCounts('wait', 'prioritized', 'active', 'failed'), { wait: 0, prioritized: 0, active: 0, failed: 0 });
  });

  it('worker metrics mid-stream: kcache holds K in the device tier and V in the host tier, full holds both in the device tier', async () => {
    const tierBytesWhileStreaming = async (requestId: string, attention: GenerateRequest['attention']) => {
      const client = slowCluster.client();
      let sampled: Promise<{ device: number; host: number }> | undefined;
      // Sampled at the first token: the sequence is ~6 positions long, well inside its first block.
      // The first request of an attention mode builds that mode's prefill and decode sessions for the ~110M
      // model (3-4 s each here, more on a busy CI machine), so the deadline only guards against a hang.
      const streamed = collectStream(client, { ...request, requestId, attention }, 60_000, () => {
        sampled ??= tierBytesUsed(worker.metricsUrl).finally(() => client.cancel({ requestId }, () => undefined));
      });
      const result = await streamed;
      assert.equal(result.final?.finishReason, FinishReason.FINISH_REASON_CANCELLED, result.error?.details);
      assert.ok(sampled !== undefined, 'a token arrived');
      return sampled;
    };
    const kcache = await tierBytesWhileStreaming('tiers-kcache', { mode: AttentionMode.ATTENTION_MODE_KCACHE, topN: 64 });
    const full = await tierBytesWhileStreaming('tiers-full', { mode: AttentionMode.ATTENTION_MODE_FULL });
    assert.ok(kcache.device > 0 && full.device > 0);
    assert.equal(kcache.host, kcache.device, 'kcache: V in the host tier, as many bytes as K in the device tier');
    assert.equal(full.host, 0, 'full: nothing in the host tier');
    assert.equal(kcache.device * 2, full.device, 'kcache: device-tier bytes exactly half of full');
    await waitFor(async () => (await fetchMetric(worker.metricsUrl, 'kcache_worker_running_sequences')) === 0, 5000, 'the sequences to be freed');
    assert.deepEqual(await tierBytesUsed(worker.metricsUrl), { device: 0, host: 0 });
  });
});

async function tierBytesUsed(metricsUrl: string): Promise<{ device: number; host: number }> {
  const text = await (await fetch(metricsUrl)).text();
  const used = (tier: string) => Number(new RegExp(`^kcache_worker_kv_used_bytes\\{tier="${tier}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? NaN);
  return { device: used('device'), host: used('host') };
}
