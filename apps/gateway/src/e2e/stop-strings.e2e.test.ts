import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { stories260kDir } from '@kcache-serve/kcache/testing';
import { FinishReason } from '@kcache-serve/proto';
import { collectStream, ServingCluster } from '@kcache-serve/proto/dist/testing';

/**
 * A stop string that spans tokens, through a real gateway and worker: greedy stories260K continues
 * "Once upon a time" with ", there was …", so stop " there was" must give "," (as OpenAI and vLLM do),
 * never ", there", over gRPC and over HTTP with the official OpenAI SDK, streamed and not.
 */
const PROMPT = 'Once upon a time';
const STOP = ' there was';

let cluster: ServingCluster;
let openai: OpenAI;

before(async () => {
  cluster = await ServingCluster.start({ model: stories260kDir(), numWorkers: 1 });
  openai = new OpenAI({ baseURL: `${cluster.httpUrl}/v1`, apiKey: 'unused', maxRetries: 0 });
});

after(async () => {
  await cluster?.stop();
});

describe('stop strings spanning tokens, end to end', () => {
  it('gRPC: the streamed text deltas stop before the match', async () => {
    const free = await collectStream(cluster.client(), { prompt: PROMPT, maxNewTokens: 8, sampling: { temperature: 0 } });
    assert.ok(free.tokens.map((t) => t.text).join('').startsWith(`,${STOP}`));
    const stopped = await collectStream(cluster.client(), { prompt: PROMPT, maxNewTokens: 24, sampling: { temperature: 0 }, stop: [STOP] });
    assert.equal(stopped.error, null);
    assert.equal(stopped.tokens.map((t) => t.text).join(''), ',');
    assert.equal(stopped.final?.finishReason, FinishReason.FINISH_REASON_STOP);
  });

  it('HTTP completions (OpenAI SDK, not streamed): text is ","', async () => {
    const completion = await openai.completions.create({ model: 'stories260K', prompt: PROMPT, max_tokens: 24, temperature: 0, stop: [STOP] });
    assert.equal(completion.choices[0].text, ',');
    assert.equal(completion.choices[0].finish_reason, 'stop');
  });

  it('HTTP completions (OpenAI SDK, streamed): the chunks join to ","', async () => {
    const stream = await openai.completions.create({ model: 'stories260K', prompt: PROMPT, max_tokens: 24, temperature: 0, stop: STOP, stream: true });
    let text = '';
    for await (const chunk of stream) text += chunk.choices.map((c) => c.text).join('');
    assert.equal(text, ',');
  });
});
