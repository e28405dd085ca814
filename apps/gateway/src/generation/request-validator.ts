import { randomInt, randomUUID } from 'node:crypto';
import { InvalidRequestError, ModelConfig, validateGenerationRequest } from '@kcache-serve/kcache';
import {
  AttentionMode,
  GenerateRequest,
  GenerationJobRequest,
  JobAttentionMode,
  MAX_PRIORITY,
  MIN_PRIORITY,
  REQUEST_ID_PATTERN,
} from '@kcache-serve/proto';
import { RequestDefaults } from '../config/gateway-config';
import { InvalidArgumentError } from './gateway-errors';

export interface PromptTokenizer {
  encode(text: string): number[];
}

/**
 * No vocabulary we serve has tokens this long, so a prompt of more than maxSeqLen times this many bytes
 * cannot fit the context; it is refused before tokenizing (which blocks the event loop ~150 ms per MB).
 */
const MAX_BYTES_PER_TOKEN = 256;

/** The engine validates sampling with its own names; clients know the proto's. */
const ENGINE_TO_PROTO_FIELD: Readonly<Record<string, string>> = {
  temperature: 'sampling.temperature',
  topK: 'sampling.top_k',
  topP: 'sampling.top_p',
  seed: 'sampling.seed',
};

const ATTENTION_MODES: ReadonlyMap<number, JobAttentionMode | null> = new Map([
  [AttentionMode.ATTENTION_MODE_UNSPECIFIED, null],
  [AttentionMode.ATTENTION_MODE_FULL, 'full'],
  [AttentionMode.ATTENTION_MODE_KCACHE, 'kcache'],
]);

/**
 * GenerateRequest (as decoded from the wire) → the job's validated request: applies server defaults,
 * tokenizes the prompt, then runs the engine's own validation so gateway and worker agree.
 * Throws InvalidArgumentError naming the proto field.
 */
export class RequestValidator {
  constructor(
    private readonly model: ModelConfig,
    private readonly tokenizer: PromptTokenizer,
    private readonly defaults: RequestDefaults,
  ) {}

  toJobRequest(input: GenerateRequest): GenerationJobRequest {
    const requestId = input.requestId ?? randomUUID();
    if (!REQUEST_ID_PATTERN.test(requestId)) {
      throw new InvalidArgumentError('request_id', `must be 1 to 128 characters of [A-Za-z0-9._-], got '${requestId.slice(0, 140)}'`);
    }
    const request: GenerationJobRequest = {
      requestId,
      promptTokenIds: this.promptTokenIds(input),
      maxNewTokens: input.maxNewTokens ?? Math.min(this.defaults.maxNewTokens, this.model.maxSeqLen),
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
    };
    if (request.priority < MIN_PRIORITY || request.priority > MAX_PRIORITY) {
      throw new InvalidArgumentError('priority', `must be in [${MIN_PRIORITY}, ${MAX_PRIORITY}], got ${request.priority}`);
    }
    if (request.stopStrings.some((s) => s.length === 0)) throw new InvalidArgumentError('stop', 'stop strings must not be empty');
    try {
      validateGenerationRequest(request, this.model);
    } catch (error) {
      if (!(error instanceof InvalidRequestError)) throw error;
      const field = ENGINE_TO_PROTO_FIELD[error.field] ?? error.field;
      throw new InvalidArgumentError(field, error.message.replace(`${error.field}: `, ''), { cause: error });
    }
    return request;
  }

  private promptTokenIds(input: GenerateRequest): number[] {
    if (input.prompt.length > 0 && input.promptTokenIds.length > 0) {
      throw new InvalidArgumentError('prompt', 'set either prompt or prompt_token_ids, not both');
    }
    if (input.prompt.length === 0) return input.promptTokenIds;
    const numBytes = Buffer.byteLength(input.prompt, 'utf8');
    if (numBytes > this.model.maxSeqLen * MAX_BYTES_PER_TOKEN) {
      throw new InvalidArgumentError('prompt', `${numBytes} bytes cannot fit the model context of ${this.model.maxSeqLen} tokens`);
    }
    return this.tokenizer.encode(input.prompt);
  }

  private attention(input: GenerateRequest): GenerationJobRequest['attention'] {
    const a = input.attention;
    const defaults = this.defaults.attention;
    const mode = ATTENTION_MODES.get(a?.mode ?? AttentionMode.ATTENTION_MODE_UNSPECIFIED);
    if (mode === undefined) throw new InvalidArgumentError('attention.mode', `unknown value ${a?.mode} (FULL or KCACHE)`);
    // Checked whatever the mode: a client that sets top_n means it.
    if (a?.topN !== undefined && a.topN <= 0) throw new InvalidArgumentError('attention.top_n', `must be >= 1, got ${a.topN}`);
    return {
      mode: mode ?? defaults.mode,
      topN: a?.topN ?? defaults.topN,
      denseLayers: a?.denseLayers ?? defaults.denseLayers,
      renormalize: a?.renormalize ?? defaults.renormalize,
    };
  }
}
