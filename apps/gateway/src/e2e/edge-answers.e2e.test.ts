import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client, credentials, Metadata, ServiceError, status as Status } from '@grpc/grpc-js';
import { stories260kDir } from '@kcache-serve/kcache/testing';
import { GenerateRequest, GenerateResponse } from '@kcache-serve/proto';
import { bearer, ServingCluster } from '@kcache-serve/proto/dist/testing';
import { sha256Hex } from '../auth/api-key';

/** Answers at the edge for inputs a careless client sends: the right code, naming what was wrong. */
const KEY = 'kc-edge-SECRETKEY-9a4c';

let cluster: ServingCluster;

before(async () => {
  cluster = await ServingCluster.start({ model: stories260kDir(), numWorkers: 1, gatewayEnv: { AUTH_MODE: 'api-key', API_KEY_HASHES: `edge:${sha256Hex(KEY)}` } });
});

after(async () => {
  await cluster?.stop();
});

const post = (body: string, headers: Record<string, string>) =>
  fetch(`${cluster.httpUrl}/v1/completions`, { method: 'POST', headers: { authorization: `Bearer ${KEY}`, ...headers }, body });

async function errorOf(response: Response): Promise<{ status: number; message: string }> {
  return { status: response.status, message: ((await response.json()) as { error: { message: string } }).error.message };
}

describe('HTTP bodies', () => {
  it('text/plain and form bodies → 415 naming the content type', async () => {
    const json = JSON.stringify({ prompt: 'Once upon a time', max_tokens: 2 });
    for (const contentType of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
      const answer = await errorOf(await post(json, { 'content-type': contentType }));
      assert.equal(answer.status, 415, contentType);
      assert.match(answer.message, /^content-type: .* is not supported; send application\/json$/, contentType);
    }
    assert.equal((await post(json, { 'content-type': 'application/json' })).status, 200);
  });

  it('top_k or kcache.top_n of 2^31 and more → 400 naming the field; nothing queued, nothing failed', async () => {
    for (const [body, field] of [
      [{ top_k: 2 ** 31 }, 'top_k'],
      [{ top_k: 2 ** 40 }, 'top_k'],
      [{ kcache: { mode: 'kcache', top_n: 2 ** 31 } }, 'kcache.top_n'],
    ] as const) {
      const answer = await errorOf(await post(JSON.stringify({ prompt: 'Once upon a time', max_tokens: 2, ...body }), { 'content-type': 'application/json' }));
      assert.equal(answer.status, 400, field);
      assert.ok(answer.message.startsWith(`${field}: `), answer.message);
    }
    const counts = await cluster.queue().getJobCounts('wait', 'prioritized', 'active', 'failed');
    assert.deepEqual(counts, { wait: 0, prioritized: 0, active: 0, failed: 0 });
  });
});

/** A varint as protobuf writes it (negative: 64-bit two's complement, 10 bytes). */
function varint(value: bigint): number[] {
  let v = value < 0n ? value + 2n ** 64n : value;
  const bytes: number[] = [];
  while (v >= 128n) {
    bytes.push(Number(v & 127n) | 128);
    v >>= 7n;
  }
  return [...bytes, Number(v)];
}

/** Generate with hand-made request bytes: its error status (null: it ran). */
function generateRaw(bytes: Buffer): Promise<ServiceError | null> {
  const client = new Client(cluster.grpcAddress, credentials.createInsecure());
  const call = client.makeServerStreamRequest('/kcache.v1.Generation/Generate', (b: Buffer) => b, (b: Buffer) => b, bytes, bearer(KEY));
  return new Promise((resolve) => {
    call.on('data', () => undefined);
    call.on('error', (error: ServiceError) => (client.close(), resolve(error)));
    call.on('end', () => (client.close(), resolve(null)));
  });
}

describe('gRPC integers beyond int32', () => {
  it('max_new_tokens, priority, sampling.top_k, attention.top_n sent as larger varints → INVALID_ARGUMENT with the value sent', async () => {
    const prompt = [0x12, 2, ...Buffer.from('hi')];
    const cases: Array<[number[], string, bigint]> = [
      [[0x20, ...varint(2n ** 40n)], 'max_new_tokens', 2n ** 40n],
      [[0x20, ...varint(2n ** 31n)], 'max_new_tokens', 2n ** 31n],
      [[0x48, ...varint(-(2n ** 40n))], 'priority', -(2n ** 40n)],
      [[0x2a, 6, 0x10, ...varint(2n ** 32n)], 'sampling.top_k', 2n ** 32n],
      [[0x42, 6, 0x10, ...varint(2n ** 33n)], 'attention.top_n', 2n ** 33n],
    ];
    for (const [field, name, value] of cases) {
      const error = await generateRaw(Buffer.from([...prompt, ...field]));
      assert.equal(error?.code, Status.INVALID_ARGUMENT, name);
      assert.equal(error?.details, `${name}: ${value} is out of range: must fit a 32-bit signed integer`);
    }
    // In range, also negative (10-byte varint): the usual checks.
    assert.match((await generateRaw(Buffer.from([...prompt, 0x20, ...varint(-1n)])))?.details ?? '', /^max_new_tokens: must be a positive integer, got -1$/);
    assert.equal(await generateRaw(Buffer.from([...prompt, 0x20, ...varint(2n)])), null);
  });
});

describe('API keys with whitespace', () => {
  it('a gRPC key with trailing whitespace never arrives; the refusal says why', async () => {
    const metadata = new Metadata();
    metadata.set('authorization', `Bearer ${KEY} `);
    const error = await new Promise<ServiceError | null>((resolve) => cluster.client().cancel({ requestId: 'x' }, metadata, (e) => resolve(e)));
    assert.equal(error?.code, Status.UNAUTHENTICATED);
    assert.match(error?.details ?? '', /leading or trailing whitespace is dropped/);
  });
});

describe('request ids', () => {
  it('a finished request frees its id before its final event: reusing it on the final is accepted (8 ids × 10 rounds at once)', async () => {
    const client = cluster.client();
    const chain = async (requestId: string): Promise<void> => {
      for (let round = 0; round < 10; round++) {
        // The next submission leaves as soon as the final event arrives, before the call's end.
        const result = await new Promise<{ code: number | null; details: string }>((resolve) => {
          const call = client.generate(GenerateRequest.fromPartial({ requestId, prompt: 'Once upon a time', maxNewTokens: 3, sampling: { temperature: 0 } }), bearer(KEY));
          call.on('data', (response: GenerateResponse) => response.event?.$case === 'final' && resolve({ code: null, details: '' }));
          call.on('error', (error: ServiceError) => resolve({ code: error.code, details: error.details }));
        });
        assert.equal(result.code, null, `${requestId}, round ${round}: ${result.details}`);
      }
    };
    await Promise.all(Array.from({ length: 8 }, (_, i) => chain(`reused-${i}`)));
  });
});
