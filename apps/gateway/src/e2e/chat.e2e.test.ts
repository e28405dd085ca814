import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { status as Status } from '@grpc/grpc-js';
import { createEngine, generate, LlmEngine, GenerationRequest } from '@kcache-serve/kcache';
import { repoRoot } from '@kcache-serve/kcache/testing';
import { ChatMessage, FinishReason, GenerateRequest } from '@kcache-serve/proto';
import { bearer, collectStream, ServingCluster } from '@kcache-serve/proto/dist/testing';
import { sha256Hex } from '../auth/api-key';

/**
 * Chat requests end to end: a Hugging Face fixture model with a ChatML template served by a real gateway
 * and worker (Redis, gRPC, onnxruntime), compared with the engine run here on tokenizer.encodeChat's ids.
 * Auth is on, so the chat endpoint is shown to sit behind the same API-key check.
 */
const MODEL = join(repoRoot(), 'libs', 'kcache', 'fixtures', 'hf', 'qwen2-bias-tied-f16');
const API_KEY = 'kc-chat-test-key';
const MAX_CHAT_MESSAGE_BYTES = 600;
const CONVERSATION: ChatMessage[] = [
  { role: 'system', content: 'You tell short stories.' },
  { role: 'user', content: 'Tell me about a cat named Max.' },
];
const MAX_NEW_TOKENS = 24;

interface ChatCompletionJson {
  object: string;
  choices: Array<{ message: { role: string; content: string }; finish_reason: string | null }>;
  usage: { prompt_tokens: number; completion_tokens: number };
}
interface ChatChunkJson {
  object: string;
  choices: Array<{ delta: { role?: string; content?: string }; finish_reason: string | null }>;
  usage?: { prompt_tokens: number; completion_tokens: number };
}
interface ErrorJson {
  error: { message: string; type: string; param: string | null; code: string | null };
}

let cluster: ServingCluster;
let engine: LlmEngine;

before(async () => {
  [cluster, engine] = await Promise.all([
    ServingCluster.start({
      model: MODEL,
      numWorkers: 1,
      gatewayEnv: { AUTH_MODE: 'api-key', API_KEY_HASHES: `chat:${sha256Hex(API_KEY)}`, MAX_CHAT_MESSAGES: '8', MAX_CHAT_MESSAGE_BYTES: String(MAX_CHAT_MESSAGE_BYTES), MAX_PROMPT_BYTES: '2000' },
    }),
    createEngine({ model: MODEL, numThreads: 1 }),
  ]);
});

after(async () => {
  await engine?.close();
  await cluster?.stop();
});

/** Greedy, on the ids the model's chat template gives: what the gateway must queue for CONVERSATION. */
function referenceRequest(requestId: string, addGenerationPrompt = true): GenerationRequest {
  return {
    requestId,
    promptTokenIds: engine.tokenizer.encodeChat!(CONVERSATION, { addGenerationPrompt }),
    maxNewTokens: MAX_NEW_TOKENS,
    sampling: { temperature: 0, topK: 0, topP: 1, seed: 0 },
    stopTokenIds: [],
    stopStrings: [],
    attention: { mode: 'full' },
    priority: 0,
    logprobs: false,
  };
}

const generateChat = (patch: Partial<GenerateRequest> = {}) =>
  collectStream(cluster.client(), { messages: CONVERSATION, maxNewTokens: MAX_NEW_TOKENS, sampling: { temperature: 0 }, ...patch }, 30_000, undefined, bearer(API_KEY));

const postChat = (body: unknown, headers: Record<string, string> = { authorization: `Bearer ${API_KEY}` }) =>
  fetch(`${cluster.httpUrl}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });

const chatBody = { messages: CONVERSATION, max_tokens: MAX_NEW_TOKENS, temperature: 0 };

describe('chat over gRPC', () => {
  it("streams the engine's greedy tokens for tokenizer.encodeChat(messages)", async () => {
    const [streamed, expected] = await Promise.all([generateChat({ requestId: 'chat-grpc' }), generate(engine, referenceRequest('ref-chat-grpc'))]);
    assert.equal(streamed.error, null, streamed.error?.details);
    assert.ok(expected.tokenIds.length > 0);
    assert.deepEqual(streamed.tokens.map((t) => t.tokenId), expected.tokenIds);
    assert.equal(streamed.tokens.map((t) => t.text).join(''), expected.text);
    assert.deepEqual(streamed.final?.usage, { promptTokens: expected.finish.promptTokens, completionTokens: expected.tokenIds.length });
    assert.equal(streamed.final?.finishReason, expected.finish.reason === 'length' ? FinishReason.FINISH_REASON_LENGTH : FinishReason.FINISH_REASON_EOS);
  });

  it('add_generation_prompt: false renders the conversation without the assistant header', async () => {
    const [streamed, expected] = await Promise.all([generateChat({ addGenerationPrompt: false }), generate(engine, referenceRequest('ref-chat-no-prompt', false))]);
    assert.equal(streamed.error, null, streamed.error?.details);
    assert.equal(streamed.final?.usage?.promptTokens, expected.finish.promptTokens);
    assert.ok(expected.finish.promptTokens < referenceRequest('longer').promptTokenIds.length);
    assert.deepEqual(streamed.tokens.map((t) => t.tokenId), expected.tokenIds);
  });
});

describe('POST /v1/chat/completions', () => {
  it('stream: true sends chat.completion.chunk events with the same text as the engine, then [DONE]', async () => {
    const [response, expected] = await Promise.all([postChat({ ...chatBody, stream: true, stream_options: { include_usage: true } }), generate(engine, referenceRequest('ref-chat-sse'))]);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /text\/event-stream/);
    const events = (await response.text()).split('\n\n').filter((e) => e.startsWith('data: ')).map((e) => e.slice(6));
    assert.equal(events.at(-1), '[DONE]');
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e) as ChatChunkJson);
    assert.ok(chunks.every((c) => c.object === 'chat.completion.chunk'));
    assert.equal(chunks[0].choices[0].delta.role, 'assistant');
    assert.equal(chunks.map((c) => c.choices[0]?.delta.content ?? '').join(''), expected.text);
    assert.equal(chunks.at(-2)?.choices[0].finish_reason, expected.finish.reason === 'length' ? 'length' : 'stop');
    // stream_options.include_usage: the usage comes last, in a chunk of its own with no choices
    assert.deepEqual(chunks.at(-1)?.choices, []);
    assert.deepEqual(chunks.at(-1)?.usage, { prompt_tokens: expected.finish.promptTokens, completion_tokens: expected.tokenIds.length, total_tokens: expected.finish.promptTokens + expected.tokenIds.length });
  });

  it('without stream answers one chat.completion with the assistant message', async () => {
    const [response, expected] = await Promise.all([postChat(chatBody), generate(engine, referenceRequest('ref-chat-json'))]);
    assert.equal(response.status, 200);
    const json = (await response.json()) as ChatCompletionJson;
    assert.equal(json.object, 'chat.completion');
    assert.deepEqual(json.choices[0].message, { role: 'assistant', content: expected.text });
    assert.equal(json.usage.prompt_tokens, expected.finish.promptTokens);
  });

  it('needs an API key like every generation endpoint', async () => {
    const response = await postChat(chatBody, {});
    assert.equal(response.status, 401);
    assert.equal(((await response.json()) as ErrorJson).error.type, 'authentication_error');
  });
});

describe('chat validation', () => {
  it('empty messages → INVALID_ARGUMENT (nothing to continue) and 400 naming messages', async () => {
    const streamed = await generateChat({ messages: [] });
    assert.equal(streamed.error?.code, Status.INVALID_ARGUMENT);
    assert.equal(streamed.error!.details, 'prompt: set one of prompt, prompt_token_ids and messages');
    const response = await postChat({ ...chatBody, messages: [] });
    assert.equal(response.status, 400);
    assert.deepEqual(((await response.json()) as ErrorJson).error, { message: 'messages: must hold at least one message', type: 'invalid_request_error', param: 'messages', code: 'invalid_argument' });
  });

  const tooLong = 'x'.repeat(MAX_CHAT_MESSAGE_BYTES + 1);
  const cases: Array<[string, ChatMessage[], string, RegExp]> = [
    ['a bad role', [{ role: 'wizard', content: 'hi' }], 'messages[0].role', /'wizard' is not one of system, user, assistant, tool$/],
    ['a message too large', [CONVERSATION[0], { role: 'user', content: tooLong }], 'messages[1].content', /601 bytes is above this server's limit of 600$/],
    ['too many messages', new Array(9).fill(CONVERSATION[1]), 'messages', /9 messages is above this server's limit of 8$/],
    ['a conversation too large', new Array(4).fill({ role: 'user', content: 'y'.repeat(550) }), 'messages', /2200 bytes of content is above this server's limit of 2000$/],
  ];
  for (const [what, messages, field, message] of cases) {
    it(`${what} → INVALID_ARGUMENT over gRPC and 400 over HTTP, naming ${field}`, async () => {
      const streamed = await generateChat({ messages });
      assert.equal(streamed.error?.code, Status.INVALID_ARGUMENT, what);
      assert.ok(streamed.error!.details.startsWith(`${field}: `), streamed.error!.details);
      assert.match(streamed.error!.details, message);
      const response = await postChat({ ...chatBody, messages });
      assert.equal(response.status, 400);
      const json = (await response.json()) as ErrorJson;
      assert.equal(json.error.param, field);
      assert.match(json.error.message, message);
    });
  }

  it('messages beside a prompt → INVALID_ARGUMENT naming messages', async () => {
    const streamed = await generateChat({ prompt: 'Once' });
    assert.equal(streamed.error?.code, Status.INVALID_ARGUMENT);
    assert.match(streamed.error!.details, /^messages: set either messages or a prompt/);
  });

  it('leaves no job behind', async () => {
    const counts = await cluster.queue().getJobCounts('wait', 'prioritized', 'active', 'delayed', 'failed');
    assert.deepEqual(counts, { wait: 0, prioritized: 0, active: 0, delayed: 0, failed: 0 });
  });
});
