import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ChannelCredentials, Client, ClientDuplexStream, credentials, loadPackageDefinition, makeGenericClientConstructor, Metadata, status as Status } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { service as healthService } from 'grpc-health-check';
import { stories260kDir } from '@kcache-serve/kcache/testing';
import { GenerateRequest } from '@kcache-serve/proto';
import { bearer, collectStream, fetchMetric, ServingCluster, waitFor } from '@kcache-serve/proto/dist/testing';
import { sha256Hex } from '../auth/api-key';

/**
 * API keys, per-key limits, edge limits and log hygiene against real processes. The gateway and the
 * worker log at debug level; the marker prompt and every key (valid or not) must never show up.
 */
const KEYS = { alpha: 'kc-alpha-SECRETKEY-1f3a', beta: 'kc-beta-SECRETKEY-77c2', gamma: 'kc-gamma-SECRETKEY-0b9e' };
const WRONG_KEY = 'kc-wrong-SECRETKEY-dead';
const MARKER_PROMPT = 'Once upon a time zanzibarquux';
const TOKENS_PER_MINUTE = 1500;

let cluster: ServingCluster;

before(async () => {
  cluster = await ServingCluster.start({
    model: stories260kDir(),
    numWorkers: 1,
    gatewayEnv: {
      AUTH_MODE: 'api-key',
      API_KEY_HASHES: Object.entries(KEYS).map(([name, key]) => `${name}:${sha256Hex(key)}`).join(','),
      METRICS_AUTH: 'protected',
      KEY_MAX_CONCURRENT_STREAMS: '2',
      KEY_MAX_TOKENS_PER_MINUTE: String(TOKENS_PER_MINUTE),
      MAX_PROMPT_BYTES: '2000',
      MAX_REQUEST_BYTES: '65536',
      LOG_LEVEL: 'debug',
    },
    workerEnv: { LOG_LEVEL: 'debug' },
  });
});

after(async () => {
  await cluster?.stop();
});

const short: Partial<GenerateRequest> = { prompt: MARKER_PROMPT, maxNewTokens: 8, sampling: { temperature: 0 } };
const post = (body: unknown, headers: Record<string, string> = {}) =>
  fetch(`${cluster.httpUrl}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
const auth = (key: string) => ({ authorization: `Bearer ${key}` });

function unary<T>(call: (callback: (error: Error | null, response: T) => void) => void): Promise<{ error: (Error & { code?: number }) | null; response?: T }> {
  return new Promise((resolve) => call((error, response) => resolve({ error: error as (Error & { code?: number }) | null, response })));
}

describe('API keys on gRPC', () => {
  it('Generate without a key, with a wrong or malformed one → UNAUTHENTICATED; with a valid key → tokens', async () => {
    const client = cluster.client();
    const basic = new Metadata();
    basic.set('authorization', `Basic ${KEYS.alpha}`);
    const refusals: Array<[string, Metadata]> = [
      ['no key', new Metadata()],
      ['wrong key', bearer(WRONG_KEY)],
      ['not bearer', basic],
    ];
    for (const [what, metadata] of refusals) {
      const result = await collectStream(client, short, 5000, undefined, metadata);
      assert.equal(result.error?.code, Status.UNAUTHENTICATED, what);
    }
    const ok = await collectStream(client, short, 10_000, undefined, bearer(KEYS.alpha));
    assert.equal(ok.error, null, ok.error?.details);
    assert.equal(ok.tokens.length, 8);
  });

  it('Cancel and server reflection need a key; grpc.health.v1.Health is open (HEALTH_AUTH=open)', async () => {
    const client = cluster.client();
    const cancel = await unary<{ cancelled: boolean }>((cb) => client.cancel({ requestId: 'x' }, new Metadata(), cb));
    assert.equal(cancel.error?.code, Status.UNAUTHENTICATED);
    const cancelWithKey = await unary<{ cancelled: boolean }>((cb) => client.cancel({ requestId: 'x' }, bearer(KEYS.beta), cb));
    assert.deepEqual(cancelWithKey.response, { cancelled: false });

    const reflectionProto = require.resolve('@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto');
    type ReflectionCtor = new (address: string, creds: ChannelCredentials) => Client & { ServerReflectionInfo(metadata?: Metadata): ClientDuplexStream<object, object> };
    const definitions = loadPackageDefinition(loadSync(reflectionProto)) as unknown as { grpc: { reflection: { v1: { ServerReflection: ReflectionCtor } } } };
    const reflection = new definitions.grpc.reflection.v1.ServerReflection(cluster.grpcAddress, credentials.createInsecure());
    const code = await new Promise<number | undefined>((resolve) => {
      const call = reflection.ServerReflectionInfo(new Metadata());
      call.on('data', () => resolve(Status.OK));
      call.on('error', (error: Error & { code?: number }) => resolve(error.code));
      call.write({ listServices: '' });
    });
    reflection.close();
    assert.equal(code, Status.UNAUTHENTICATED);

    const HealthClient = makeGenericClientConstructor(healthService, 'grpc.health.v1.Health');
    const health = new HealthClient(cluster.grpcAddress, credentials.createInsecure());
    const checked = await unary<{ status: string }>((cb) => health.Check({ service: '' }, cb));
    health.close();
    assert.equal(checked.response?.status, 'SERVING');
  });

  it('an unknown method is checked for a key first: UNAUTHENTICATED without one, UNIMPLEMENTED with one (unary and streaming)', async () => {
    const passThrough = (bytes: Buffer) => bytes;
    const probe = new Client(cluster.grpcAddress, credentials.createInsecure());
    const unknownUnary = (metadata: Metadata) =>
      unary<Buffer | undefined>((cb) => probe.makeUnaryRequest('/kcache.v1.Generation/NoSuchMethod', passThrough, passThrough, Buffer.alloc(0), metadata, cb));
    const unknownStream = (metadata: Metadata) =>
      new Promise<number | undefined>((resolve) => {
        const call = probe.makeBidiStreamRequest('/kcache.v1.Secret/Probe', passThrough, passThrough, metadata);
        call.on('data', () => undefined);
        call.on('error', (error: Error & { code?: number }) => resolve(error.code));
        call.on('end', () => resolve(Status.OK));
      });
    assert.equal((await unknownUnary(new Metadata())).error?.code, Status.UNAUTHENTICATED);
    assert.equal(await unknownStream(new Metadata()), Status.UNAUTHENTICATED);
    assert.equal((await unknownUnary(bearer(WRONG_KEY))).error?.code, Status.UNAUTHENTICATED);
    const withKey = await unknownUnary(bearer(KEYS.alpha));
    assert.equal(withKey.error?.code, Status.UNIMPLEMENTED);
    assert.match(withKey.error?.message ?? '', /NoSuchMethod/);
    assert.equal(await unknownStream(bearer(KEYS.alpha)), Status.UNIMPLEMENTED);
    probe.close();
  });
});

describe('API keys on HTTP', () => {
  it('POST /v1/completions without a valid key → 401 with WWW-Authenticate, before reading the body', async () => {
    for (const headers of [{}, auth(WRONG_KEY)]) {
      const response = await post({ prompt: MARKER_PROMPT, max_tokens: 4 }, headers);
      assert.equal(response.status, 401);
      assert.equal(response.headers.get('www-authenticate'), 'Bearer');
      assert.deepEqual(await response.json(), { error: { message: Object.keys(headers).length ? 'invalid API key' : 'missing API key: send authorization: Bearer <key> (over HTTP/2 and gRPC a value with leading or trailing whitespace is dropped in transit)', type: 'authentication_error', param: null, code: 'invalid_api_key' } });
    }
    // A body far above MAX_REQUEST_BYTES: still 401, not 413 — the key is checked first.
    const big = await post('x'.repeat(200_000));
    assert.equal(big.status, 401);
    const ok = await post({ prompt: MARKER_PROMPT, max_tokens: 4 }, auth(KEYS.beta));
    assert.equal(ok.status, 200);
  });

  it('/healthz and /readyz are open; /metrics needs a key (METRICS_AUTH=protected) and counts refusals', async () => {
    assert.equal((await fetch(`${cluster.httpUrl}/healthz`)).status, 200);
    assert.equal((await fetch(`${cluster.httpUrl}/readyz`)).status, 200);
    assert.equal((await fetch(`${cluster.httpUrl}/metrics`)).status, 401);
    const metrics = await (await fetch(`${cluster.httpUrl}/metrics`, { headers: auth(KEYS.alpha) })).text();
    assert.match(metrics, /kcache_gateway_auth_failures_total\{transport="grpc"\} [1-9]/);
    assert.match(metrics, /kcache_gateway_auth_failures_total\{transport="http"\} [1-9]/);
  });
});

describe('edge limits', () => {
  it('a prompt over MAX_PROMPT_BYTES → INVALID_ARGUMENT / 400; a message over MAX_REQUEST_BYTES → RESOURCE_EXHAUSTED / 413; nothing queued', async () => {
    const grpcPrompt = await collectStream(cluster.client(), { ...short, prompt: 'a '.repeat(1500) }, 5000, undefined, bearer(KEYS.alpha));
    assert.equal(grpcPrompt.error?.code, Status.INVALID_ARGUMENT);
    assert.match(grpcPrompt.error!.details, /^prompt: 3000 bytes is above this server's limit of 2000$/);
    const grpcMessage = await collectStream(cluster.client(), { ...short, prompt: 'a'.repeat(100_000) }, 5000, undefined, bearer(KEYS.alpha));
    assert.equal(grpcMessage.error?.code, Status.RESOURCE_EXHAUSTED);
    const httpPrompt = await post({ prompt: 'a '.repeat(1500), max_tokens: 4 }, auth(KEYS.alpha));
    assert.equal(httpPrompt.status, 400);
    const httpBody = await post({ prompt: 'a'.repeat(100_000), max_tokens: 4 }, auth(KEYS.alpha));
    assert.equal(httpBody.status, 413);
    assert.equal(((await httpBody.json()) as { error: { code: string } }).error.code, 'resource_exhausted');
    const counts = await cluster.queue().getJobCounts('wait', 'prioritized', 'active', 'failed');
    assert.deepEqual(counts, { wait: 0, prioritized: 0, active: 0, failed: 0 });
  });
});

describe('per-key limits', () => {
  const long = (requestId: string): Partial<GenerateRequest> => ({ requestId, prompt: MARKER_PROMPT, maxNewTokens: 450, sampling: { temperature: 1, seed: 9 } });

  it('a third concurrent stream of one key → RESOURCE_EXHAUSTED with a retry hint; other keys are unaffected', async () => {
    const client = cluster.client();
    const calls = ['alpha-1', 'alpha-2'].map((id) => client.generate(GenerateRequest.fromPartial(long(id)), bearer(KEYS.alpha)));
    for (const call of calls) call.on('error', () => undefined);
    await Promise.all(calls.map((call) => new Promise((resolve) => call.once('data', resolve))));
    const third = await collectStream(client, short, 5000, undefined, bearer(KEYS.alpha));
    assert.equal(third.error?.code, Status.RESOURCE_EXHAUSTED);
    assert.match(third.error!.details, /key 'alpha' has 2 streams open, its limit; retry in 1 s/);
    assert.equal(third.error!.metadata.get('retry-after-ms')[0], '1000');
    const other = await collectStream(client, short, 10_000, undefined, bearer(KEYS.beta));
    assert.equal(other.error, null);
    for (const call of calls) call.cancel();
    await waitFor(async () => (await collectStream(client, short, 10_000, undefined, bearer(KEYS.alpha))).error === null, 5000, 'alpha to get a stream again');
  });

  it('beyond KEY_MAX_TOKENS_PER_MINUTE → RESOURCE_EXHAUSTED (gRPC) and 429 with Retry-After (HTTP)', async () => {
    const client = cluster.client();
    for (let used = 0; used < TOKENS_PER_MINUTE; ) {
      const result = await collectStream(client, { prompt: MARKER_PROMPT, maxNewTokens: 450, sampling: { temperature: 0 } }, 20_000, undefined, bearer(KEYS.gamma));
      assert.equal(result.error, null, result.error?.details);
      used += result.final!.usage!.promptTokens + result.final!.usage!.completionTokens;
    }
    const refused = await collectStream(client, short, 5000, undefined, bearer(KEYS.gamma));
    assert.equal(refused.error?.code, Status.RESOURCE_EXHAUSTED);
    assert.match(refused.error!.details, new RegExp(`key 'gamma' used its ${TOKENS_PER_MINUTE} tokens per minute; retry in \\d+ s`));
    const retryAfterMs = Number(refused.error!.metadata.get('retry-after-ms')[0]);
    assert.ok(retryAfterMs > 0 && retryAfterMs <= 61_000, String(retryAfterMs));
    const http = await post({ prompt: MARKER_PROMPT, max_tokens: 4 }, auth(KEYS.gamma));
    assert.equal(http.status, 429);
    assert.ok(Number(http.headers.get('retry-after')) >= 1);
    assert.equal(((await http.json()) as { error: { type: string } }).error.type, 'rate_limit_error');
    assert.equal((await collectStream(client, short, 10_000, undefined, bearer(KEYS.beta))).error, null);
  });
});

describe('logs', () => {
  it('never contain a prompt or an API key, valid or not (debug level, LOG_REQUEST_CONTENT off)', async () => {
    await waitFor(async () => (await fetchMetric(cluster.workers[0].metricsUrl, 'kcache_worker_active_jobs')) === 0, 5000, 'the worker to go idle');
    const logs = [cluster.gateway, ...cluster.workers].map((p) => p.output.join('')).join('\n');
    assert.match(logs, /"msg":"request validated"/, 'debug lines were written');
    for (const secret of [...Object.values(KEYS), WRONG_KEY, 'zanzibarquux', 'SECRETKEY']) assert.ok(!logs.includes(secret), `logs contain ${secret}`);
  });
});
