import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { credentials, Metadata, ServiceError, status as Status } from '@grpc/grpc-js';
import { stories260kDir } from '@kcache-serve/kcache/testing';
import { FinishReason, GenerateRequest, generationJobId, relay } from '@kcache-serve/proto';
import { bearer, collectStream, ServingCluster, waitFor } from '@kcache-serve/proto/dist/testing';
import { sha256Hex } from '../auth/api-key';

/**
 * The internal Relay against someone on the pod network: they can reach the relay port and guess (or
 * choose) request ids, but do not hold the job's capability. The victim's stream must only ever show what
 * the worker that holds its job produced.
 */
const KEY = 'kc-victim-SECRETKEY-5e1d';
const VICTIM_ID = 'victim-request-1';
const request: Partial<GenerateRequest> = { prompt: 'Once upon a time', maxNewTokens: 12, sampling: { temperature: 0 } };

let cluster: ServingCluster;

before(async () => {
  // No worker yet: the victim's job waits in the queue while the attacker tries the relay.
  cluster = await ServingCluster.start({
    model: stories260kDir(),
    numWorkers: 0,
    gatewayEnv: { AUTH_MODE: 'api-key', API_KEY_HASHES: `victim:${sha256Hex(KEY)}`, LOG_LEVEL: 'debug' },
    workerEnv: { LOG_LEVEL: 'debug' },
  });
});

after(async () => {
  await cluster?.stop();
});

function deliver(address: string, events: relay.RelayEvent[]): Promise<{ error: ServiceError | null; response?: relay.DeliverResponse }> {
  const client = new relay.RelayClient(address, credentials.createInsecure());
  return new Promise((resolve) => {
    client.deliver({ workerId: 'intruder', events }, new Metadata(), { deadline: Date.now() + 5000 }, (error, response) => {
      client.close();
      resolve({ error, response });
    });
  });
}

/** What an attacker writes: a token and a finish, for the victim's id. */
function forged(capability: Buffer): relay.RelayEvent[] {
  return [
    { requestId: VICTIM_ID, event: { $case: 'started', value: { attempt: 1, numResumedTokens: 0 } }, capability },
    { requestId: VICTIM_ID, event: { $case: 'token', value: { index: 0, tokenId: 1, text: ' FORGED', topLogprobs: [] } }, capability },
    { requestId: VICTIM_ID, event: { $case: 'finished', value: { finishReason: FinishReason.FINISH_REASON_STOP, promptTokens: 1, completionTokens: 1 } }, capability },
  ];
}

describe('relay capabilities', () => {
  it('a Deliver without the job capability cannot write into another stream; the real worker\'s tokens arrive', async () => {
    const victim = collectStream(cluster.client(), { ...request, requestId: VICTIM_ID }, 60_000, undefined, bearer(KEY));
    const queue = cluster.queue();
    await waitFor(async () => (await queue.getJob(generationJobId(VICTIM_ID))) !== undefined, 5000, 'the victim job to be queued');
    const job = await queue.getJob(generationJobId(VICTIM_ID));
    const { relayAddress, relayCapability } = job!.data;

    const guessed = await deliver(relayAddress, forged(randomBytes(32)));
    assert.equal(guessed.error, null);
    assert.deepEqual(guessed.response?.cancelRequestIds, [VICTIM_ID], 'a wrong capability is answered like an unknown request');
    const short = await deliver(relayAddress, forged(Buffer.from(relayCapability, 'base64url').subarray(0, 16)));
    assert.deepEqual(short.response?.cancelRequestIds, [VICTIM_ID], 'a prefix of the capability is not the capability');
    const unauthenticated = await deliver(relayAddress, forged(Buffer.alloc(0)));
    assert.equal(unauthenticated.error?.code, Status.UNAUTHENTICATED, 'no capability: the whole call is refused');
    assert.ok(['waiting', 'prioritized'].includes(await job!.getState()), 'the victim job still waits for a worker');

    await cluster.startWorker();
    const result = await victim;
    assert.equal(result.error, null, result.error?.details);
    assert.equal(result.final?.finishReason, FinishReason.FINISH_REASON_LENGTH);
    assert.equal(result.tokens.length, 12);
    assert.ok(!result.tokens.some((t) => t.text.includes('FORGED')), 'no forged token reached the client');

    const undisturbed = await collectStream(cluster.client(), request, 60_000, undefined, bearer(KEY));
    assert.deepEqual(result.tokens.map((t) => t.tokenId), undisturbed.tokens.map((t) => t.tokenId), 'the worker\'s tokens, as an undisturbed run gives them');

    const logs = [cluster.gateway, ...cluster.workers].map((p) => p.output.join('')).join('\n');
    assert.match(logs, /relay call without capabilities refused/);
    assert.match(logs, /relay events with a wrong capability dropped/);
    assert.match(logs, /"msg":"request validated"/, 'debug lines were written');
    const capabilityHex = Buffer.from(relayCapability, 'base64url').toString('hex');
    for (const secret of [relayCapability, capabilityHex]) assert.ok(!logs.includes(secret), 'logs contain the relay capability');
    assert.ok(!JSON.stringify(result).includes(relayCapability), 'the client never sees the capability');
  });
});
