import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ClientReadableStream, credentials, makeGenericClientConstructor, Metadata, ServiceError, status as Status } from '@grpc/grpc-js';
import fc from 'fast-check';
import { stories260kDir } from '@kcache-serve/kcache/testing';
import { AttentionMode, GenerateRequest, GenerateResponse } from '@kcache-serve/proto';
import { bearer, collectStream, fetchMetric, ServingCluster, waitFor } from '@kcache-serve/proto/dist/testing';
import { sha256Hex } from '../auth/api-key';

/**
 * fast-check drives the public gRPC and HTTP APIs with random and malformed requests: typed requests with
 * extreme values, raw protobuf bytes (random, truncated, bit-flipped, unknown fields, deeply nested groups,
 * invalid UTF-8) sent through a passthrough serializer, and HTTP bodies of every shape. Every answer must
 * be a proper status (never INTERNAL/UNKNOWN/5xx, never a hang), every process must survive, and nothing
 * may be left in the queue. FUZZ_SEED replays a run; FUZZ_RUNS scales the number of cases per property.
 */
const API_KEY = 'kc-fuzz-key-5b1c';
const MAX_REQUEST_BYTES = 65536;
const CALL_DEADLINE_MS = 15_000;
const seed = process.env.FUZZ_SEED === undefined ? Date.now() % 2 ** 31 : Number(process.env.FUZZ_SEED);
const numRuns = (base: number) => Math.max(1, Math.round(base * Number(process.env.FUZZ_RUNS_SCALE ?? 1)));
const GRPC_OK_CODES = new Set([Status.OK, Status.INVALID_ARGUMENT, Status.RESOURCE_EXHAUSTED, Status.UNAUTHENTICATED, Status.ALREADY_EXISTS]);
const HTTP_OK_STATUSES = new Set([200, 400, 401, 404, 413, 415, 429]);
/** What each kind of input was answered with, for the report. */
const tally = new Map<string, number>();
let numInputs = 0;

let cluster: ServingCluster;

before(async () => {
  console.log(`fuzz seed ${seed} (FUZZ_SEED=${seed} replays it)`);
  cluster = await ServingCluster.start({
    model: stories260kDir(),
    numWorkers: 1,
    gatewayEnv: {
      AUTH_MODE: 'api-key',
      API_KEY_HASHES: `fuzz:${sha256Hex(API_KEY)}`,
      MAX_REQUEST_BYTES: String(MAX_REQUEST_BYTES),
      MAX_NEW_TOKENS_LIMIT: '24',
      DEFAULT_MAX_NEW_TOKENS: '8',
    },
  });
});

after(async () => {
  console.log(`fuzz: ${numInputs} inputs; answers: ${JSON.stringify(Object.fromEntries([...tally].sort()))}`);
  await cluster?.stop();
});

function count(kind: string, answer: string | number): void {
  numInputs++;
  const key = `${kind} ${answer}`;
  tally.set(key, (tally.get(key) ?? 0) + 1);
}

// --- inputs -----------------------------------------------------------------------------------------
const int32 = fc.oneof(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), fc.constantFrom(0, -1, 1, 2 ** 31 - 1, -(2 ** 31), 511, 512, 513));
const weirdDouble = fc.oneof(fc.double(), fc.constantFrom(Number.NaN, Infinity, -Infinity, -0, 1e308, 5e-324));
const text = fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 40 }), fc.constantFrom('', 'Once upon a time', '\ud800', '\u0000', 'a'.repeat(3000)));
const requestId = fc.option(fc.oneof(fc.stringMatching(/^[A-Za-z0-9._-]{1,20}$/), fc.string({ maxLength: 200 })), { nil: undefined });

/** Usually `valid`, sometimes `weird`: most requests then carry one or two bad fields, some none. */
const mostly = <T,>(valid: fc.Arbitrary<T>, weird: fc.Arbitrary<T>): fc.Arbitrary<T> => fc.oneof({ weight: 6, arbitrary: valid }, { weight: 1, arbitrary: weird });
const optional = <T,>(arbitrary: fc.Arbitrary<T>) => fc.option(arbitrary, { nil: undefined });
const attentionMode = int32 as fc.Arbitrary<AttentionMode>;

/** Field values the proto's TypeScript types would not allow (unset enum, NaN...): cast once, here. */
const asRequest = (value: unknown) => value as Partial<GenerateRequest>;

const anyRequest = fc.record(
  {
    requestId,
    prompt: text,
    promptTokenIds: fc.array(int32, { maxLength: 20 }),
    maxNewTokens: optional(fc.oneof(int32, fc.integer({ min: 1, max: 24 }))),
    sampling: fc.record({ temperature: optional(weirdDouble), topK: optional(int32), topP: optional(weirdDouble), seed: optional(fc.integer({ min: 0, max: 2 ** 32 - 1 })) }, { requiredKeys: [] }),
    stop: fc.array(text, { maxLength: 20 }),
    stopTokenIds: fc.array(int32, { maxLength: 70 }),
    attention: fc.record({ mode: attentionMode, topN: optional(int32), denseLayers: optional(int32), renormalize: optional(fc.boolean()) }, { requiredKeys: [] }),
    priority: int32,
    logprobs: fc.boolean(),
    messages: fc.array(fc.record({ role: mostly(fc.constantFrom('system', 'user', 'assistant', 'tool'), text), content: text }), { maxLength: 5 }),
    addGenerationPrompt: optional(fc.boolean()),
  },
  { requiredKeys: [] },
).map(asRequest);

const nearlyValidRequest = fc.record({
  requestId: mostly(fc.constant(undefined), requestId),
  prompt: mostly(fc.constantFrom('Once upon a time', 'The dog', 'Lily and Ben'), text),
  maxNewTokens: mostly(fc.integer({ min: 1, max: 24 }), optional(int32)),
  sampling: mostly<object>(fc.record({ temperature: fc.double({ min: 0, max: 1.5, noNaN: true }), topP: fc.double({ min: 0.1, max: 1, noNaN: true }), seed: fc.nat() }), fc.record({ temperature: optional(weirdDouble), topP: optional(weirdDouble), topK: optional(int32) })),
  stop: mostly(fc.constant([]), fc.array(text, { maxLength: 20 })),
  stopTokenIds: mostly(fc.constant([]), fc.array(int32, { maxLength: 70 })),
  attention: mostly<object>(fc.constant({ mode: AttentionMode.ATTENTION_MODE_UNSPECIFIED }), fc.record({ mode: attentionMode, topN: optional(int32), denseLayers: optional(int32) })),
  priority: mostly(fc.integer({ min: -5, max: 5 }), int32),
  logprobs: fc.boolean(),
}).map(asRequest);

const typedRequest = fc.oneof(anyRequest, nearlyValidRequest);

/** Mostly the valid key; sometimes none, a wrong one, or garbage. */
const authorization = fc.oneof(
  { weight: 8, arbitrary: fc.constant<string | null>(`Bearer ${API_KEY}`) },
  { weight: 1, arbitrary: fc.constant<string | null>(null) },
  { weight: 1, arbitrary: fc.oneof(fc.constantFrom('Bearer ', `bearer ${API_KEY}x`, 'Basic Zm9v'), fc.string({ maxLength: 60 }).map((s) => `Bearer ${s}`)) },
);

function metadataOf(value: string | null): Metadata {
  const metadata = new Metadata();
  if (value !== null) {
    try {
      metadata.set('authorization', value);
    } catch {
      metadata.set('authorization', 'Bearer invalid');
    }
  }
  return metadata;
}

const varint = (value: number | bigint): number[] => {
  let v = BigInt.asUintN(64, BigInt(value));
  const bytes: number[] = [];
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) byte |= 0x80;
    bytes.push(byte);
  } while (v > 0n);
  return bytes;
};
const tag = (field: number, wireType: number) => varint((field << 3) | wireType);
const encode = (request: Partial<GenerateRequest>) => Buffer.from(GenerateRequest.encode(GenerateRequest.fromPartial(request)).finish());
const validBytes = encode({ prompt: 'Once upon a time', maxNewTokens: 6, sampling: { temperature: 0 } });

const unknownField = fc.tuple(fc.integer({ min: 11, max: 5000 }), fc.constantFrom(0, 1, 2, 5), fc.uint8Array({ maxLength: 30 })).map(([field, wireType, payload]) => {
  if (wireType === 0) return [...tag(field, 0), ...varint(payload.length * 1000003)];
  if (wireType === 1) return [...tag(field, 1), ...Buffer.alloc(8, payload[0] ?? 7)];
  if (wireType === 5) return [...tag(field, 5), ...Buffer.alloc(4, payload[0] ?? 7)];
  return [...tag(field, 2), ...varint(payload.length), ...payload];
});

const rawBytes: fc.Arbitrary<[string, Buffer]> = fc.oneof(
  fc.uint8Array({ maxLength: 3000 }).map((b) => ['random', Buffer.from(b)] as [string, Buffer]),
  fc.integer({ min: 0, max: validBytes.length - 1 }).map((n) => ['truncated', validBytes.subarray(0, n)] as [string, Buffer]),
  fc.tuple(fc.integer({ min: 0, max: validBytes.length - 1 }), fc.integer({ min: 1, max: 255 })).map(([i, x]) => {
    const bytes = Buffer.from(validBytes);
    bytes[i] ^= x;
    return ['bit-flipped', bytes] as [string, Buffer];
  }),
  fc.array(unknownField, { minLength: 1, maxLength: 20 }).map((fields) => ['unknown fields', Buffer.concat([validBytes, Buffer.from(fields.flat())])] as [string, Buffer]),
  fc.integer({ min: 1, max: 30_000 }).map((depth) => {
    // Nested groups (wire types 3/4) in an unknown field: a decoder that recursed without a limit would overflow.
    const open = Buffer.from(tag(20, 3));
    const close = Buffer.from(tag(20, 4));
    return ['nested groups', Buffer.concat([validBytes, ...new Array(depth).fill(open), ...new Array(depth).fill(close)])] as [string, Buffer];
  }),
  fc.integer({ min: 1, max: 20_000 }).map((depth) => {
    // Length-delimited unknown fields nested inside each other, each claiming the rest.
    let inner = Buffer.alloc(0);
    for (let i = 0; i < depth; i++) inner = Buffer.concat([Buffer.from(tag(21, 2)), Buffer.from(varint(inner.length)), inner]);
    return ['nested bytes', Buffer.concat([validBytes, inner])] as [string, Buffer];
  }),
  fc.uint8Array({ minLength: 1, maxLength: 40 }).map((junk) => {
    const utf8 = Buffer.concat([Buffer.from('Once '), Buffer.from([0xff, 0xfe, 0xc0, 0xaf, 0xed, 0xa0, 0x80]), Buffer.from(junk)]);
    return ['invalid UTF-8 prompt', Buffer.from([...tag(2, 2), ...varint(utf8.length), ...utf8])] as [string, Buffer];
  }),
  fc.tuple(fc.constantFrom(1, 3, 4, 7, 9), fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n })).map(([field, value]) => {
    // Out-of-range varints (10 bytes, negatives, > int32) in int fields, on top of a valid prompt.
    return ['huge varint', Buffer.concat([validBytes, Buffer.from([...tag(field, field === 3 ? 0 : 0), ...varint(value)])])] as [string, Buffer];
  }),
  fc.integer({ min: 1, max: 2 ** 28 }).map((claimed) => ['length past the end', Buffer.from([...tag(2, 2), ...varint(claimed), 0x41, 0x42])] as [string, Buffer]),
);

// --- gRPC -------------------------------------------------------------------------------------------
interface StreamOutcome {
  readonly code: Status;
  readonly numTokens: number;
  readonly indices: number[];
  readonly hasFinal: boolean;
}

function outcomeOf(call: ClientReadableStream<GenerateResponse | Buffer>, decode: (m: GenerateResponse | Buffer) => GenerateResponse): Promise<StreamOutcome> {
  return new Promise((resolve) => {
    const indices: number[] = [];
    let hasFinal = false;
    call.on('data', (message: GenerateResponse | Buffer) => {
      const response = decode(message);
      if (response.event?.$case === 'token') indices.push(response.event.value.index);
      if (response.event?.$case === 'final') hasFinal = true;
    });
    call.on('error', (error: ServiceError) => resolve({ code: error.code, numTokens: indices.length, indices, hasFinal }));
    call.on('end', () => resolve({ code: Status.OK, numTokens: indices.length, indices, hasFinal }));
  });
}

/** isCancelledHere: this client may have cancelled the call itself (CANCELLED is then its own doing). */
function assertProperStream(kind: string, outcome: StreamOutcome, isCancelledHere = false): void {
  count(kind, Status[outcome.code]);
  const isOwnCancel = isCancelledHere && outcome.code === Status.CANCELLED;
  assert.ok(GRPC_OK_CODES.has(outcome.code) || isOwnCancel, `${kind}: answered ${Status[outcome.code]}`);
  if (outcome.code === Status.OK) {
    assert.ok(outcome.hasFinal, `${kind}: OK without a final event`);
    assert.deepEqual(outcome.indices, outcome.indices.map((_, i) => i), `${kind}: token indices`);
  }
}

const RawGeneration = makeGenericClientConstructor(
  {
    generate: {
      path: '/kcache.v1.Generation/Generate',
      requestStream: false,
      responseStream: true,
      requestSerialize: (bytes: Buffer) => bytes,
      requestDeserialize: (bytes: Buffer) => bytes,
      responseSerialize: (bytes: Buffer) => bytes,
      responseDeserialize: (bytes: Buffer) => bytes,
    },
    cancel: {
      path: '/kcache.v1.Generation/Cancel',
      requestStream: false,
      responseStream: false,
      requestSerialize: (bytes: Buffer) => bytes,
      requestDeserialize: (bytes: Buffer) => bytes,
      responseSerialize: (bytes: Buffer) => bytes,
      responseDeserialize: (bytes: Buffer) => bytes,
    },
  },
  'RawGeneration',
);

describe('fuzzing the public gRPC API', () => {
  it('typed GenerateRequests with extreme and wrong values get a proper status', async () => {
    const client = cluster.client();
    await fc.assert(
      fc.asyncProperty(typedRequest, authorization, optional(fc.nat(12)), async (request, auth, cancelAfterTokens) => {
        let call: ClientReadableStream<GenerateResponse>;
        try {
          call = client.generate(GenerateRequest.fromPartial(request), metadataOf(auth), { deadline: Date.now() + CALL_DEADLINE_MS });
        } catch {
          count('typed', 'client-side encode error');
          return; // the client library refused to encode it; nothing was sent
        }
        let numTokens = 0;
        if (cancelAfterTokens !== undefined) call.on('data', () => ++numTokens > cancelAfterTokens && call.cancel());
        assertProperStream('typed', await outcomeOf(call, (m) => m as GenerateResponse), cancelAfterTokens !== undefined);
      }),
      { seed, numRuns: numRuns(400) },
    );
  });

  it('raw protobuf bytes (random, truncated, unknown fields, nested, invalid UTF-8, huge varints) get a proper status', async () => {
    const client = new RawGeneration(cluster.grpcAddress, credentials.createInsecure()) as unknown as {
      generate(bytes: Buffer, metadata: Metadata, options: object): ClientReadableStream<Buffer>;
      cancel(bytes: Buffer, metadata: Metadata, options: object, callback: (error: ServiceError | null) => void): void;
      close(): void;
    };
    try {
      await fc.assert(
        fc.asyncProperty(rawBytes, authorization, fc.boolean(), async ([kind, bytes], auth, isCancel) => {
          if (isCancel) {
            const code = await new Promise<Status>((resolve) =>
              client.cancel(bytes, metadataOf(auth), { deadline: Date.now() + CALL_DEADLINE_MS }, (error) => resolve(error?.code ?? Status.OK)),
            );
            count(`raw Cancel ${kind}`, Status[code]);
            assert.ok(GRPC_OK_CODES.has(code), `raw Cancel ${kind}: answered ${Status[code]}`);
            return;
          }
          const call = client.generate(bytes, metadataOf(auth), { deadline: Date.now() + CALL_DEADLINE_MS });
          assertProperStream(`raw ${kind}`, await outcomeOf(call, (m) => GenerateResponse.decode(m as Buffer)));
        }),
        { seed, numRuns: numRuns(300) },
      );
    } finally {
      client.close();
    }
  });
});

// --- HTTP -------------------------------------------------------------------------------------------
const jsonValue = fc.oneof(fc.jsonValue({ maxDepth: 4 }), fc.anything({ maxDepth: 3 }).map((v) => { try { return JSON.parse(JSON.stringify(v) ?? 'null'); } catch { return null; } }));
const completionBody = fc.record(
  {
    prompt: fc.oneof(text, fc.array(int32, { maxLength: 10 }), jsonValue),
    max_tokens: fc.oneof(fc.integer({ min: 1, max: 24 }), int32, weirdDouble.map((d) => (Number.isFinite(d) ? d : 1e308)), jsonValue),
    temperature: fc.oneof(fc.double({ min: 0, max: 2, noNaN: true }), jsonValue),
    top_p: fc.oneof(fc.double({ min: 0, max: 1.5, noNaN: true }), jsonValue),
    top_k: fc.oneof(int32, jsonValue),
    seed: fc.oneof(fc.integer({ min: 0, max: 2 ** 32 }), jsonValue),
    stop: fc.oneof(text, fc.array(text, { maxLength: 20 }), jsonValue),
    stop_token_ids: fc.oneof(fc.array(int32, { maxLength: 70 }), jsonValue),
    stream: fc.oneof(fc.boolean(), jsonValue),
    logprobs: fc.oneof(fc.boolean(), fc.integer({ min: -2, max: 5 }), jsonValue),
    priority: fc.oneof(int32, jsonValue),
    request_id: fc.oneof(fc.stringMatching(/^[A-Za-z0-9._-]{1,20}$/), jsonValue),
    kcache: fc.oneof(fc.record({ mode: fc.oneof(fc.constantFrom('full', 'kcache', 'x'), jsonValue), top_n: fc.oneof(int32, jsonValue), dense_layers: fc.oneof(int32, jsonValue), renormalize: jsonValue }, { requiredKeys: [] }), jsonValue),
    extra_unknown: jsonValue,
  },
  { requiredKeys: [] },
);

const nearlyValidBody = fc.record({
  prompt: mostly(fc.constantFrom('Once upon a time', 'The cat'), fc.oneof(text, jsonValue)),
  max_tokens: mostly(fc.integer({ min: 1, max: 24 }), jsonValue),
  temperature: mostly(fc.double({ min: 0, max: 1.5, noNaN: true }), jsonValue),
  stream: mostly(fc.boolean(), jsonValue),
  logprobs: mostly(fc.boolean(), jsonValue),
  stop: mostly(fc.constant([]), fc.oneof(text, fc.array(text, { maxLength: 20 }), jsonValue)),
});

const httpBody: fc.Arbitrary<[string, string | Buffer, string]> = fc.oneof(
  nearlyValidBody.map((b) => ['nearly valid body', JSON.stringify(b), 'application/json'] as [string, string | Buffer, string]),
  completionBody.map((b) => ['completion body', JSON.stringify(b), 'application/json'] as [string, string | Buffer, string]),
  jsonValue.map((v) => ['any JSON', JSON.stringify(v) ?? 'null', 'application/json'] as [string, string | Buffer, string]),
  fc.uint8Array({ maxLength: 2000 }).map((b) => ['random bytes', Buffer.from(b), 'application/json'] as [string, string | Buffer, string]),
  fc.tuple(completionBody, fc.nat()).map(([b, n]) => {
    const json = JSON.stringify(b);
    return ['truncated JSON', json.slice(0, n % Math.max(1, json.length)), 'application/json'] as [string, string | Buffer, string];
  }),
  fc.integer({ min: 1, max: 40_000 }).map((depth) => ['deeply nested', `{"prompt":${'['.repeat(depth)}${']'.repeat(depth)}}`, 'application/json'] as [string, string | Buffer, string]),
  fc.integer({ min: 1, max: 60 }).map((junk) => ['invalid UTF-8', Buffer.concat([Buffer.from('{"prompt":"Once '), Buffer.alloc(junk, 0xff), Buffer.from('","max_tokens":4}')]), 'application/json'] as [string, string | Buffer, string]),
  fc.constantFrom(MAX_REQUEST_BYTES - 100, MAX_REQUEST_BYTES + 1, MAX_REQUEST_BYTES * 3).map((n) => ['huge body', JSON.stringify({ prompt: 'a'.repeat(n) }), 'application/json'] as [string, string | Buffer, string]),
  completionBody.chain((b) => fc.constantFrom('text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data', '').map((type) => ['other content-type', JSON.stringify(b), type] as [string, string | Buffer, string])),
);

describe('fuzzing the HTTP API', () => {
  it('POST /v1/completions with bodies of every shape gets a proper status and a JSON or SSE body', async () => {
    await fc.assert(
      fc.asyncProperty(httpBody, authorization, async ([kind, body, contentType], auth) => {
        const headers: Record<string, string> = contentType === '' ? {} : { 'content-type': contentType };
        if (auth !== null && /^[\x20-\x7e]*$/.test(auth)) headers.authorization = auth;
        const response = await fetch(`${cluster.httpUrl}/v1/completions`, { method: 'POST', headers, body, signal: AbortSignal.timeout(CALL_DEADLINE_MS) });
        const text = await response.text();
        count(`http ${kind}`, response.status);
        assert.ok(HTTP_OK_STATUSES.has(response.status), `http ${kind}: ${response.status} ${text.slice(0, 200)}`);
        if ((response.headers.get('content-type') ?? '').includes('text/event-stream')) {
          const events = text.split('\n\n').filter((e) => e.startsWith('data: '));
          const last = events.at(-1);
          assert.ok(last === 'data: [DONE]' || (last !== undefined && 'error' in JSON.parse(last.slice(6))), `http ${kind}: SSE ended with ${last}`);
        } else {
          const json = JSON.parse(text) as { error?: { message: string; type: string } };
          if (response.status !== 200) assert.equal(typeof json.error?.message, 'string', `http ${kind}: ${text.slice(0, 200)}`);
        }
      }),
      { seed, numRuns: numRuns(300) },
    );
  });
});

describe('after the fuzzing', () => {
  it('every process is alive, nothing is left in the queue, no stream or sequence is open', async () => {
    for (const p of [cluster.gateway, ...cluster.workers]) assert.equal(p.child.exitCode, null, `${p.name} exited:\n${p.output.join('')}`);
    assert.equal((await cluster.httpGet('/healthz')).status, 200);
    const queue = cluster.queue();
    await waitFor(async () => (await queue.getActiveCount()) === 0, 10_000, 'active jobs to finish');
    assert.deepEqual(await queue.getJobCounts('wait', 'prioritized', 'active', 'delayed', 'failed'), { wait: 0, prioritized: 0, active: 0, delayed: 0, failed: 0 });
    await waitFor(async () => (await fetchMetric(cluster.workers[0].metricsUrl, 'kcache_worker_running_sequences')) === 0, 5000, 'the worker to free every sequence');
    const metrics = (await cluster.httpGet('/metrics')).body;
    assert.match(metrics, /^kcache_gateway_active_streams 0$/m);
    assert.doesNotMatch(metrics, /status="(INTERNAL|UNKNOWN)"/);
    const ok = await collectStream(cluster.client(), { prompt: 'Once upon a time', maxNewTokens: 8 }, 10_000, undefined, bearer(API_KEY));
    assert.equal(ok.error, null);
  });
});
