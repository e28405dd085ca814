import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Metadata, ServiceError } from '@grpc/grpc-js';
import { stories260kDir } from '@kcache-serve/kcache/testing';
import { FinalEvent, FinishReason, GenerateRequest, GenerateResponse, GenerationClient, REQUEST_ID_METADATA_KEY } from '@kcache-serve/proto';
import { ServingCluster } from '@kcache-serve/proto/dist/testing';

/**
 * Cancel sent the moment the `kcache-request-id` metadata arrives, the documented way to learn the id.
 * Whatever the job's state then (being queued, queued, taken by a worker, generating), the stream must
 * end CANCELLED and Cancel must say so.
 */
let cluster: ServingCluster;

before(async () => {
  cluster = await ServingCluster.start({ model: stories260kDir(), numWorkers: 1 });
});

after(async () => {
  await cluster?.stop();
});

interface CancelOutcome {
  readonly cancelled: boolean | null;
  readonly cancelError: ServiceError | null;
  readonly final: FinalEvent | null;
  readonly numTokens: number;
  readonly error: ServiceError | null;
}

/** Generate, and Cancel as soon as the id metadata arrives. */
function generateAndCancelOnId(client: GenerationClient, seed: number): Promise<CancelOutcome> {
  return new Promise((resolve) => {
    let cancelled: boolean | null = null;
    let cancelError: ServiceError | null = null;
    let final: FinalEvent | null = null;
    let numTokens = 0;
    let cancelDone: Promise<void> = Promise.resolve();
    const request = GenerateRequest.fromPartial({ prompt: 'Once upon a time', maxNewTokens: 400, sampling: { temperature: 0.8, seed } });
    const call = client.generate(request);
    call.on('metadata', (metadata: Metadata) => {
      const requestId = String(metadata.get(REQUEST_ID_METADATA_KEY)[0]);
      cancelDone = new Promise((done) =>
        client.cancel({ requestId }, (error, response) => {
          cancelError = error;
          cancelled = response?.cancelled ?? null;
          done();
        }),
      );
    });
    call.on('data', (response: GenerateResponse) => {
      if (response.event?.$case === 'token') numTokens++;
      else if (response.event?.$case === 'final') final = response.event.value;
    });
    const end = (error: ServiceError | null): void => void cancelDone.then(() => resolve({ cancelled, cancelError, final, numTokens, error }));
    call.on('error', (error: ServiceError) => end(error));
    call.on('end', () => end(null));
  });
}

function assertCancelled(outcome: CancelOutcome, what: string): void {
  assert.equal(outcome.error, null, `${what}: ${outcome.error?.details}`);
  assert.equal(outcome.cancelError, null, `${what}: Cancel failed: ${outcome.cancelError?.details}`);
  assert.equal(outcome.cancelled, true, `${what}: Cancel said the request was not in flight`);
  assert.equal(outcome.final?.finishReason, FinishReason.FINISH_REASON_CANCELLED, `${what}: ran to ${FinishReason[outcome.final?.finishReason ?? 0]} after ${outcome.numTokens} tokens`);
}

describe('Cancel on the id metadata', () => {
  it('wins 20 of 20 times, one request after another', async () => {
    const client = cluster.client();
    for (let i = 0; i < 20; i++) assertCancelled(await generateAndCancelOnId(client, i), `request ${i}`);
  });

  it('wins for 8 requests sent at once, 3 rounds', async () => {
    const client = cluster.client();
    for (let round = 0; round < 3; round++) {
      const outcomes = await Promise.all(Array.from({ length: 8 }, (_, i) => generateAndCancelOnId(client, 100 + round * 8 + i)));
      outcomes.forEach((o, i) => assertCancelled(o, `round ${round}, request ${i}`));
    }
  });
});
