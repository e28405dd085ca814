import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { stories260kDir } from '../testing/reference-data';
import { createEngine } from './create-engine';
import { generate } from './generate';
import { GenerationRequest } from './generation-request';
import { LlmEngine } from './llm-engine';

/**
 * Stop strings that span tokens, on stories260K (greedy "Once upon a time" goes on ", there was a little
 * girl…", where " there" and " was" are separate tokens): no token event may carry any part of the match.
 */
let engine: LlmEngine;

function request(requestId: string, stopStrings: string[], maxNewTokens = 24, resumeTokenIds?: number[]): GenerationRequest {
  return {
    requestId,
    promptTokenIds: engine.tokenizer.encode('Once upon a time'),
    maxNewTokens,
    sampling: { temperature: 0, topK: 0, topP: 1, seed: 0 },
    stopTokenIds: [],
    stopStrings,
    attention: { mode: 'full' },
    priority: 0,
    logprobs: false,
    ...(resumeTokenIds === undefined ? {} : { resumeTokenIds }),
  };
}

before(async () => {
  engine = await createEngine({ model: stories260kDir(), numThreads: 1 });
});

after(async () => {
  await engine?.close();
});

describe('stop strings spanning tokens', () => {
  it('the reference continuation has " there" and " was" as tokens of their own', async () => {
    const free = await generate(engine, request('free', []));
    assert.ok(free.text.startsWith(', there was'), free.text);
  });

  it('release only the text before the match: "," for " there was", never ", there"', async () => {
    const stopped = await generate(engine, request('stop', [' there was']));
    assert.equal(stopped.text, ',');
    assert.equal(stopped.finish.reason, 'stop');
  });

  it('release held text as soon as a token rules the stop string out', async () => {
    const free = await generate(engine, request('free-2', []));
    // " there is" shares " there" with the output, then differs: all text comes out, in order
    const held = await generate(engine, request('held', [' there is']));
    assert.equal(held.text, free.text);
    assert.equal(held.finish.reason, 'length');
  });

  it('release what is still held when the request ends by length', async () => {
    // the 2nd token ends at ", there", a prefix of the stop string: held, then released at the length limit
    const free = await generate(engine, request('free-3', [], 2));
    const short = await generate(engine, request('short', [' there was'], 2));
    assert.equal(short.text, free.text);
    assert.equal(short.finish.reason, 'length');
  });

  it('a resumed request releases from where the first attempt stopped releasing', async () => {
    const free = await generate(engine, request('free-4', []));
    // the first attempt released "," and held " there"; the resumed one must send " there" (and on), not lose it
    const resumed = await generate(engine, request('resumed', [' there is'], 24, free.tokenIds.slice(0, 2)));
    assert.equal(',' + resumed.text, free.text);
  });
});
