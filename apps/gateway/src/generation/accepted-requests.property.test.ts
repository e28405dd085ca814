import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ModelConfig } from '@kcache-serve/kcache/light';
import { GenerateRequest, GenerationJobRequest, generationJobId, newRelayCapability, parseGenerationJobData } from '@kcache-serve/proto';
import { parseCompletionBody, toGenerateRequests } from '../completions/completion-request';
import { toHttpFieldError } from '../completions/openai-request-fields';
import { InputLimits, RequestDefaults } from '../config/gateway-config';
import { InvalidArgumentError } from '../errors/gateway-errors';
import { RequestValidator } from './request-validator';

/**
 * Whatever the gateway accepts, the worker's job schema accepts: a request the gateway queues must never
 * come back INTERNAL because the worker refused its job (as top_k >= 2^31 over HTTP once did). Inputs:
 * the gRPC space (proto field types: int32, uint32, doubles with NaN and infinities) and the HTTP space
 * (JSON numbers of any size). Limits at the largest a configuration allows.
 */
const MODEL = { vocabSize: 512, maxSeqLen: 512, numLayers: 5 } as ModelConfig;
const DEFAULTS: RequestDefaults = { maxNewTokens: 256, temperature: 1, attention: { mode: 'full', topN: 64, denseLayers: 0, renormalize: false } };
const LIMITS: InputLimits = { maxPromptBytes: 4096, maxPromptTokens: null, maxChatMessages: 4, maxChatMessageBytes: 4096, maxNewTokens: null, maxStopStrings: 16, maxStopStringBytes: 1024, maxStopTokenIds: 64 };
const tokenizer = { encode: (text: string) => [...Buffer.from(text, 'utf8')].map((b) => 1 + (b % 500)) };
const validator = new RequestValidator(MODEL, tokenizer, DEFAULTS, LIMITS);

const INT32 = [-(2 ** 31), 2 ** 31 - 1] as const;
const edgeInt = (min: number, max: number) => fc.oneof(fc.integer({ min, max }), fc.constantFrom(min, max, 0, 1, -1, 5, 6, 511, 512, 513).filter((v) => v >= min && v <= max));
const int32 = edgeInt(...INT32);
const uint32 = edgeInt(0, 2 ** 32 - 1);
const anyNumber = fc.oneof(int32, fc.double({ noNaN: true }), fc.constantFrom(2 ** 31, 2 ** 32, 2 ** 40, 2 ** 53 - 1, -(2 ** 53), 1e308, 0.5, -0));
const double = fc.oneof(fc.double(), fc.constantFrom(Number.NaN, Infinity, -Infinity, 0, 1, 0.5));
/** Mostly plausible values, so that whole requests get accepted often; sometimes anything of the type. */
const mostly = <T>(plausible: fc.Arbitrary<T>, anything: fc.Arbitrary<T>): fc.Arbitrary<T> => fc.oneof({ arbitrary: plausible, weight: 3 }, { arbitrary: anything, weight: 1 });
const small = (min: number, max: number) => fc.integer({ min, max });
const text = fc.oneof(fc.string({ maxLength: 20 }), fc.constantFrom('', 'Once upon a time', '\ud800'));

/** The job a gateway would queue for `request`, as the worker parses it. */
function assertWorkerAccepts(request: GenerationJobRequest): void {
  const data = { request, relayAddress: '127.0.0.1:50052', submissionId: 's', relayCapability: newRelayCapability(), deadlineUnixMs: null };
  parseGenerationJobData(generationJobId(request.requestId), JSON.parse(JSON.stringify(data)));
}

/** Refused with InvalidArgumentError, or accepted and then valid for the worker. */
function checkAccepted(toJobRequest: () => GenerationJobRequest): boolean {
  let request: GenerationJobRequest;
  try {
    request = toJobRequest();
  } catch (error) {
    if (error instanceof InvalidArgumentError) return true;
    throw error;
  }
  assertWorkerAccepts(request);
  return true;
}

describe('every request the gateway accepts passes the worker job schema (fast-check)', () => {
  it('gRPC input space', () => {
    const grpcRequest = fc.record(
      {
        requestId: fc.option(fc.oneof(fc.constantFrom('r-1', 'a.b_c'), fc.string({ maxLength: 130 })), { nil: undefined }),
        prompt: text,
        promptTokenIds: fc.array(mostly(small(0, 511), int32), { maxLength: 6 }),
        maxNewTokens: fc.option(mostly(small(1, 512), int32), { nil: undefined }),
        sampling: fc.option(
          fc.record({ temperature: fc.option(mostly(fc.constantFrom(0, 0.8, 1), double), { nil: undefined }), topK: fc.option(int32, { nil: undefined }), topP: fc.option(mostly(fc.constantFrom(0.9, 1), double), { nil: undefined }), seed: fc.option(uint32, { nil: undefined }) }),
          { nil: undefined },
        ),
        stop: fc.array(text, { maxLength: 3 }),
        stopTokenIds: fc.array(mostly(small(0, 511), int32), { maxLength: 3 }),
        attention: fc.option(
          fc.record({ mode: mostly(small(0, 2), edgeInt(-1, 3)), topN: fc.option(int32, { nil: undefined }), denseLayers: fc.option(mostly(small(0, 5), int32), { nil: undefined }), renormalize: fc.option(fc.boolean(), { nil: undefined }) }),
          { nil: undefined },
        ),
        priority: mostly(small(-1000, 1000), int32),
        logprobs: fc.boolean(),
      },
      { requiredKeys: ['prompt', 'promptTokenIds', 'stop', 'stopTokenIds', 'priority', 'logprobs'] },
    );
    fc.assert(fc.property(grpcRequest, (r) => checkAccepted(() => validator.toJobRequest(GenerateRequest.fromPartial(r as Partial<GenerateRequest>)))), { numRuns: 3000 });
  });

  it('HTTP input space (POST /v1/completions bodies)', () => {
    const body = fc.record(
      {
        prompt: fc.oneof(text, fc.array(mostly(small(0, 511), anyNumber), { maxLength: 6 })),
        max_tokens: mostly(small(1, 512), anyNumber),
        temperature: mostly(fc.constantFrom(0, 0.8, 1), anyNumber),
        top_p: mostly(fc.constantFrom(0.9, 1), anyNumber),
        top_k: anyNumber,
        seed: mostly(small(0, 2 ** 32 - 1), anyNumber),
        stop: fc.oneof(text, fc.array(text, { maxLength: 3 })),
        stop_token_ids: fc.array(mostly(small(0, 511), anyNumber), { maxLength: 3 }),
        logprobs: fc.oneof(fc.boolean(), anyNumber),
        priority: mostly(small(-1000, 1000), anyNumber),
        request_id: mostly(fc.constantFrom('r-1', 'r.2'), fc.string({ maxLength: 20 })),
        kcache: fc.record({ mode: fc.constantFrom('full', 'kcache'), top_n: anyNumber, dense_layers: mostly(small(0, 5), anyNumber), renormalize: fc.boolean() }, { requiredKeys: [] }),
      },
      { requiredKeys: ['prompt'] },
    );
    fc.assert(
      fc.property(body, (b) =>
        checkAccepted(() => {
          try {
            return toGenerateRequests(parseCompletionBody(b)).map((r) => validator.toJobRequest(r))[0];
          } catch (error) {
            throw toHttpFieldError(error);
          }
        }),
      ),
      { numRuns: 3000 },
    );
  });

  it('refuses top_k and kcache.top_n of 2^31 and more over HTTP, naming the field', () => {
    for (const [patch, field] of [
      [{ top_k: 2 ** 31 }, 'top_k'],
      [{ top_k: 2 ** 53 - 1 }, 'top_k'],
      [{ kcache: { top_n: 2 ** 31 } }, 'kcache.top_n'],
    ] as const) {
      assert.throws(
        () => {
          try {
            toGenerateRequests(parseCompletionBody({ prompt: 'hi', ...patch })).forEach((r) => validator.toJobRequest(r));
          } catch (error) {
            throw toHttpFieldError(error);
          }
        },
        (e: unknown) => e instanceof InvalidArgumentError && e.field === field && /2147483647/.test(e.message),
        field,
      );
    }
  });
});
