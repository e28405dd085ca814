import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { FULL_ATTENTION } from '../attention/attention-config';
import { InvalidRequestError } from '../request/invalid-request-error';
import { loadGreedyOracle, stories260kDir } from '../testing/reference-data';
import { createEngine } from './create-engine';
import { CapacityError, DuplicateRequestIdError, EngineClosedError } from './engine-errors';
import { generate } from './generate';
import { GenerationEvent, GenerationRequest } from './generation-request';
import { ThreadedEngine } from './threaded-engine';

const oracle = loadGreedyOracle();
const seeded = (requestId: string, promptTokenIds: readonly number[], maxNewTokens: number, seed: number): GenerationRequest => ({
  requestId,
  promptTokenIds,
  maxNewTokens,
  sampling: { temperature: 0.9, topK: 0, topP: 0.95, seed },
  stopTokenIds: [],
  stopStrings: [],
  attention: FULL_ATTENTION,
  priority: 0,
  logprobs: true,
});

describe('ThreadedEngine (the engine on a thread of its own)', () => {
  let threaded: ThreadedEngine;

  before(async () => {
    threaded = await ThreadedEngine.start({ model: stories260kDir(), numThreads: 1, deviceCapacityBytes: 8 << 20 });
  });

  after(async () => {
    await threaded?.close();
  });

  it('streams the same tokens, text, logprobs and finishes as the engine on this thread, for a batch', async () => {
    const requests = oracle.map((r, i) => seeded(`same-${i}`, r.prompt_token_ids, 80, i));
    const direct = await createEngine({ model: stories260kDir(), numThreads: 1, deviceCapacityBytes: 8 << 20 });
    const expected = await Promise.all(requests.map((r) => generate(direct, r)));
    await direct.close();
    const actual = await Promise.all(requests.map((r) => generate(threaded, r)));
    assert.deepEqual(actual, expected);
  });

  it('the native backend (the CUDA path, here on the CPU provider) runs on the engine thread too: the same streams', async () => {
    const requests = oracle.slice(0, 4).map((r, i) => seeded(`native-${i}`, r.prompt_token_ids, 60, i));
    const expected = await Promise.all(requests.map((r) => generate(threaded, r)));
    const native = await ThreadedEngine.start({ model: stories260kDir(), numThreads: 1, deviceCapacityBytes: 8 << 20, nativeBackend: true });
    try {
      assert.deepEqual(await Promise.all(requests.map((r) => generate(native, r))), expected);
    } finally {
      await native.close();
    }
  });

  it('submit throws what LlmEngine.submit throws, at once, and queues nothing', () => {
    const good = seeded('checks', oracle[0].prompt_token_ids, 10, 1);
    assert.throws(() => threaded.submit({ ...good, maxNewTokens: 0 }, () => undefined), InvalidRequestError);
    assert.throws(() => threaded.submit({ ...good, promptTokenIds: [100000] }, () => undefined), InvalidRequestError);
    assert.equal(threaded.numFreeSlots(), 64);
    const queued = seeded('queued', oracle[0].prompt_token_ids, 500, 1);
    threaded.submit(queued, () => undefined);
    assert.throws(() => threaded.submit(queued, () => undefined), DuplicateRequestIdError);
    assert.equal(threaded.numFreeSlots(), 63);
    assert.equal(threaded.cancel('queued'), true);
    assert.equal(threaded.cancel('never-submitted'), false);
  });

  it('cancel ends a running request with finish cancelled; stats show it freed', async () => {
    const events: GenerationEvent[] = [];
    const finished = new Promise<void>((resolve) =>
      threaded.submit(seeded('to-cancel', oracle[1].prompt_token_ids, 400, 2), (e) => {
        events.push(e);
        if (e.type === 'token' && e.index === 3) threaded.cancel('to-cancel');
        if (e.type === 'finish') resolve();
      }),
    );
    await finished;
    const finish = events.at(-1);
    assert.equal(finish?.type === 'finish' && finish.reason, 'cancelled');
    assert.ok(events.length < 400);
    await waitForStats(() => threaded.stats().numRunning === 0 && threaded.stats().device.usedBytes === 0);
  });
});

describe('ThreadedEngine limits and failures', () => {
  it('CapacityError at submit for a request that can never fit its tiers', async () => {
    const small = await ThreadedEngine.start({ model: stories260kDir(), numThreads: 1, deviceCapacityBytes: 160 * 1280 });
    try {
      assert.throws(() => small.submit(seeded('never', oracle[0].prompt_token_ids, 400, 1), () => undefined), CapacityError);
      const result = await generate(small, seeded('fits', oracle[0].prompt_token_ids, 50, 1));
      assert.equal(result.tokenIds.length, result.finish.completionTokens);
    } finally {
      await small.close();
    }
  });

  it('close ends running requests as cancelled, then refuses new ones', async () => {
    const engine = await ThreadedEngine.start({ model: stories260kDir(), numThreads: 1 });
    const running = generate(engine, seeded('long', oracle[0].prompt_token_ids, 500, 1));
    await engine.close();
    assert.equal((await running).finish.reason, 'cancelled');
    assert.throws(() => engine.submit(seeded('late', oracle[0].prompt_token_ids, 5, 1), () => undefined), EngineClosedError);
  });

  it('a thread that dies ends its open requests with the reason, tells the owner once, and refuses new ones', async () => {
    const engine = await ThreadedEngine.start({ model: stories260kDir(), numThreads: 1 });
    const failures: string[] = [];
    engine.onThreadFailure((reason) => failures.push(reason));
    const running = generate(engine, seeded('orphan', oracle[0].prompt_token_ids, 500, 1));
    // Stands in for a crash of the thread (an uncaught error or a native abort there ends it the same way).
    await (engine as unknown as { thread: { terminate(): Promise<number> } }).thread.terminate();
    const finish = (await running).finish;
    assert.equal(finish.reason, 'cancelled');
    assert.match(finish.error ?? '', /engine thread exited/);
    assert.equal(finish.promptTokens, oracle[0].prompt_token_ids.length);
    assert.equal(failures.length, 1);
    assert.throws(() => engine.submit(seeded('after', oracle[0].prompt_token_ids, 5, 1), () => undefined), EngineClosedError);
  });

  it('start rejects with the engine start-up error, naming the problem', async () => {
    await assert.rejects(ThreadedEngine.start({ model: 'synthetic:no-such-model' }), /unknown synthetic model "no-such-model"/);
  });
});

async function waitForStats(condition: () => boolean): Promise<void> {
  const giveUpAt = Date.now() + 2000;
  while (!condition()) {
    if (Date.now() > giveUpAt) assert.fail('stats did not show the request freed within 2 s');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
