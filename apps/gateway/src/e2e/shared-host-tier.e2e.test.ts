import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createEngine, generate } from '@kcache-serve/kcache';
import { stories260kDir } from '@kcache-serve/kcache/testing';
import { AttentionMode } from '@kcache-serve/proto';
import { collectStream, fetchMetric, ServingCluster } from '@kcache-serve/proto/dist/testing';

/**
 * Workers configured with HOST_TIER=shared map one host tier (a file in HOST_TIER_DIR): both attach to it,
 * KCache requests stream the same tokens as the engine with its in-process tier, a repeated prompt hits the
 * prefix index, and the metrics say so.
 */
const MODEL = stories260kDir();
const KCACHE = { mode: AttentionMode.ATTENTION_MODE_KCACHE, topN: 16, denseLayers: 1, renormalize: true };
// 40 tokens or so: two full 16-token blocks to share.
const PROMPT = 'Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her friends every day.';

let cluster: ServingCluster;
let tierDir: string;

before(async () => {
  tierDir = mkdtempSync(join(tmpdir(), 'kcache-tier-'));
  cluster = await ServingCluster.start({
    model: MODEL,
    numWorkers: 2,
    workerEnv: { HOST_TIER: 'shared', HOST_TIER_DIR: tierDir, HOST_TIER_NAME: 'e2e', HOST_CAPACITY_BYTES: String(64 << 20), NUM_THREADS: '1' },
  });
});

after(async () => {
  await cluster?.stop();
  rmSync(tierDir, { recursive: true, force: true });
});

describe('workers on a shared host tier (HOST_TIER=shared)', () => {
  it('both workers attach to one tier file; streams equal the in-process tier; a repeated prompt hits the prefix index', async () => {
    assert.deepEqual(readdirSync(tierDir).filter((f) => f.endsWith('.tier')), ['kcache-e2e.tier']);
    for (const worker of cluster.workers) assert.equal(await fetchMetric(worker.metricsUrl, 'kcache_host_tier_live_workers'), 2, worker.name);

    const client = cluster.client();
    const requests = Array.from({ length: 6 }, (_, i) => ({ requestId: `tier-${i}`, prompt: PROMPT, maxNewTokens: 40, sampling: { temperature: 0.8, seed: 100 + i }, attention: KCACHE }));
    const first = await collectStream(client, requests[0], 60_000);
    const rest = await Promise.all(requests.slice(1).map((r) => collectStream(client, r, 60_000)));
    const results = [first, ...rest];

    const engine = await createEngine({ model: MODEL, numThreads: 1 });
    try {
      for (const [i, result] of results.entries()) {
        assert.equal(result.error, null, `${requests[i].requestId}: ${result.error?.details}`);
        const expected = await generate(engine, {
          requestId: `ref-${i}`,
          promptTokenIds: engine.tokenizer.encode(PROMPT),
          maxNewTokens: 40,
          sampling: { temperature: 0.8, topK: 0, topP: 1, seed: 100 + i },
          stopTokenIds: [],
          stopStrings: [],
          attention: { mode: 'kcache', topN: 16, denseLayers: 1, renormalize: true },
          priority: 0,
          logprobs: false,
        });
        assert.deepEqual(result.tokens.map((t) => t.tokenId), expected.tokenIds, requests[i].requestId);
      }
    } finally {
      await engine.close();
    }

    let hitRate = 0;
    let rowsGathered = 0;
    for (const worker of cluster.workers) {
      const hits = await fetchMetric(worker.metricsUrl, 'kcache_host_tier_prefix_hits_total');
      const lookups = await fetchMetric(worker.metricsUrl, 'kcache_host_tier_prefix_lookups_total');
      assert.ok(hits <= lookups, `${worker.name}: ${hits} hits of ${lookups} lookups`);
      hitRate = Math.max(hitRate, lookups > 0 ? hits / lookups : 0);
      rowsGathered += await fetchMetric(worker.metricsUrl, 'kcache_worker_host_v_rows_gathered_total');
      const capacity = await fetchMetric(worker.metricsUrl, 'kcache_host_tier_capacity_bytes');
      assert.ok(capacity > 60 << 20 && capacity <= 64 << 20, `${worker.name}: capacity ${capacity}`);
    }
    assert.ok(hitRate > 0, `prefix hit rate ${hitRate}`);
    assert.ok(rowsGathered > 0, `V rows gathered ${rowsGathered}`);
  });
});
