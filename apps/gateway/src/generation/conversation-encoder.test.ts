import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { HfTokenizer, loadModel } from '@kcache-serve/kcache/light';
import { repoRoot, stories260kDir } from '@kcache-serve/kcache/testing';
import { ChatMessage, GenerateRequest } from '@kcache-serve/proto';
import { InputLimits, RequestDefaults } from '../config/gateway-config';
import { loadServedModel, promptTokenizerOf, ServedModel } from '../core/served-model';
import { InvalidArgumentError } from '../errors/gateway-errors';
import { RequestValidator } from './request-validator';

const fixture = (name: string) => join(repoRoot(), 'libs', 'kcache', 'fixtures', 'hf', name);
const QWEN2 = fixture('qwen2-bias-tied-f16'); // ChatML template, any role
const LLAMA = fixture('llama-gqa-llama3rope-tied-f32'); // Llama 2 template: user/assistant must alternate

const DEFAULTS: RequestDefaults = { maxNewTokens: 8, temperature: 0, attention: { mode: 'full', topN: 64, denseLayers: 0, renormalize: false } };
const LIMITS: InputLimits = { maxPromptBytes: 1000, maxPromptTokens: null, maxChatMessages: 4, maxChatMessageBytes: 400, maxNewTokens: null, maxStopStrings: 4, maxStopStringBytes: 64, maxStopTokenIds: 4 };
const CONVERSATION: ChatMessage[] = [
  { role: 'system', content: 'You tell short stories.' },
  { role: 'user', content: 'Tell me about a cat named Max.' },
];

const validatorOf = (model: ServedModel, limits: Partial<InputLimits> = {}) => new RequestValidator(model.config, model.tokenizer, DEFAULTS, { ...LIMITS, ...limits });
const chat = (patch: Partial<GenerateRequest>) => GenerateRequest.fromPartial({ messages: CONVERSATION, ...patch });
const qwen2 = loadServedModel(QWEN2);

function assertRefused(validator: RequestValidator, patch: Partial<GenerateRequest>, field: string, message: RegExp): void {
  assert.throws(
    () => validator.toJobRequest(chat(patch)),
    (e: unknown) => e instanceof InvalidArgumentError && e.field === field && message.test(e.message) && e.message.startsWith(`${field}: `),
    JSON.stringify(patch).slice(0, 100),
  );
}

describe('GenerateRequest.messages', () => {
  it("become the chat template's token ids, with the generation prompt unless turned off", () => {
    const tokenizer = loadModel(QWEN2).tokenizer as HfTokenizer;
    const job = validatorOf(qwen2).toJobRequest(chat({}));
    assert.deepEqual(job.promptTokenIds, tokenizer.encodeChat(CONVERSATION));
    assert.ok(tokenizer.decode(job.promptTokenIds).endsWith('assistant\n'));
    const withoutPrompt = validatorOf(qwen2).toJobRequest(chat({ addGenerationPrompt: false }));
    assert.deepEqual(withoutPrompt.promptTokenIds, tokenizer.encodeChat(CONVERSATION, { addGenerationPrompt: false }));
    assert.ok(withoutPrompt.promptTokenIds.length < job.promptTokenIds.length);
  });

  it('match what transformers rendered for the fixture conversation', () => {
    const reference = JSON.parse(readFileSync(join(QWEN2, 'reference.json'), 'utf8')) as { chat: { messages: ChatMessage[]; ids: number[] } };
    assert.deepEqual(validatorOf(qwen2).toJobRequest(chat({ messages: reference.chat.messages })).promptTokenIds, reference.chat.ids);
  });

  it('a model without a chat template: INVALID_ARGUMENT naming messages, llama2.c or Hugging Face', () => {
    const llama2c = loadServedModel(stories260kDir());
    assertRefused(validatorOf(llama2c), {}, 'messages', /the model has no chat template/);
    const json = JSON.parse(readFileSync(join(QWEN2, 'tokenizer.json'), 'utf8')) as unknown;
    const untemplated = new HfTokenizer(json, { eos_token: '<|im_end|>' });
    assert.equal(untemplated.chatTemplate, null);
    assertRefused(validatorOf({ ...qwen2, tokenizer: promptTokenizerOf(untemplated) }), {}, 'messages', /the model has no chat template/);
  });

  it('refuses bad roles, too many messages, large messages and conversations, naming the field', () => {
    const validator = validatorOf(qwen2);
    assertRefused(validator, { messages: [{ role: 'robot', content: 'hi' }] }, 'messages[0].role', /'robot' is not one of system, user, assistant, tool/);
    assertRefused(validator, { messages: [...CONVERSATION, { role: '', content: 'hi' }] }, 'messages[2].role', /'' is not one of/);
    assertRefused(validator, { messages: new Array(5).fill(CONVERSATION[1]) }, 'messages', /5 messages is above this server's limit of 4/);
    assertRefused(validator, { messages: [{ role: 'user', content: 'é'.repeat(201) }] }, 'messages[0].content', /402 bytes is above this server's limit of 400/);
    const big = { role: 'user', content: 'x'.repeat(300) };
    assertRefused(validator, { messages: [big, big, big, big] }, 'messages', /1200 bytes of content is above this server's limit of 1000/);
  });

  it('refuses conversations over the token limit without quoting them', () => {
    const secret = 'secret words '.repeat(20);
    assert.throws(
      () => validatorOf(qwen2, { maxPromptTokens: 50 }).toJobRequest(chat({ messages: [{ role: 'user', content: secret }] })),
      (e: unknown) => e instanceof InvalidArgumentError && /^messages: \d+ tokens is above the limit of 50$/.test(e.message),
    );
  });

  it('refuses what the template itself rejects, with its reason', () => {
    const twoUsers = [
      { role: 'user', content: 'hi' },
      { role: 'user', content: 'again' },
    ];
    assertRefused(validatorOf(loadServedModel(LLAMA)), { messages: twoUsers }, 'messages', /roles must alternate/);
  });

  it('takes exactly one of prompt, prompt_token_ids and messages; add_generation_prompt only with messages', () => {
    const validator = validatorOf(qwen2);
    assertRefused(validator, { prompt: 'Once' }, 'messages', /set either messages or a prompt/);
    assertRefused(validator, { promptTokenIds: [1, 2] }, 'messages', /set either messages or a prompt/);
    assertRefused(validator, { messages: [] }, 'prompt', /set one of prompt, prompt_token_ids and messages/);
    assertRefused(validator, { messages: [], prompt: 'Once', addGenerationPrompt: true }, 'add_generation_prompt', /messages only/);
  });
});
