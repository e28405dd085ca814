import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { status as Status } from '@grpc/grpc-js';
import { createEngine, FULL_ATTENTION, generate, loadModel } from '@kcache-serve/kcache';
import { stories260kDir } from '@kcache-serve/kcache/testing';
import { collectStream, fetchMetric, ServingCluster, waitFor } from '@kcache-serve/proto/dist/testing';

/**
 * The gateway dies (kill -9) with streams open: its clients get UNAVAILABLE at once, and the workers,
 * whose relay calls now fail, stop the orphaned sequences within RELAY_TIMEOUT_MS (plus a step and the
 * failed finish) and free their KV memory, staying healthy.
 */
const RELAY_TIMEOUT_MS = 1500;
const NUM_STREAMS = 32;
const PROMPT = 'Once upon a time';
const MAX_NEW_TOKENS = 480;
/** A stream must still be generating when the gateway dies: its story must not end (EOS) this early. */
const MIN_STORY_TOKENS = 400;

let cluster: ServingCluster;
let seeds: number[];

before(async () => {
  cluster = await ServingCluster.start({ model: stories260kDir(), numWorkers: 1, workerEnv: { RELAY_TIMEOUT_MS: String(RELAY_TIMEOUT_MS) } });
  seeds = await seedsOfLongStories(NUM_STREAMS);
});

/** Sampling seeds whose continuation of PROMPT runs at least MIN_STORY_TOKENS tokens, found with the engine itself. */
async function seedsOfLongStories(count: number): Promise<number[]> {
  const model = loadModel(stories260kDir());
  const engine = await createEngine({ model: stories260kDir(), numThreads: 1 }, model);
  const promptTokenIds = model.tokenizer.encode(PROMPT);
  const found: number[] = [];
  try {
    for (let first = 40; found.length < count; first += 32) {
      const candidates = Array.from({ length: 32 }, (_, i) => first + i);
      const lengths = await Promise.all(
        candidates.map(async (seed) => {
          const request = { requestId: `seed-${seed}`, promptTokenIds, maxNewTokens: MIN_STORY_TOKENS, sampling: { temperature: 1, topK: 0, topP: 1, seed } };
          return (await generate(engine, { ...request, stopTokenIds: [], stopStrings: [], attention: FULL_ATTENTION, priority: 0, logprobs: false })).tokenIds.length;
        }),
      );
      found.push(...candidates.filter((_, i) => lengths[i] === MIN_STORY_TOKENS));
    }
  } finally {
    await engine.close();
  }
  return found.slice(0, count);
}

after(async () => {
  await cluster?.stop();
});

async function usedKvBytes(metricsUrl: string): Promise<number> {
  const text = await (await fetch(metricsUrl)).text();
  return [...text.matchAll(/^kcache_worker_kv_used_bytes\{tier="(?:device|host)"\} (\d+)/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
}

describe('gateway killed', () => {
  it('clients get UNAVAILABLE; the worker frees the orphaned sequences within a bounded time', async () => {
    const worker = cluster.workers[0];
    const client = cluster.client();
    const counts = new Array<number>(NUM_STREAMS).fill(0);
    const streams = Array.from({ length: NUM_STREAMS }, (_, i) =>
      collectStream(client, { prompt: PROMPT, maxNewTokens: MAX_NEW_TOKENS, sampling: { temperature: 1, seed: seeds[i] } }, 60_000, () => counts[i]++),
    );
    await waitFor(() => counts.every((c) => c >= 5), 10_000, 'every stream to have tokens');
    assert.ok(Math.max(...counts) < MIN_STORY_TOKENS, `no stream near its end yet (${Math.max(...counts)} tokens)`);
    assert.equal(await fetchMetric(worker.metricsUrl, 'kcache_worker_running_sequences'), NUM_STREAMS);
    assert.ok((await usedKvBytes(worker.metricsUrl)) > 0);

    cluster.gateway.child.kill('SIGKILL');
    const killedAt = Date.now();
    const results = await Promise.all(streams);
    for (const [i, result] of results.entries()) {
      assert.equal(result.error?.code, Status.UNAVAILABLE, `stream ${i}: ${result.error?.code} ${result.error?.details}`);
      assert.ok(result.tokens.length < MAX_NEW_TOKENS, `stream ${i} was cut`);
    }

    const boundMs = 3 * RELAY_TIMEOUT_MS + 1000;
    await waitFor(async () => (await fetchMetric(worker.metricsUrl, 'kcache_worker_running_sequences')) === 0, boundMs, 'the orphaned sequences to stop');
    const stoppedMs = Date.now() - killedAt;
    await waitFor(async () => (await usedKvBytes(worker.metricsUrl)) === 0, 1000, 'their KV memory to be freed');
    await waitFor(async () => (await fetchMetric(worker.metricsUrl, 'kcache_worker_active_jobs')) === 0, boundMs, 'the jobs to end');
    const queue = cluster.queue();
    await waitFor(async () => (await queue.getActiveCount()) === 0, boundMs, 'no active job left');
    const numGenerated = await fetchMetric(worker.metricsUrl, 'kcache_worker_generated_tokens_total');
    assert.ok(numGenerated < NUM_STREAMS * MAX_NEW_TOKENS, `the sequences were stopped early (${numGenerated} tokens generated)`);
    assert.equal(worker.child.exitCode, null, 'the worker keeps running');
    assert.equal((await fetch(worker.metricsUrl.replace('/metrics', '/healthz'))).status, 200);
    console.log(`gateway kill: ${NUM_STREAMS} streams → UNAVAILABLE; worker stopped them ${stoppedMs} ms after the kill (bound ${boundMs} ms), ${numGenerated} of ${NUM_STREAMS * MAX_NEW_TOKENS} tokens generated`);
  });
});
