import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  ChannelCredentials,
  Client,
  ClientDuplexStream,
  credentials,
  loadPackageDefinition,
  makeGenericClientConstructor,
  status as Status,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { service as healthService } from 'grpc-health-check';
import { createEngine, generate, LlmEngine, GenerationRequest } from '@kcache-serve/kcache';
import { stories260kDir } from '@kcache-serve/kcache/testing';
import { AttentionMode, FinishReason, GenerateRequest } from '@kcache-serve/proto';
import { collectStream, fetchMetric, ServingCluster, waitFor } from '@kcache-serve/proto/dist/testing';

const MODEL = stories260kDir();
/** The gateway's defaults for unset attention fields (config/gateway-config.ts). */
const DEFAULT_ATTENTION = { mode: 'full', topN: 64, denseLayers: 0, renormalize: false } as const;

interface CompletionJson {
  choices: Array<{ text: string; finish_reason: string | null }>;
  usage?: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
}

let cluster: ServingCluster;
let engine: LlmEngine;

/** The engine request the gateway builds for a text prompt, run directly in this process. */
function referenceRequest(requestId: string, prompt: string, maxNewTokens: number, sampling: GenerationRequest['sampling']): GenerationRequest {
  return {
    requestId,
    promptTokenIds: engine.tokenizer.encode(prompt),
    maxNewTokens,
    sampling,
    stopTokenIds: [],
    stopStrings: [],
    attention: DEFAULT_ATTENTION,
    priority: 0,
    logprobs: false,
  };
}

before(async () => {
  [cluster, engine] = await Promise.all([ServingCluster.start({ model: MODEL, numWorkers: 1 }), createEngine({ model: MODEL, numThreads: 1 })]);
});

after(async () => {
  await engine?.close();
  await cluster?.stop();
});

describe('Generate over gRPC', () => {
  it('streams the tokens the engine gives for the same seeded request, indices 0..n-1', async () => {
    const sampling = { temperature: 0.8, topK: 0, topP: 0.9, seed: 1234 };
    const streamed = await collectStream(cluster.client(), {
      requestId: 'seeded-1',
      prompt: 'Once upon a time',
      maxNewTokens: 40,
      sampling: { temperature: 0.8, topP: 0.9, seed: 1234 },
    });
    assert.equal(streamed.error, null);
    const expected = await generate(engine, referenceRequest('ref-seeded-1', 'Once upon a time', 40, sampling));
    assert.deepEqual(streamed.tokens.map((t) => t.tokenId), expected.tokenIds);
    assert.deepEqual(streamed.tokens.map((t) => t.index), expected.tokenIds.map((_, i) => i));
    assert.equal(streamed.tokens.map((t) => t.text).join(''), expected.text);
    assert.equal(streamed.requestId, 'seeded-1');
    assert.equal(streamed.final?.finishReason, FinishReason.FINISH_REASON_LENGTH);
    assert.deepEqual(streamed.final?.usage, { promptTokens: expected.finish.promptTokens, completionTokens: 40 });
    assert.ok(streamed.final!.timings!.ttftMs > 0 && streamed.final!.timings!.totalMs >= streamed.final!.timings!.ttftMs);
  });

  it('a request_id still in flight → ALREADY_EXISTS; the first stream is unaffected', async () => {
    const client = cluster.client();
    const request = { requestId: 'twice', prompt: 'Once upon a time', maxNewTokens: 200, sampling: { temperature: 0 } };
    let onFirstToken: () => void = () => undefined;
    const isGenerating = new Promise<void>((resolve) => (onFirstToken = resolve));
    const first = collectStream(client, request, undefined, () => onFirstToken());
    await isGenerating;
    const second = await collectStream(client, request);
    assert.equal(second.error?.code, Status.ALREADY_EXISTS);
    const firstResult = await first;
    assert.equal(firstResult.error, null);
    assert.ok(firstResult.tokens.length > 1);
  });

  it('honours KCACHE attention and returns logprobs when asked', async () => {
    const streamed = await collectStream(cluster.client(), {
      prompt: 'The cat',
      maxNewTokens: 24,
      sampling: { temperature: 0 },
      attention: { mode: AttentionMode.ATTENTION_MODE_KCACHE, topN: 4, denseLayers: 1 },
      logprobs: true,
    });
    assert.equal(streamed.error, null);
    const expected = await generate(engine, {
      ...referenceRequest('ref-kcache', 'The cat', 24, { temperature: 0, topK: 0, topP: 1, seed: 0 }),
      attention: { mode: 'kcache', topN: 4, denseLayers: 1, renormalize: false },
      logprobs: true,
    });
    assert.deepEqual(streamed.tokens.map((t) => t.tokenId), expected.tokenIds);
    assert.deepEqual(streamed.tokens.map((t) => t.logprob), expected.logprobs);
  });

  it('runs 64 concurrent streams, each deterministic, sharing decode batches in the worker', async () => {
    const client = cluster.client();
    const metricsUrl = cluster.workers[0].metricsUrl;
    const tokensBefore = await fetchMetric(metricsUrl, 'kcache_worker_generated_tokens_total');
    const stepsBefore = await fetchMetric(metricsUrl, 'kcache_worker_engine_steps_total');
    const sampling = (i: number) => ({ temperature: 0.9, topK: 40, topP: 1, seed: 1000 + i });
    const prompts = ['Once upon a time', 'The dog', 'Lily and Ben', 'One day'];
    const requests = Array.from({ length: 64 }, (_, i) => ({ i, prompt: prompts[i % prompts.length], maxNewTokens: 24 + (i % 8) }));
    const [streamed, expected] = await Promise.all([
      Promise.all(requests.map(({ i, prompt, maxNewTokens }) => collectStream(client, { prompt, maxNewTokens, sampling: sampling(i) }))),
      Promise.all(requests.map(({ i, prompt, maxNewTokens }) => generate(engine, referenceRequest(`ref-${i}`, prompt, maxNewTokens, sampling(i))))),
    ]);
    for (const [i, stream] of streamed.entries()) {
      assert.equal(stream.error, null, `stream ${i}`);
      assert.deepEqual(stream.tokens.map((t) => t.tokenId), expected[i].tokenIds, `stream ${i}`);
    }
    const numTokens = (await fetchMetric(metricsUrl, 'kcache_worker_generated_tokens_total')) - tokensBefore;
    const numSteps = (await fetchMetric(metricsUrl, 'kcache_worker_engine_steps_total')) - stepsBefore;
    // Streams arrive over a few ms while the engine already steps, so early and late steps hold few
    // sequences: the mean is timing-dependent (7.6 to over 8 seen), the shared batches are not.
    assert.ok(numTokens / numSteps > 4, `tokens per step ${numTokens}/${numSteps}`);
    assert.ok((await fetchMetric(metricsUrl, 'kcache_worker_batch_size_max')) > 8);
  });
});

describe('bad input', () => {
  const base: Partial<GenerateRequest> = { prompt: 'Hello', maxNewTokens: 4 };
  const cases: Array<[string, Partial<GenerateRequest>, string]> = [
    ['empty prompt, no token ids', { prompt: '' }, 'prompt'],
    ['prompt and token ids', { promptTokenIds: [1, 2] }, 'prompt'],
    ['max_new_tokens 0', { maxNewTokens: 0 }, 'max_new_tokens'],
    ['max_new_tokens negative', { maxNewTokens: -3 }, 'max_new_tokens'],
    ['max_new_tokens above context', { maxNewTokens: 100_000 }, 'max_new_tokens'],
    ['prompt longer than context', { prompt: 'once upon a time '.repeat(400) }, 'prompt'],
    ['top_p 0', { sampling: { topP: 0 } }, 'sampling.top_p'],
    ['top_p above 1', { sampling: { topP: 1.5 } }, 'sampling.top_p'],
    ['negative temperature', { sampling: { temperature: -1 } }, 'sampling.temperature'],
    ['unknown attention mode', { attention: { mode: 7 as AttentionMode } }, 'attention.mode'],
    ['top_n 0', { attention: { mode: AttentionMode.ATTENTION_MODE_KCACHE, topN: 0 } }, 'attention.top_n'],
    ['negative dense_layers with the default mode', { attention: { mode: AttentionMode.ATTENTION_MODE_UNSPECIFIED, denseLayers: -2147483648 } }, 'attention.dense_layers'],
    ['token id outside vocab', { prompt: '', promptTokenIds: [1, 512] }, 'prompt_token_ids'],
    ['negative token id', { prompt: '', promptTokenIds: [-1] }, 'prompt_token_ids'],
    ['stop token id outside vocab', { stopTokenIds: [100_000] }, 'stop_token_ids'],
    ['bad request_id', { requestId: 'a b' }, 'request_id'],
  ];
  for (const [name, patch, field] of cases) {
    it(`${name} → INVALID_ARGUMENT naming ${field}`, async () => {
      const result = await collectStream(cluster.client(), { ...base, ...patch });
      assert.equal(result.error?.code, Status.INVALID_ARGUMENT, `${name}: ${result.error?.details}`);
      assert.match(result.error!.details, new RegExp(`^${field.replace('.', '\\.')}:`));
    });
  }

  it('a 10 MB prompt → RESOURCE_EXHAUSTED, and the gateway keeps serving', async () => {
    const result = await collectStream(cluster.client(), { ...base, prompt: 'a'.repeat(10 * 1024 * 1024) });
    assert.equal(result.error?.code, Status.RESOURCE_EXHAUSTED);
    const ok = await collectStream(cluster.client(), base);
    assert.equal(ok.error, null);
  });

  it('a chat request to a model without a chat template → INVALID_ARGUMENT / 400 saying so, and the gateway keeps serving', async () => {
    const messages = [{ role: 'user', content: 'Tell me a story.' }];
    const result = await collectStream(cluster.client(), { messages, maxNewTokens: 4 });
    assert.equal(result.error?.code, Status.INVALID_ARGUMENT);
    assert.equal(result.error!.details, 'messages: the model has no chat template; send prompt or prompt_token_ids instead');
    for (const stream of [false, true]) {
      const response = await fetch(`${cluster.httpUrl}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messages, max_tokens: 4, stream }) });
      assert.equal(response.status, 400);
      const json = (await response.json()) as { error: { message: string; param: string } };
      assert.deepEqual(json.error, { message: 'messages: the model has no chat template; send prompt or prompt_token_ids instead', type: 'invalid_request_error', param: 'messages', code: 'invalid_argument' });
    }
    assert.equal((await collectStream(cluster.client(), base)).error, null);
  });

  it('leaves no job behind', async () => {
    const counts = await cluster.queue().getJobCounts('wait', 'prioritized', 'active', 'delayed', 'failed');
    assert.deepEqual(counts, { wait: 0, prioritized: 0, active: 0, delayed: 0, failed: 0 });
  });
});

describe('cancel and disconnect', () => {
  const longRequest = (requestId: string): Partial<GenerateRequest> => ({
    requestId,
    prompt: 'Once upon a time',
    maxNewTokens: 500,
    sampling: { temperature: 1, seed: 5 },
  });
  const runningSequences = () => fetchMetric(cluster.workers[0].metricsUrl, 'kcache_worker_running_sequences');

  it('Cancel ends the stream CANCELLED and frees the sequence', async () => {
    const client = cluster.client();
    const streamed = collectStream(client, longRequest('to-cancel'));
    await waitFor(async () => (await runningSequences()) === 1, 5000, 'the request to run');
    const response = await new Promise<{ cancelled: boolean }>((resolve, reject) =>
      client.cancel({ requestId: 'to-cancel' }, (error, r) => (error ? reject(error) : resolve(r))),
    );
    assert.equal(response.cancelled, true);
    const result = await streamed;
    assert.equal(result.error, null);
    assert.equal(result.final?.finishReason, FinishReason.FINISH_REASON_CANCELLED);
    assert.ok(result.tokens.length < 500);
    await waitFor(async () => (await runningSequences()) === 0, 2000, 'the sequence to be freed');
  });

  it('Cancel of an unknown id answers cancelled=false', async () => {
    const response = await new Promise<{ cancelled: boolean }>((resolve, reject) =>
      cluster.client().cancel({ requestId: 'never-sent' }, (error, r) => (error ? reject(error) : resolve(r))),
    );
    assert.equal(response.cancelled, false);
  });

  it('a client disconnect stops the generation and removes the job', async () => {
    const client = cluster.client();
    const call = client.generate(GenerateRequest.fromPartial(longRequest('to-drop')));
    call.on('error', () => undefined);
    await new Promise<void>((resolve) => call.once('data', () => resolve()));
    call.cancel();
    await waitFor(async () => (await runningSequences()) === 0, 2000, 'the sequence to be freed');
    const queue = cluster.queue();
    await waitFor(async () => (await queue.getJob('gen-to-drop')) === undefined, 2000, 'the job to be removed');
  });
});

describe('public port extras', () => {
  it('serves grpc.health.v1.Health', async () => {
    const HealthClient = makeGenericClientConstructor(healthService, 'grpc.health.v1.Health');
    const client = new HealthClient(cluster.grpcAddress, credentials.createInsecure());
    try {
      for (const service of ['', 'kcache.v1.Generation']) {
        const response = await new Promise<{ status: string }>((resolve, reject) =>
          client.Check({ service }, (error: Error | null, r: { status: string }) => (error ? reject(error) : resolve(r))),
        );
        assert.equal(response.status, 'SERVING', service);
      }
    } finally {
      client.close();
    }
  });

  it('serves server reflection listing the public services', async () => {
    const reflectionProto = require.resolve('@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto');
    const definitions = loadPackageDefinition(loadSync(reflectionProto));
    type ReflectionClientCtor = new (address: string, creds: ChannelCredentials) => Client & { ServerReflectionInfo(): ClientDuplexStream<object, ReflectionResponse> };
    const reflection = (definitions.grpc as unknown as { reflection: { v1: { ServerReflection: ReflectionClientCtor } } }).reflection.v1.ServerReflection;
    const client = new reflection(cluster.grpcAddress, credentials.createInsecure());
    try {
      const call = client.ServerReflectionInfo();
      const response = await new Promise<ReflectionResponse>((resolve, reject) => {
        call.once('data', resolve);
        call.once('error', reject);
        call.write({ listServices: '' });
      });
      call.end();
      const names = response.listServicesResponse.service.map((s) => s.name);
      assert.ok(names.includes('kcache.v1.Generation'), names.join());
      assert.ok(names.includes('grpc.health.v1.Health'), names.join());
    } finally {
      client.close();
    }
  });
});

interface ReflectionResponse {
  listServicesResponse: { service: Array<{ name: string }> };
}

describe('HTTP', () => {
  it('/healthz, /readyz and /metrics answer', async () => {
    assert.equal((await fetch(`${cluster.httpUrl}/healthz`)).status, 200);
    const ready = await fetch(`${cluster.httpUrl}/readyz`);
    assert.equal(ready.status, 200);
    assert.equal(((await ready.json()) as { numWorkers: number }).numWorkers, 1);
    const metrics = await (await fetch(`${cluster.httpUrl}/metrics`)).text();
    for (const name of ['kcache_gateway_requests_total', 'kcache_gateway_queue_depth', 'kcache_gateway_ttft_seconds_bucket', 'kcache_gateway_inter_token_seconds_bucket', 'kcache_gateway_tokens_total', 'kcache_gateway_active_streams']) {
      assert.ok(metrics.includes(name), name);
    }
    assert.match(metrics, /kcache_gateway_requests_total\{transport="grpc",status="OK",finish_reason="(?:length|stop|eos)",model="[^"]+"\} [1-9]/);
    assert.match(metrics, /kcache_gateway_requests_total\{transport="grpc",status="INVALID_ARGUMENT",finish_reason="error",model="[^"]+"\} [1-9]/);
  });

  const body = { prompt: 'Once upon a time', max_tokens: 16, temperature: 0.7, seed: 99 };

  it('POST /v1/completions returns the same text as the engine', async () => {
    const response = await fetch(`${cluster.httpUrl}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    assert.equal(response.status, 200);
    const json = (await response.json()) as CompletionJson;
    const expected = await generate(engine, referenceRequest('ref-http', body.prompt, 16, { temperature: 0.7, topK: 0, topP: 1, seed: 99 }));
    assert.equal(json.choices[0].text, expected.text);
    assert.equal(json.choices[0].finish_reason, 'length');
    assert.deepEqual(json.usage, { prompt_tokens: expected.finish.promptTokens, completion_tokens: 16, total_tokens: expected.finish.promptTokens + 16 });
  });

  it('POST /v1/completions with stream: true sends server-sent events ending in [DONE]', async () => {
    const response = await fetch(`${cluster.httpUrl}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...body, stream: true }) });
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /text\/event-stream/);
    const events = (await response.text()).split('\n\n').filter((e) => e.startsWith('data: ')).map((e) => e.slice(6));
    assert.equal(events.at(-1), '[DONE]');
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e) as CompletionJson);
    const expected = await generate(engine, referenceRequest('ref-sse', body.prompt, 16, { temperature: 0.7, topK: 0, topP: 1, seed: 99 }));
    assert.equal(chunks.map((c) => c.choices[0].text).join(''), expected.text);
    assert.equal(chunks.at(-1)?.choices[0].finish_reason, 'length');
  });

  it('POST /v1/completions rejects bad input with 400 naming the field', async () => {
    const response = await fetch(`${cluster.httpUrl}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...body, top_p: 2 }) });
    assert.equal(response.status, 400);
    const json = (await response.json()) as { error: { param: string; message: string } };
    assert.equal(json.error.param, 'top_p');
    assert.match(json.error.message, /^top_p:/);
  });
});
