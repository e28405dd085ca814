import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createEngine, generate, GenerationResult, LlmEngine } from '@kcache-serve/kcache';
import { stories260kDir } from '@kcache-serve/kcache/testing';
import { FinishReason, GenerateRequest } from '@kcache-serve/proto';
import {
  CollectedStream,
  collectStream,
  fetchMetric,
  ServingCluster,
  WorkerProcess,
} from '@kcache-serve/proto/dist/testing';

const MODEL = stories260kDir();
const PROMPT = 'Once upon a time';
const NUM_STREAMS = 8;
const MAX_NEW_TOKENS = 400;

let cluster: ServingCluster;
let engine: LlmEngine;
let expected: GenerationResult[];

const sampling = (i: number) => ({ temperature: 0.8, topK: 0, topP: 1, seed: 500 + i });
const streamRequest = (i: number, tag: string): Partial<GenerateRequest> => ({
  requestId: `${tag}-${i}`,
  prompt: PROMPT,
  maxNewTokens: MAX_NEW_TOKENS,
  sampling: sampling(i),
});

before(async () => {
  [cluster, engine] = await Promise.all([
    ServingCluster.start({ model: MODEL, numWorkers: 2 }),
    createEngine({ model: MODEL, numThreads: 1 }),
  ]);
  expected = await Promise.all(
    Array.from({ length: NUM_STREAMS }, (_, i) =>
      generate(engine, {
        requestId: `ref-${i}`,
        promptTokenIds: engine.tokenizer.encode(PROMPT),
        maxNewTokens: MAX_NEW_TOKENS,
        sampling: sampling(i),
        stopTokenIds: [],
        stopStrings: [],
        attention: { mode: 'full' },
        priority: 0,
        logprobs: false,
      }),
    ),
  );
  await engine.close();
});

after(async () => {
  await cluster?.stop();
});

/** The worker holding most active jobs (BullMQ records the worker name on each job it takes). */
async function busiestWorker(): Promise<WorkerProcess> {
  const active = await cluster.queue().getActive();
  const byName = new Map<string, number>();
  for (const job of active) byName.set(job.processedBy ?? '', (byName.get(job.processedBy ?? '') ?? 0) + 1);
  const [name] = [...byName].sort((a, b) => b[1] - a[1])[0] ?? [''];
  const worker = cluster.workers.find((w) => w.name === name);
  assert.ok(worker, `a worker holding jobs (active: ${JSON.stringify([...byName])})`);
  return worker;
}

/** Starts the streams; `warmedUp` resolves once each has received minTokens (or ended). */
function startStreams(tag: string, minTokens: number): { results: Promise<CollectedStream[]>; warmedUp: Promise<void> } {
  const client = cluster.client();
  const counts = new Array<number>(NUM_STREAMS).fill(0);
  let onWarm: () => void = () => undefined;
  const warmedUp = new Promise<void>((resolve) => (onWarm = resolve));
  const progress = (i: number, count: number) => {
    counts[i] = count;
    if (counts.every((c) => c >= minTokens)) onWarm();
  };
  const results = Promise.all(
    Array.from({ length: NUM_STREAMS }, async (_, i) => {
      const result = await collectStream(client, streamRequest(i, tag), 60_000, () => progress(i, counts[i] + 1));
      progress(i, Infinity);
      return result;
    }),
  );
  return { results, warmedUp };
}

function assertMatchesUndisturbedRun(results: CollectedStream[]): void {
  for (const [i, stream] of results.entries()) {
    assert.equal(stream.error, null, `stream ${i}: ${stream.error?.details}`);
    assert.deepEqual(stream.tokens.map((t) => t.index), stream.tokens.map((_, k) => k), `stream ${i} indices`);
    assert.deepEqual(stream.tokens.map((t) => t.tokenId), expected[i].tokenIds, `stream ${i} tokens`);
    assert.equal(stream.tokens.map((t) => t.text).join(''), expected[i].text);
    assert.notEqual(stream.final?.finishReason, FinishReason.FINISH_REASON_CANCELLED);
  }
}

describe('worker failure', () => {
  it('kill -9 of a worker mid-stream: every stream completes with the undisturbed tokens', async () => {
    const { results, warmedUp } = startStreams('crash', 10);
    await warmedUp;
    const victim = await busiestWorker();
    const survivor = cluster.workers.find((w) => w !== victim)!;
    victim.child.kill('SIGKILL');
    const streams = await results;
    assertMatchesUndisturbedRun(streams);
    // The survivor resumed from the delivered tokens instead of generating the lost streams from scratch.
    const numTokensSeen = streams.reduce((sum, s) => sum + s.tokens.length, 0);
    const survivorTokens = await fetchMetric(survivor.metricsUrl, 'kcache_worker_generated_tokens_total');
    assert.ok(survivorTokens < numTokensSeen, `survivor generated ${survivorTokens} of ${numTokensSeen}`);
    assert.deepEqual(await cluster.queue().getJobCounts('active', 'wait', 'prioritized', 'failed'), { active: 0, wait: 0, prioritized: 0, failed: 0 });
  });

  it('SIGTERM lets a worker finish its streams and exit 0', async () => {
    await cluster.startWorker();
    const { results, warmedUp } = startStreams('drain', 5);
    await warmedUp;
    const draining = await busiestWorker();
    draining.child.kill('SIGTERM');
    assertMatchesUndisturbedRun(await results);
    assert.equal(await draining.exited, 0);
    assert.equal(await cluster.redisClient().exists(cluster.keys.workerHeartbeat(draining.name)), 0);
  });
});

describe('gateway shutdown', () => {
  it('SIGTERM lets open streams finish, then the gateway exits 0', async () => {
    const { results, warmedUp } = startStreams('gw-drain', 5);
    await warmedUp;
    cluster.gateway.child.kill('SIGTERM');
    assertMatchesUndisturbedRun(await results);
    assert.equal(await cluster.gateway.exited, 0);
  });
});

