import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { after, before, describe, it } from 'node:test';
import { Metadata, ServiceError, status as Status } from '@grpc/grpc-js';
import { stories260kDir } from '@kcache-serve/kcache';
import { ServingCluster, waitFor } from '@kcache-serve/proto/dist/testing';

/**
 * Calls that need Redis while it is away (killed, or frozen with SIGSTOP): /metrics answers at once with
 * what the gateway knows, the queue depth marked stale; Cancel answers UNAVAILABLE instead of waiting for
 * the client's deadline.
 */
let cluster: ServingCluster;

before(async () => {
  // Its own Redis (append-only), to kill and freeze.
  cluster = await ServingCluster.start({ model: stories260kDir(), numWorkers: 0, redis: { isAppendOnly: true } });
});

after(async () => {
  await cluster?.stop();
});

async function timedMetrics(): Promise<{ ms: number; status: number; body: string }> {
  const startedAt = performance.now();
  const { status, body } = await cluster.httpGet('/metrics');
  return { ms: performance.now() - startedAt, status, body };
}

function timedCancel(): Promise<{ ms: number; error: ServiceError | null }> {
  const startedAt = performance.now();
  return new Promise((resolve) =>
    cluster.client().cancel({ requestId: 'some-request' }, new Metadata(), { deadline: Date.now() + 15_000 }, (error) => resolve({ ms: performance.now() - startedAt, error })),
  );
}

const staleOf = (body: string): string | undefined => /^kcache_gateway_queue_depth_stale (\S+)$/m.exec(body)?.[1];

describe('while Redis is away', () => {
  it('Redis up: metrics are fresh, the queue depth read', async () => {
    const metrics = await timedMetrics();
    assert.equal(metrics.status, 200);
    assert.equal(staleOf(metrics.body), '0');
    assert.match(metrics.body, /^kcache_gateway_queue_depth 0$/m);
  });

  it('Redis killed: /metrics answers at once, queue depth stale; Cancel UNAVAILABLE at once', async () => {
    const restarted = cluster.redis.restart({ signal: 'SIGKILL', downMs: 4000 });
    try {
      await waitFor(async () => staleOf((await timedMetrics()).body) === '1', 3000, 'the gateway to notice Redis is gone');
      const metrics = await timedMetrics();
      assert.equal(metrics.status, 200);
      assert.ok(metrics.ms < 300, `/metrics took ${metrics.ms.toFixed(0)} ms`);
      assert.equal(staleOf(metrics.body), '1');
      assert.match(metrics.body, /^kcache_gateway_queue_depth 0$/m, 'the last depth read');
      assert.match(metrics.body, /^kcache_gateway_active_streams 0$/m, 'what the process knows itself');
      const cancel = await timedCancel();
      assert.equal(cancel.error?.code, Status.UNAVAILABLE, cancel.error?.details);
      assert.match(cancel.error?.details ?? '', /Redis/);
      assert.ok(cancel.ms < 300, `Cancel took ${cancel.ms.toFixed(0)} ms`);
    } finally {
      await restarted;
    }
    await waitFor(async () => staleOf((await timedMetrics()).body) === '0', 10_000, 'fresh metrics after Redis is back');
  });

  it('Redis frozen (SIGSTOP, connection open): /metrics within 1 s, Cancel UNAVAILABLE within 3 s', async () => {
    const pid = cluster.redis.pid()!;
    process.kill(pid, 'SIGSTOP');
    try {
      const [metrics, cancel] = await Promise.all([timedMetrics(), timedCancel()]);
      assert.equal(metrics.status, 200);
      assert.ok(metrics.ms < 1000, `/metrics took ${metrics.ms.toFixed(0)} ms`);
      assert.equal(staleOf(metrics.body), '1');
      assert.equal(cancel.error?.code, Status.UNAVAILABLE, cancel.error?.details);
      assert.ok(cancel.ms < 3000, `Cancel took ${cancel.ms.toFixed(0)} ms`);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    await waitFor(async () => staleOf((await timedMetrics()).body) === '0', 10_000, 'fresh metrics after Redis thaws');
  });
});
