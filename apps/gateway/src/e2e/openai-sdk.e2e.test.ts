import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { loadModel } from '@kcache-serve/kcache/light';
import { repoRoot, stories260kDir } from '@kcache-serve/kcache/testing';
import { ServingCluster } from '@kcache-serve/proto/dist/testing';
import { sha256Hex } from '../auth/api-key';

/**
 * The gateway's OpenAI-compatible API driven by the official `openai` npm SDK, as users call it, against
 * real gateways and workers: stories260K for completions, and a Hugging Face fixture with a chat template
 * for chat. API keys are on, so the SDK's own Authorization header is what gets checked.
 */
const CHAT_MODEL_DIR = join(repoRoot(), 'libs', 'kcache', 'fixtures', 'hf', 'qwen2-bias-tied-f16');
const API_KEY = 'kc-openai-sdk-key';
const PROMPT = 'Once upon a time';

let text: ServingCluster;
let chat: ServingCluster;
let client: OpenAI;
let chatClient: OpenAI;
let model: string;
let chatModel: string;

before(async () => {
  const gatewayEnv = { AUTH_MODE: 'api-key', API_KEY_HASHES: `sdk:${sha256Hex(API_KEY)}` };
  [text, chat] = await Promise.all([
    ServingCluster.start({ model: stories260kDir(), numWorkers: 1, gatewayEnv, apiKey: API_KEY }),
    ServingCluster.start({ model: CHAT_MODEL_DIR, numWorkers: 1, gatewayEnv, apiKey: API_KEY }),
  ]);
  client = new OpenAI({ baseURL: `${text.httpUrl}/v1`, apiKey: API_KEY, maxRetries: 0 });
  chatClient = new OpenAI({ baseURL: `${chat.httpUrl}/v1`, apiKey: API_KEY, maxRetries: 0 });
  // the name a gateway serves a model under is the model's own (loadModel), which /v1/models must list
  [model, chatModel] = [loadModel(stories260kDir()).name, loadModel(CHAT_MODEL_DIR).name];
});

after(async () => {
  await Promise.all([text?.stop(), chat?.stop()]);
});

/** The SDK's error for a call that must fail. */
async function apiError(call: Promise<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
  try {
    await call;
  } catch (error) {
    assert.ok(error instanceof OpenAI.APIError, String(error));
    return error;
  }
  assert.fail('the call succeeded');
}

describe('models', () => {
  it('GET /v1/models lists the served model; GET /v1/models/{id} retrieves it', async () => {
    const list = await client.models.list();
    assert.deepEqual(list.data.map((m) => [m.id, m.object, m.owned_by]), [[model, 'model', 'kcache-serve']]);
    const card = await client.models.retrieve(model);
    assert.equal(card.id, model);
    assert.ok(Number.isInteger(card.created));
  });

  it('an unknown model id is NotFoundError model_not_found, on /v1/models/{id} and in requests', async () => {
    const retrieve = await apiError(client.models.retrieve('gpt-4o'));
    assert.ok(retrieve instanceof OpenAI.NotFoundError);
    assert.equal(retrieve.code, 'model_not_found');
    // Each call starts only when awaited: a second rejection pending meanwhile would be unhandled.
    for (const call of [
      () => client.completions.create({ model: 'gpt-4o', prompt: PROMPT, max_tokens: 4 }),
      () => chatClient.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }], max_tokens: 4 }),
    ]) {
      const error = await apiError(call());
      assert.ok(error instanceof OpenAI.NotFoundError, String(error));
      assert.equal(error.code, 'model_not_found');
      assert.equal(error.type, 'invalid_request_error');
      assert.equal(error.param, 'model');
    }
  });
});

describe('completions', () => {
  it('not streamed: text, finish_reason, usage, and x-request-id on the response', async () => {
    const { data, response } = await client.completions.create({ model, prompt: PROMPT, max_tokens: 8, temperature: 0 }).withResponse();
    assert.equal(data.object, 'text_completion');
    assert.ok(data.choices[0].text.length > 0);
    assert.equal(data.choices[0].finish_reason, 'length');
    assert.equal(data.usage?.completion_tokens, 8);
    const requestId = response.headers.get('x-request-id');
    assert.ok(requestId && data.id.endsWith(requestId), `${requestId} vs ${data.id}`);
  });

  it('streamed: the same text; usage only with stream_options.include_usage, last, with choices []', async () => {
    const whole = await client.completions.create({ model, prompt: PROMPT, max_tokens: 8, temperature: 0 });
    const plain = await client.completions.create({ model, prompt: PROMPT, max_tokens: 8, temperature: 0, stream: true });
    let streamedText = '';
    for await (const chunk of plain) {
      assert.equal(chunk.usage ?? null, null, 'no usage without include_usage');
      streamedText += chunk.choices.map((c) => c.text).join('');
    }
    assert.equal(streamedText, whole.choices[0].text);
    const withUsage = await client.completions.create({ model, prompt: PROMPT, max_tokens: 8, temperature: 0, stream: true, stream_options: { include_usage: true } });
    const chunks = [];
    for await (const chunk of withUsage) chunks.push(chunk);
    assert.deepEqual(chunks.at(-1)?.choices, []);
    assert.deepEqual(chunks.at(-1)?.usage, whole.usage);
    assert.ok(chunks.slice(0, -1).every((c) => c.usage === undefined || c.usage === null));
    assert.equal(chunks.at(-2)?.choices[0].finish_reason, 'length');
  });

  it('a batch of prompts (texts or token-id lists) answers choices[i] for prompt i, usage summed', async () => {
    const prompts = [PROMPT, 'The little dog'];
    const singles = await Promise.all(prompts.map((prompt) => client.completions.create({ model, prompt, max_tokens: 6, temperature: 0 })));
    const batch = await client.completions.create({ model, prompt: prompts, max_tokens: 6, temperature: 0 });
    assert.deepEqual(batch.choices.map((c) => [c.index, c.text]), singles.map((s, i) => [i, s.choices[0].text]));
    assert.equal(batch.usage?.prompt_tokens, singles.reduce((n, s) => n + (s.usage?.prompt_tokens ?? 0), 0));
    assert.equal(batch.usage?.completion_tokens, 12);
    const stream = await client.completions.create({ model, prompt: prompts, max_tokens: 6, temperature: 0, stream: true, stream_options: { include_usage: true } });
    const texts = ['', ''];
    const finishes: Array<string | null> = [null, null];
    let streamedUsage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      for (const choice of chunk.choices) {
        texts[choice.index] += choice.text;
        finishes[choice.index] ??= choice.finish_reason;
      }
      streamedUsage = chunk.usage ?? streamedUsage;
    }
    assert.deepEqual(texts, singles.map((s) => s.choices[0].text));
    assert.deepEqual(finishes, ['length', 'length']);
    assert.deepEqual(streamedUsage, batch.usage);
    const idLists = await client.completions.create({ model, prompt: [[1, 400, 300], [1, 77]], max_tokens: 3, temperature: 0 });
    assert.deepEqual(idLists.choices.map((c) => c.index), [0, 1]);
  });

  it('parameters this server would ignore are BadRequestError naming them; their defaults pass', async () => {
    const cases: Array<[string, Record<string, unknown>]> = [
      ['n', { n: 2 }],
      ['best_of', { best_of: 3 }],
      ['echo', { echo: true }],
      ['suffix', { suffix: ' The end.' }],
      ['logit_bias', { logit_bias: { '50': 10 } }],
      ['presence_penalty', { presence_penalty: 0.5 }],
      ['frequency_penalty', { frequency_penalty: 0.5 }],
    ];
    for (const [field, extra] of cases) {
      const error = await apiError(client.completions.create({ model, prompt: PROMPT, max_tokens: 4, ...extra }));
      assert.ok(error instanceof OpenAI.BadRequestError, `${field}: ${String(error)}`);
      assert.equal(error.param, field);
      assert.equal(error.code, 'unsupported_parameter');
      assert.match(error.message, new RegExp(`^400 ${field}: is not supported`));
    }
    const defaults = { n: 1, best_of: 1, echo: false, presence_penalty: 0, frequency_penalty: 0, logit_bias: {} };
    assert.equal((await client.completions.create({ model, prompt: PROMPT, max_tokens: 2, ...defaults })).choices.length, 1);
  });

  it('temperature outside [0, 2] is BadRequestError on temperature', async () => {
    for (const temperature of [-0.1, 2.5]) {
      const error = await apiError(client.completions.create({ model, prompt: PROMPT, max_tokens: 4, temperature }));
      assert.ok(error instanceof OpenAI.BadRequestError);
      assert.equal(error.param, 'temperature');
      assert.equal(error.type, 'invalid_request_error');
    }
    assert.ok((await client.completions.create({ model, prompt: PROMPT, max_tokens: 2, temperature: 2 })).choices[0]);
  });

  it('a wrong API key is AuthenticationError', async () => {
    const stranger = new OpenAI({ baseURL: `${text.httpUrl}/v1`, apiKey: 'not-a-key', maxRetries: 0 });
    const error = await apiError(stranger.completions.create({ model, prompt: PROMPT, max_tokens: 2 }));
    assert.ok(error instanceof OpenAI.AuthenticationError);
    assert.equal(error.type, 'authentication_error');
  });
});

describe('chat completions', () => {
  const messages = [
    { role: 'system' as const, content: 'You tell short stories.' },
    { role: 'user' as const, content: 'Tell me about a cat named Max.' },
  ];

  it('not streamed and streamed give the same assistant reply', async () => {
    const whole = await chatClient.chat.completions.create({ model: chatModel, messages, max_tokens: 12, temperature: 0 });
    assert.equal(whole.choices[0].message.role, 'assistant');
    const stream = await chatClient.chat.completions.create({ model: chatModel, messages, max_tokens: 12, temperature: 0, stream: true });
    let content = '';
    for await (const chunk of stream) content += chunk.choices[0]?.delta.content ?? '';
    assert.equal(content, whole.choices[0].message.content);
  });

  it('content as a list of text parts is the same conversation as the joined string', async () => {
    const asParts = messages.map((m) => ({ role: m.role, content: [{ type: 'text' as const, text: m.content.slice(0, 5) }, { type: 'text' as const, text: m.content.slice(5) }] }));
    const [parts, plain] = await Promise.all([
      chatClient.chat.completions.create({ model: chatModel, messages: asParts, max_tokens: 12, temperature: 0 }),
      chatClient.chat.completions.create({ model: chatModel, messages, max_tokens: 12, temperature: 0 }),
    ]);
    assert.equal(parts.choices[0].message.content, plain.choices[0].message.content);
    assert.equal(parts.usage?.prompt_tokens, plain.usage?.prompt_tokens);
  });

  it('a part other than text is BadRequestError naming it', async () => {
    const error = await apiError(
      chatClient.chat.completions.create({ model: chatModel, messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'https://example.com/cat.png' } }] }], max_tokens: 4 }),
    );
    assert.ok(error instanceof OpenAI.BadRequestError);
    assert.equal(error.param, 'messages[0].content');
  });

  it('a model without a chat template is BadRequestError on messages', async () => {
    const error = await apiError(client.chat.completions.create({ model, messages, max_tokens: 4 }));
    assert.ok(error instanceof OpenAI.BadRequestError);
    assert.equal(error.param, 'messages');
  });

  it('n > 1 and penalties are refused on chat too', async () => {
    for (const extra of [{ n: 2 }, { frequency_penalty: 1 }, { presence_penalty: -1 }, { logit_bias: { '1': 1 } }]) {
      const error = await apiError(chatClient.chat.completions.create({ model: chatModel, messages, max_tokens: 4, ...extra }));
      assert.ok(error instanceof OpenAI.BadRequestError, JSON.stringify(extra));
      assert.equal(error.param, Object.keys(extra)[0]);
    }
  });
});

describe('HTTP details clients rely on', () => {
  it('a wrong method is 405 with Allow, in OpenAI error shape', async () => {
    for (const [method, path, allow] of [['GET', '/v1/completions', 'POST'], ['PUT', '/v1/chat/completions', 'POST'], ['POST', '/v1/models', 'GET']] as const) {
      const response = await fetch(`${text.httpUrl}${path}`, { method, headers: { authorization: `Bearer ${API_KEY}` } });
      assert.equal(response.status, 405, `${method} ${path}`);
      assert.equal(response.headers.get('allow'), allow);
      const body = (await response.json()) as { error: { type: string; code: string } };
      assert.deepEqual([body.error.type, body.error.code], ['invalid_request_error', 'method_not_allowed']);
    }
  });

  it('no X-Powered-By header', async () => {
    for (const path of ['/v1/models', '/healthz']) {
      const response = await fetch(`${text.httpUrl}${path}`, { headers: { authorization: `Bearer ${API_KEY}` } });
      assert.equal(response.headers.get('x-powered-by'), null, path);
    }
  });
});
