import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { after, before, describe, it } from 'node:test';
import { Metadata, ServiceError, status as Status } from '@grpc/grpc-js';
import { stories260kDir } from '@kcache-serve/kcache/testing';
import { FinishReason, GenerateRequest } from '@kcache-serve/proto';
import { collectStream, ServingCluster, waitFor } from '@kcache-serve/proto/dist/testing';

/**
 * Calls that need Redis while it is away (killed, or frozen with SIGSTOP): /metrics answers at once with
 * what the gateway knows, the queue depth marked stale; Cancel answers UNAVAILABLE instead of waiting for
 * the client's deadline. Generation already running keeps streaming through an outage (tokens travel over
 * gRPC; the worker records them in Redis asynchronously), and nothing is lost or repeated.
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

describe('generation during a Redis outage', () => {
  it('running streams keep receiving tokens while Redis is frozen for 3 s; the same tokens as undisturbed runs', async () => {
    await cluster.startWorker();
    await cluster.waitUntilReady();
    const OUTAGE_MS = 3000;
    const requests = Array.from({ length: 4 }, (_, i): Partial<GenerateRequest> => ({ requestId: `outage-${i}`, prompt: 'Once upon a time', maxNewTokens: 500, sampling: { temperature: 0.8, seed: 40 + i } }));
    const arrivals: number[][] = requests.map(() => []);
    let frozenAt = 0;
    let thawedAt = 0;
    const pid = cluster.redis.pid()!;
    const client = cluster.client();
    const streams = requests.map((r, i) =>
      collectStream(client, r, 120_000, () => {
        arrivals[i].push(performance.now());
        // Freeze once every stream is generating.
        if (frozenAt === 0 && arrivals.every((a) => a.length >= 5)) {
          frozenAt = performance.now();
          process.kill(pid, 'SIGSTOP');
          setTimeout(() => {
            process.kill(pid, 'SIGCONT');
            thawedAt = performance.now();
          }, OUTAGE_MS);
        }
      }),
    );
    const results = await Promise.all(streams);
    if (thawedAt === 0) await new Promise((resolve) => setTimeout(resolve, OUTAGE_MS));
    assert.ok(frozenAt > 0, 'the outage happened');
    // Report: tokens received during the outage, and each stream's longest gap between tokens then.
    const report = arrivals.map((times, i) => {
      const during = times.filter((t) => t >= frozenAt && t <= frozenAt + OUTAGE_MS);
      let longestGapMs = 0;
      for (let k = 1; k < times.length; k++) if (times[k] >= frozenAt && times[k - 1] <= frozenAt + OUTAGE_MS) longestGapMs = Math.max(longestGapMs, times[k] - times[k - 1]);
      const finishedMs = (times.at(-1) ?? 0) - frozenAt;
      return { stream: i, tokens: times.length, duringOutage: during.length, longestGapMs: Math.round(longestGapMs), lastTokenAfterFreezeMs: Math.round(finishedMs) };
    });
    console.log(`redis outage of ${OUTAGE_MS} ms during generation:\n${report.map((r) => JSON.stringify(r)).join('\n')}`);
    for (const [i, result] of results.entries()) {
      assert.equal(result.error, null, result.error?.details);
      assert.deepEqual(result.tokens.map((t) => t.index), result.tokens.map((_, k) => k), 'indices 0..n-1, none lost or repeated');
      assert.ok([FinishReason.FINISH_REASON_LENGTH, FinishReason.FINISH_REASON_EOS].includes(result.final!.finishReason));
      // Every stream kept receiving tokens through the outage: none waited anywhere near its length.
      assert.ok(report[i].duringOutage > 0 && report[i].longestGapMs < OUTAGE_MS / 2, JSON.stringify(report[i]));
    }
    for (const [i, r] of requests.entries()) {
      const undisturbed = await collectStream(client, { ...r, requestId: `${r.requestId}-again` }, 60_000);
      assert.deepEqual(results[i].tokens.map((t) => t.tokenId), undisturbed.tokens.map((t) => t.tokenId), `stream ${i}: the undisturbed tokens`);
    }
  });
});
