import { randomInt, randomUUID } from 'node:crypto';
import { InvalidRequestError, ModelConfig, validateGenerationRequest } from '@kcache-serve/kcache/light';
import {
  AttentionMode,
  GenerateRequest,
  GenerationJobRequest,
  JobAttentionMode,
  MAX_PRIORITY,
  MIN_PRIORITY,
  REQUEST_ID_PATTERN,
} from '@kcache-serve/proto';
import { InputLimits, RequestDefaults } from '../config/gateway-config';
import { PromptTokenizer } from '../core/prompt-tokenizer';
import { ConversationEncoder } from './conversation-encoder';
import { InvalidArgumentError } from '../errors/gateway-errors';
import { MAX_BYTES_PER_TOKEN } from './max-bytes-per-token';

const INT32_MAX = 0x7fffffff;
const UINT32_MAX = 0xffffffff;

/** An integer field in [min, max]; what is not an integer is left to the engine's check. */
function checkRange(field: string, value: number, min: number, max: number): void {
  if (Number.isInteger(value) && (value < min || value > max)) throw new InvalidArgumentError(field, `must be in [${min}, ${max}], got ${value}`);
}

const ATTENTION_MODES: ReadonlyMap<number, JobAttentionMode | null> = new Map([
  [AttentionMode.ATTENTION_MODE_UNSPECIFIED, null],
  [AttentionMode.ATTENTION_MODE_FULL, 'full'],
  [AttentionMode.ATTENTION_MODE_KCACHE, 'kcache'],
]);

/**
 * GenerateRequest (as decoded from the wire) → the job's validated request: checks the configured input
 * limits (sizes first, so nothing large is tokenized or queued), applies server defaults, tokenizes the
 * prompt (or renders and tokenizes the conversation), then runs the engine's one validator, the only check
 * of the request against the model. The job carries token ids only.
 * Throws InvalidArgumentError naming the proto field; error messages never quote the prompt, the conversation or stop strings.
 */
export class RequestValidator {
  private readonly maxPromptTokens: number;
  private readonly maxNewTokens: number;
  private readonly conversation: ConversationEncoder;

  constructor(
    private readonly model: ModelConfig,
    private readonly tokenizer: PromptTokenizer,
    private readonly defaults: RequestDefaults,
    private readonly limits: InputLimits,
  ) {
    this.maxPromptTokens = Math.min(limits.maxPromptTokens ?? model.maxSeqLen, model.maxSeqLen);
    this.maxNewTokens = Math.min(limits.maxNewTokens ?? model.maxSeqLen, model.maxSeqLen);
    this.conversation = new ConversationEncoder(tokenizer.encodeChat ?? null, {
      maxChatMessages: limits.maxChatMessages,
      maxChatMessageBytes: limits.maxChatMessageBytes,
      maxTotalBytes: limits.maxPromptBytes,
      maxPromptTokens: this.maxPromptTokens,
    });
  }

  toJobRequest(input: GenerateRequest): GenerationJobRequest {
    const requestId = input.requestId ?? randomUUID();
    if (!REQUEST_ID_PATTERN.test(requestId)) {
      throw new InvalidArgumentError('request_id', `must be 1 to 128 characters of [A-Za-z0-9._-], got '${requestId.slice(0, 140)}'`);
    }
    this.checkSizes(input);
    const maxNewTokens = input.maxNewTokens ?? Math.min(this.defaults.maxNewTokens, this.maxNewTokens);
    if (maxNewTokens > this.maxNewTokens) {
      throw new InvalidArgumentError('max_new_tokens', `${maxNewTokens} is above this server's limit of ${this.maxNewTokens}`);
    }
    const request: GenerationJobRequest = {
      requestId,
      promptTokenIds: this.promptTokenIds(input),
      maxNewTokens,
      sampling: {
        temperature: input.sampling?.temperature ?? this.defaults.temperature,
        topK: input.sampling?.topK ?? 0,
        topP: input.sampling?.topP ?? 1,
        seed: input.sampling?.seed ?? randomInt(2 ** 32),
      },
      stopTokenIds: input.stopTokenIds,
      stopStrings: input.stop,
      attention: this.attention(input),
      priority: input.priority,
      logprobs: input.logprobs,
      ...(input.topLogprobs ? { topLogprobs: input.topLogprobs } : {}),
    };
    if (request.priority < MIN_PRIORITY || request.priority > MAX_PRIORITY) {
      throw new InvalidArgumentError('priority', `must be in [${MIN_PRIORITY}, ${MAX_PRIORITY}], got ${request.priority}`);
    }
    if (request.stopStrings.some((s) => s.length === 0)) throw new InvalidArgumentError('stop', 'stop strings must not be empty');
    // The job contract's ceilings (HTTP numbers are not int32 like the proto's).
    checkRange('sampling.top_k', request.sampling.topK, 0, INT32_MAX);
    checkRange('sampling.seed', request.sampling.seed, 0, UINT32_MAX);
    checkRange('attention.top_n', request.attention.topN, 1, INT32_MAX);
    try {
      validateGenerationRequest(request, this.model);
    } catch (error) {
      if (!(error instanceof InvalidRequestError)) throw error;
      throw new InvalidArgumentError(error.field, error.reason, { cause: error });
    }
    return request;
  }

  /** Everything countable without tokenizing: prompt bytes and ids, the conversation, stop strings and ids. */
  private checkSizes(input: GenerateRequest): void {
    if (input.messages.length > 0) this.conversation.check(input.messages);
    const numPromptBytes = Buffer.byteLength(input.prompt, 'utf8');
    if (numPromptBytes > this.limits.maxPromptBytes) {
      throw new InvalidArgumentError('prompt', `${numPromptBytes} bytes is above this server's limit of ${this.limits.maxPromptBytes}`);
    }
    if (numPromptBytes > this.maxPromptTokens * MAX_BYTES_PER_TOKEN) {
      throw new InvalidArgumentError('prompt', `${numPromptBytes} bytes cannot fit ${this.maxPromptTokens} tokens`);
    }
    if (input.promptTokenIds.length > this.maxPromptTokens) {
      throw new InvalidArgumentError('prompt_token_ids', `${input.promptTokenIds.length} tokens is above the limit of ${this.maxPromptTokens}`);
    }
    if (input.stop.length > this.limits.maxStopStrings) {
      throw new InvalidArgumentError('stop', `${input.stop.length} stop strings is above the limit of ${this.limits.maxStopStrings}`);
    }
    for (const stop of input.stop) {
      const numBytes = Buffer.byteLength(stop, 'utf8');
      if (numBytes > this.limits.maxStopStringBytes) {
        throw new InvalidArgumentError('stop', `a stop string of ${numBytes} bytes is above the limit of ${this.limits.maxStopStringBytes}`);
      }
    }
    if (input.stopTokenIds.length > this.limits.maxStopTokenIds) {
      throw new InvalidArgumentError('stop_token_ids', `${input.stopTokenIds.length} ids is above the limit of ${this.limits.maxStopTokenIds}`);
    }
  }

  private promptTokenIds(input: GenerateRequest): number[] {
    if (input.prompt.length > 0 && input.promptTokenIds.length > 0) {
      throw new InvalidArgumentError('prompt', 'set either prompt or prompt_token_ids, not both');
    }
    if (input.messages.length > 0 && (input.prompt.length > 0 || input.promptTokenIds.length > 0)) {
      throw new InvalidArgumentError('messages', 'set either messages or a prompt (prompt or prompt_token_ids), not both');
    }
    if (input.addGenerationPrompt !== undefined && input.messages.length === 0) {
      throw new InvalidArgumentError('add_generation_prompt', 'applies to messages only, and no messages were given');
    }
    if (input.messages.length > 0) return this.conversation.encode(input.messages, input.addGenerationPrompt ?? true);
    if (input.prompt.length === 0 && input.promptTokenIds.length === 0) {
      throw new InvalidArgumentError('prompt', 'set one of prompt, prompt_token_ids and messages');
    }
    if (input.prompt.length === 0) return input.promptTokenIds;
    const tokenIds = this.tokenizer.encode(input.prompt);
    if (tokenIds.length > this.maxPromptTokens) {
      throw new InvalidArgumentError('prompt', `${tokenIds.length} tokens is above the limit of ${this.maxPromptTokens}`);
    }
    return tokenIds;
  }

  private attention(input: GenerateRequest): GenerationJobRequest['attention'] {
    const a = input.attention;
    const defaults = this.defaults.attention;
    const mode = ATTENTION_MODES.get(a?.mode ?? AttentionMode.ATTENTION_MODE_UNSPECIFIED);
    if (mode === undefined) throw new InvalidArgumentError('attention.mode', `unknown value ${a?.mode} (FULL or KCACHE)`);
    // Checked whatever the mode: a client that sets top_n means it (its upper bound in toJobRequest).
    if (a?.topN !== undefined && a.topN <= 0) throw new InvalidArgumentError('attention.top_n', `must be >= 1, got ${a.topN}`);
    return {
      mode: mode ?? defaults.mode,
      topN: a?.topN ?? defaults.topN,
      denseLayers: a?.denseLayers ?? defaults.denseLayers,
      renormalize: a?.renormalize ?? defaults.renormalize,
    };
  }
}
