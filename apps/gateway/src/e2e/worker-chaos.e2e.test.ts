import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createEngine, generate } from '@kcache-serve/kcache';
import { stories260kDir } from '@kcache-serve/kcache/testing';
import { FinishReason, GenerateRequest } from '@kcache-serve/proto';
import { CollectedStream, collectStream, fetchMetric, ServingCluster, waitFor, WorkerProcess } from '@kcache-serve/proto/dist/testing';

/**
 * kill -9 of a worker mid-stream, 20 times, under steady load: every stream must still deliver exactly
 * the tokens an undisturbed run gives (none lost, none repeated), end normally, and leave nothing behind.
 * Short locks make recovery quick: a dead worker's jobs go back to the queue within ~1.5 s.
 */
const MODEL = stories260kDir();
const NUM_KILLS = Number(process.env.CHAOS_KILLS ?? 20);
const NUM_CLIENTS = 6;
const PROMPTS = ['Once upon a time', 'The little dog', 'Lily and Ben went', 'One day, a big bear'];
const STREAM_DEADLINE_MS = 90_000;

interface Finished {
  readonly request: Partial<GenerateRequest> & { prompt: string; maxNewTokens: number; sampling: { temperature: number; seed: number } };
  readonly result: CollectedStream;
}

let cluster: ServingCluster;

before(async () => {
  cluster = await ServingCluster.start({
    model: MODEL,
    numWorkers: 2,
    workerEnv: { LOCK_DURATION_MS: '1000', STALLED_INTERVAL_MS: '500', MAX_STALLED_COUNT: '100', HEARTBEAT_INTERVAL_MS: '300', HEARTBEAT_TTL_MS: '1000' },
  });
});

after(async () => {
  await cluster?.stop();
});

const isAlive = (w: WorkerProcess) => w.child.exitCode === null && w.child.signalCode === null;

/** The live worker holding most active jobs, and how many it holds. */
async function busiestLiveWorker(): Promise<[WorkerProcess | undefined, number]> {
  const byName = new Map<string, number>();
  for (const job of await cluster.queue().getActive()) byName.set(job.processedBy ?? '', (byName.get(job.processedBy ?? '') ?? 0) + 1);
  let best: [WorkerProcess | undefined, number] = [undefined, 0];
  for (const worker of cluster.workers.filter(isAlive)) {
    const held = byName.get(worker.name) ?? 0;
    if (held > best[1]) best = [worker, held];
  }
  return best;
}

describe('worker kill -9 under load', () => {
  it(`${NUM_KILLS} kills: zero lost or duplicated tokens, zero stuck streams`, async () => {
    const client = cluster.client();
    const finished: Finished[] = [];
    let nextId = 0;
    let isLoading = true;
    const clientLoop = async (): Promise<void> => {
      while (isLoading) {
        const i = nextId++;
        const request = { requestId: `chaos-${i}`, prompt: PROMPTS[i % PROMPTS.length], maxNewTokens: 80 + ((i * 37) % 170), sampling: { temperature: 0.8, seed: 7000 + i } };
        finished.push({ request, result: await collectStream(client, request, STREAM_DEADLINE_MS) });
      }
    };
    const clients = Array.from({ length: NUM_CLIENTS }, clientLoop);

    let numAffected = 0;
    const startedAt = Date.now();
    for (let kill = 0; kill < NUM_KILLS; kill++) {
      let victim: WorkerProcess | undefined;
      let held = 0;
      await waitFor(async () => ([victim, held] = await busiestLiveWorker())[1] >= 2, 20_000, `a worker holding jobs (kill ${kill + 1})`);
      await new Promise((resolve) => setTimeout(resolve, 150)); // let its streams get going
      numAffected += held;
      victim!.child.kill('SIGKILL');
      await victim!.exited;
      await cluster.startWorker();
    }
    isLoading = false;
    await Promise.all(clients);
    const chaosMs = Date.now() - startedAt;

    const engine = await createEngine({ model: MODEL, numThreads: 1 });
    let numTokens = 0;
    try {
      // The engine is batch-invariant and replays resumed tokens by decode, so an undisturbed run is the reference.
      const expected = await inBatches(finished, NUM_CLIENTS, ({ request }) =>
        generate(engine, {
          requestId: `ref-${request.requestId}`,
          promptTokenIds: engine.tokenizer.encode(request.prompt),
          maxNewTokens: request.maxNewTokens,
          sampling: { temperature: request.sampling.temperature, topK: 0, topP: 1, seed: request.sampling.seed },
          stopTokenIds: [],
          stopStrings: [],
          attention: { mode: 'full' },
          priority: 0,
          logprobs: false,
        }),
      );
      for (const [k, { request, result }] of finished.entries()) {
        const what = `${request.requestId}`;
        assert.equal(result.error, null, `${what}: ${result.error?.code} ${result.error?.details}`);
        assert.deepEqual(result.tokens.map((t) => t.index), result.tokens.map((_, i) => i), `${what}: indices`);
        assert.deepEqual(result.tokens.map((t) => t.tokenId), expected[k].tokenIds, `${what}: tokens`);
        assert.notEqual(result.final?.finishReason, FinishReason.FINISH_REASON_CANCELLED, what);
        numTokens += result.tokens.length;
      }
    } finally {
      await engine.close();
    }

    const queue = cluster.queue();
    assert.deepEqual(await queue.getJobCounts('active', 'wait', 'prioritized', 'delayed', 'failed'), { active: 0, wait: 0, prioritized: 0, delayed: 0, failed: 0 });
    for (const worker of cluster.workers.filter(isAlive)) {
      await waitFor(async () => (await fetchMetric(worker.metricsUrl, 'kcache_worker_running_sequences')) === 0, 5000, `${worker.name} to be idle`);
    }
    assert.match(await (await fetch(`${cluster.httpUrl}/metrics`)).text(), /^kcache_gateway_active_streams 0$/m);
    console.log(`worker chaos: ${NUM_KILLS} kills in ${(chaosMs / 1000).toFixed(1)} s, ${numAffected} in-flight jobs on killed workers, ${finished.length} streams, ${numTokens} tokens, 0 lost, 0 duplicated`);
  });
});

/** run over items, at most `size` at a time (in order). */
async function inBatches<T, R>(items: readonly T[], size: number, run: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = [];
  for (let start = 0; start < items.length; start += size) results.push(...(await Promise.all(items.slice(start, start + size).map(run))));
  return results;
}
