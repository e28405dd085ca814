import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import parsePrometheusTextFormat = require('parse-prometheus-text-format');
import { loadModel } from '@kcache-serve/kcache';
import { stories260kDir } from '@kcache-serve/kcache/testing';
import { AttentionMode } from '@kcache-serve/proto';
import { collectStream, ServingCluster } from '@kcache-serve/proto/dist/testing';

/**
 * Both apps' GET /metrics read with a Prometheus text-format parser (parse-prometheus-text-format, which gives
 * prom2json's model; it folds a histogram's labelled series into one, so histogram labels and counts are read
 * from the sample lines themselves), after real traffic:
 * the families people graph, with vLLM's names as the anchor, their types and labels; only counters and
 * gauges that sum across processes (no precomputed rates); and Node's default process metrics.
 */
let cluster: ServingCluster;
let model: string;

before(async () => {
  cluster = await ServingCluster.start({ model: stories260kDir(), numWorkers: 1 });
  model = loadModel(stories260kDir()).name;
  await cluster.waitUntilReady();
  const completion = await fetch(`${cluster.httpUrl}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ prompt: 'Once upon a time', max_tokens: 5, temperature: 0 }),
  });
  assert.equal(completion.status, 200);
  const refused = await fetch(`${cluster.httpUrl}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ prompt: 'Once upon a time', temperature: 3 }),
  });
  assert.equal(refused.status, 400);
  const streamed = await collectStream(cluster.client(), { prompt: 'The cat', maxNewTokens: 4, sampling: { temperature: 0 }, attention: { mode: AttentionMode.ATTENTION_MODE_FULL } });
  assert.equal(streamed.error, null);
});

after(async () => {
  await cluster?.stop();
});

type Families = Map<string, ReturnType<typeof parsePrometheusTextFormat>[number]>;

/** The families of one /metrics answer, by name, and its text; every sample value must be a number. */
async function scrape(url: string): Promise<Families & { text?: string }> {
  const response = await fetch(url);
  assert.match(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const text = await response.text();
  const families = parsePrometheusTextFormat(text);
  const byName: Families = new Map();
  for (const family of families) {
    assert.ok(!byName.has(family.name), `${family.name} appears twice`);
    assert.match(family.name, /^[a-zA-Z_:][a-zA-Z0-9_:]*$/);
    byName.set(family.name, family);
    for (const sample of family.metrics) {
      for (const value of [sample.value, sample.count, sample.sum, ...Object.values(sample.buckets ?? {})]) {
        if (value !== undefined) assert.ok(!Number.isNaN(Number(value)) || /^nan$/i.test(value), `${family.name}: value '${value}'`);
      }
    }
  }
  return Object.assign(byName, { text });
}

function assertFamily(families: Families & { text?: string }, name: string, type: string, labelNames: readonly string[] = []): void {
  const family = families.get(name);
  assert.ok(family, `${name} is missing`);
  assert.equal(family.type, type, name);
  if (type === 'HISTOGRAM') {
    // the series' own lines: name_count{labels} for each label set
    const counts = [...(families.text ?? '').matchAll(new RegExp(`^${name}_count(?:\\{([^}]*)\\})? `, 'gm'))];
    assert.ok(counts.length > 0, `${name}_count is missing`);
    for (const [, labels] of counts) assert.deepEqual([...(labels ?? '').matchAll(/(\w+)="/g)].map((m) => m[1]).sort(), [...labelNames].sort(), `${name} labels`);
    return;
  }
  for (const sample of family.metrics) {
    const labels = Object.keys(sample.labels ?? {}).filter((label) => label !== 'le');
    assert.deepEqual(labels.sort(), [...labelNames].sort(), `${name} labels`);
  }
}

describe('gateway /metrics, parsed', () => {
  it('requests by transport, HTTP status code or gRPC status name, finish reason and model', async () => {
    const families = await scrape(`${cluster.httpUrl}/metrics`);
    assertFamily(families, 'kcache_gateway_requests_total', 'COUNTER', ['transport', 'status', 'finish_reason', 'model']);
    const samples = (families.get('kcache_gateway_requests_total')?.metrics ?? []).map((m): Record<string, string | number> => ({ ...m.labels, value: Number(m.value) }));
    assert.deepEqual(
      samples.map(({ transport, status, finish_reason }) => `${transport} ${status} ${finish_reason}`).sort(),
      ['grpc OK length', 'http 200 length', 'http 400 error'],
    );
    assert.ok(samples.every((s) => s.model === model && s.value === 1), JSON.stringify(samples));
  });

  it('prompt tokens, end-to-end latency, TTFT, inter-token, queue time, tokens, queue depth, and Node defaults', async () => {
    const families = await scrape(`${cluster.httpUrl}/metrics`);
    assertFamily(families, 'kcache_gateway_prompt_tokens_total', 'COUNTER', ['model']);
    assert.ok(Number(families.get('kcache_gateway_prompt_tokens_total')?.metrics[0].value) > 0);
    assertFamily(families, 'kcache_gateway_e2e_request_latency_seconds', 'HISTOGRAM', ['model']);
    assert.match(families.text ?? '', new RegExp(`^kcache_gateway_e2e_request_latency_seconds_count\\{model="${model}"\\} 2$`, 'm'));
    for (const name of ['kcache_gateway_ttft_seconds', 'kcache_gateway_inter_token_seconds', 'kcache_gateway_queue_seconds']) assertFamily(families, name, 'HISTOGRAM');
    assertFamily(families, 'kcache_gateway_tokens_total', 'COUNTER');
    assertFamily(families, 'kcache_gateway_queue_depth', 'GAUGE');
    assertFamily(families, 'process_cpu_seconds_total', 'COUNTER');
    assertFamily(families, 'process_resident_memory_bytes', 'GAUGE');
    assertFamily(families, 'nodejs_eventloop_lag_seconds', 'GAUGE');
  });
});

describe('worker /metrics, parsed', () => {
  it('KV memory used and capacity per tier, the usage ratio, load against capacity, counters for rates', async () => {
    const families = await scrape(cluster.workers[0].metricsUrl);
    assertFamily(families, 'kcache_worker_kv_used_bytes', 'GAUGE', ['tier']);
    assertFamily(families, 'kcache_worker_kv_capacity_bytes', 'GAUGE', ['tier']);
    assertFamily(families, 'kcache_worker_kv_cache_usage_ratio', 'GAUGE', ['tier']);
    for (const sample of families.get('kcache_worker_kv_cache_usage_ratio')?.metrics ?? []) {
      assert.ok(Number(sample.value) >= 0 && Number(sample.value) <= 1, JSON.stringify(sample));
    }
    assertFamily(families, 'kcache_worker_running_sequences', 'GAUGE');
    assertFamily(families, 'kcache_worker_sequence_capacity', 'GAUGE');
    assert.ok(Number(families.get('kcache_worker_sequence_capacity')?.metrics[0].value) >= 1);
    assertFamily(families, 'kcache_worker_generated_tokens_total', 'COUNTER');
    assert.ok(Number(families.get('kcache_worker_generated_tokens_total')?.metrics[0].value) >= 9);
    assertFamily(families, 'process_cpu_seconds_total', 'COUNTER');
    assertFamily(families, 'nodejs_heap_size_used_bytes', 'GAUGE');
  });

  it('no precomputed rates or mixed used/capacity families', async () => {
    const families = await scrape(cluster.workers[0].metricsUrl);
    for (const name of ['kcache_worker_tokens_per_second', 'kcache_host_tier_prefix_hit_rate', 'kcache_worker_tier_bytes', 'kcache_host_tier_bytes']) {
      assert.ok(!families.has(name), `${name} is still served`);
    }
    for (const [name, family] of families) if (family.type === 'COUNTER') assert.match(name, /_total$/);
  });
});
