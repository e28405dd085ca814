import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { createEngine, GenerationRequest, LlmEngine, loadModel, repoRoot, TokenEvent } from '@kcache-serve/kcache';
import { stories260kDir } from '@kcache-serve/kcache/testing';
import { AttentionMode, FinishReason } from '@kcache-serve/proto';
import { collectStream, ServingCluster } from '@kcache-serve/proto/dist/testing';

/**
 * OpenAI's logprobs shapes, as vLLM's server gives them, read with the official `openai` SDK: completions'
 * `top_logprobs` (`logprobs: k`) and `text_offset`, chat's `bytes` and `top_logprobs`, checked against the
 * engine run in this process (chat on a Hugging Face fixture with a chat template); and a stream that fails after it began ends with an error event and [DONE].
 * The worker's device tier holds 160 positions (stories260K: 1280 bytes a position), so a request that
 * may grow past that fails on the worker, after the gateway answered 200.
 */
const MODEL = stories260kDir();
const PROMPT = 'Once upon a time';
const DEVICE_CAPACITY_BYTES = 160 * 1280;
const CHAT_MODEL_DIR = join(repoRoot(), 'libs', 'kcache', 'fixtures', 'hf', 'qwen2-bias-tied-f16');

let cluster: ServingCluster;
let chatCluster: ServingCluster;
let engine: LlmEngine;
let client: OpenAI;
let chatClient: OpenAI;
let model: string;
let chatModel: string;

before(async () => {
  [cluster, chatCluster, engine] = await Promise.all([
    ServingCluster.start({ model: MODEL, numWorkers: 1, workerEnv: { DEVICE_CAPACITY_BYTES: String(DEVICE_CAPACITY_BYTES) } }),
    ServingCluster.start({ model: CHAT_MODEL_DIR, numWorkers: 1 }),
    createEngine({ model: MODEL, numThreads: 1 }),
  ]);
  client = new OpenAI({ baseURL: `${cluster.httpUrl}/v1`, apiKey: 'unused', maxRetries: 0 });
  chatClient = new OpenAI({ baseURL: `${chatCluster.httpUrl}/v1`, apiKey: 'unused', maxRetries: 0 });
  [model, chatModel] = [loadModel(MODEL).name, loadModel(CHAT_MODEL_DIR).name];
});

after(async () => {
  await engine?.close();
  await Promise.all([cluster?.stop(), chatCluster?.stop()]);
});

/** The token events of the greedy request the gateway builds for PROMPT, run in this process. */
function referenceTokens(maxNewTokens: number, topLogprobs: number): Promise<TokenEvent[]> {
  const request: GenerationRequest = {
    requestId: `ref-${maxNewTokens}-${topLogprobs}`,
    promptTokenIds: engine.tokenizer.encode(PROMPT),
    maxNewTokens,
    sampling: { temperature: 0, topK: 0, topP: 1, seed: 0 },
    stopTokenIds: [],
    stopStrings: [],
    attention: { mode: 'full' },
    priority: 0,
    logprobs: true,
    topLogprobs,
  };
  return new Promise((resolve) => {
    const tokens: TokenEvent[] = [];
    engine.submit(request, (event) => (event.type === 'token' ? tokens.push(event) : resolve(tokens)));
  });
}

describe('completions logprobs', () => {
  it('logprobs: k gives top_logprobs (k most likely per token, the engine\'s) and text_offset, streamed or not', async () => {
    const expected = await referenceTokens(12, 3);
    const whole = await client.completions.create({ model, prompt: PROMPT, max_tokens: 12, temperature: 0, logprobs: 3 });
    const logprobs = whole.choices[0].logprobs;
    assert.ok(logprobs);
    assert.deepEqual(logprobs.tokens, expected.map((t) => t.text));
    assert.deepEqual(logprobs.token_logprobs, expected.map((t) => t.logprob));
    const expectedTop = expected.map((t) => Object.fromEntries((t.topLogprobs ?? []).map((top) => [top.text, top.logprob])));
    assert.deepEqual(logprobs.top_logprobs, expectedTop);
    for (const [i, top] of (logprobs.top_logprobs ?? []).entries()) {
      assert.equal(Object.keys(top).length, 3);
      // greedy: the chosen token is the most likely one
      assert.deepEqual(Object.entries(top)[0], [logprobs.tokens?.[i], logprobs.token_logprobs?.[i]]);
    }
    const offsets = logprobs.tokens?.map((_, i) => logprobs.tokens?.slice(0, i).join('').length);
    assert.deepEqual(logprobs.text_offset, offsets);
    assert.equal(whole.choices[0].text, expected.map((t) => t.text).join(''));

    const streamed = { top: [] as unknown[], offsets: [] as number[] };
    for await (const chunk of await client.completions.create({ model, prompt: PROMPT, max_tokens: 12, temperature: 0, logprobs: 3, stream: true })) {
      const part = chunk.choices[0]?.logprobs;
      if (!part?.tokens?.length) continue;
      streamed.top.push(...(part.top_logprobs ?? []));
      streamed.offsets.push(...(part.text_offset ?? []));
    }
    assert.deepEqual(streamed.top, expectedTop);
    assert.deepEqual(streamed.offsets, offsets);
  });

  it('logprobs: 0 gives the chosen tokens\' logprobs and no top_logprobs; above 20 is BadRequestError on logprobs', async () => {
    const zero = await client.completions.create({ model, prompt: PROMPT, max_tokens: 4, temperature: 0, logprobs: 0 });
    assert.equal(zero.choices[0].logprobs?.token_logprobs?.length, 4);
    assert.equal(zero.choices[0].logprobs?.top_logprobs, null);
    const error = await client.completions.create({ model, prompt: PROMPT, max_tokens: 4, logprobs: 21 }).then(
      () => assert.fail('accepted'),
      (e: unknown) => e,
    );
    assert.ok(error instanceof OpenAI.BadRequestError, String(error));
    assert.equal(error.param, 'logprobs');
  });

  it('gRPC: top_logprobs arrive on each TokenEvent; top_logprobs without logprobs is INVALID_ARGUMENT naming it', async () => {
    const expected = await referenceTokens(6, 2);
    const streamed = await collectStream(cluster.client(), {
      prompt: PROMPT,
      maxNewTokens: 6,
      sampling: { temperature: 0 },
      attention: { mode: AttentionMode.ATTENTION_MODE_FULL },
      logprobs: true,
      topLogprobs: 2,
    });
    assert.equal(streamed.final?.finishReason, FinishReason.FINISH_REASON_LENGTH);
    assert.deepEqual(streamed.tokens.map((t) => t.topLogprobs), expected.map((t) => t.topLogprobs));
    const refused = await collectStream(cluster.client(), { prompt: PROMPT, maxNewTokens: 2, topLogprobs: 2 });
    assert.match(refused.error?.details ?? '', /^top_logprobs: needs logprobs/);
  });
});

describe('chat logprobs', () => {
  const messages = [{ role: 'user' as const, content: 'Tell me about a cat named Max.' }];

  it('each content entry has token, logprob, its UTF-8 bytes and top_logprobs (k, most likely first, with bytes)', async () => {
    const whole = await chatClient.chat.completions.create({ model: chatModel, messages, max_tokens: 8, temperature: 0, logprobs: true, top_logprobs: 2 });
    const content = whole.choices[0].logprobs?.content ?? [];
    assert.equal(content.length, whole.usage?.completion_tokens);
    assert.equal(content.map((c) => c.token).join(''), whole.choices[0].message.content);
    for (const entry of content) {
      assert.deepEqual(entry.bytes, [...Buffer.from(entry.token, 'utf8')]);
      assert.equal(entry.top_logprobs.length, 2);
      assert.ok(entry.top_logprobs[0].logprob >= entry.top_logprobs[1].logprob);
      assert.equal(entry.top_logprobs[0].logprob, entry.logprob);
      for (const top of entry.top_logprobs) assert.deepEqual(top.bytes, [...Buffer.from(top.token, 'utf8')]);
    }
    const streamed: unknown[] = [];
    for await (const chunk of await chatClient.chat.completions.create({ model: chatModel, messages, max_tokens: 8, temperature: 0, logprobs: true, top_logprobs: 2, stream: true })) {
      streamed.push(...(chunk.choices[0]?.logprobs?.content ?? []));
    }
    assert.deepEqual(streamed, content);
  });

  it('logprobs: true alone gives bytes and empty top_logprobs; top_logprobs without logprobs: true is BadRequestError naming it', async () => {
    const plain = await chatClient.chat.completions.create({ model: chatModel, messages, max_tokens: 3, temperature: 0, logprobs: true });
    for (const entry of plain.choices[0].logprobs?.content ?? []) {
      assert.ok(Array.isArray(entry.bytes));
      assert.deepEqual(entry.top_logprobs, []);
    }
    const error = await chatClient.chat.completions
      .create({ model: chatModel, messages, top_logprobs: 2 })
      .then(() => assert.fail('accepted'), (e: unknown) => e);
    assert.ok(error instanceof OpenAI.BadRequestError, String(error));
    assert.equal(error.param, 'top_logprobs');
  });
});

describe('a stream that fails after it began', () => {
  it('sends one error event in OpenAI shape, then data: [DONE], and closes; the SDK raises APIError', async () => {
    // prompt 0 fits the worker (its tokens may stream first), prompt 1 may grow past its device tier and fails there
    const promptIds = engine.tokenizer.encode(PROMPT);
    const response = await fetch(`${cluster.httpUrl}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model, prompt: [promptIds, [...promptIds, ...promptIds, ...promptIds, ...promptIds]], max_tokens: 150, temperature: 0, stream: true }),
    });
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^text\/event-stream/);
    const events = (await response.text()).split('\n\n').filter((e) => e.length > 0);
    assert.equal(events.at(-1), 'data: [DONE]');
    const error = JSON.parse(events.at(-2)?.replace(/^data: /, '') ?? '{}') as { error?: { message: string; type: string; code: string } };
    assert.equal(error.error?.code, 'resource_exhausted');
    assert.match(error.error?.message ?? '', /more than the memory tiers hold/);
    assert.equal(events.filter((e) => e.includes('"error"')).length, 1);

    const sdkStream = await client.completions.create({ model, prompt: PROMPT, max_tokens: 400, temperature: 0, stream: true });
    const thrown = await (async () => {
      for await (const chunk of sdkStream) void chunk;
    })().then(
      () => assert.fail('the stream ended without an error'),
      (e: unknown) => e,
    );
    assert.ok(thrown instanceof OpenAI.APIError, String(thrown));
    assert.match(thrown.message, /more than the memory tiers hold/);
  });
});
