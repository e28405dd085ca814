import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ModelConfig } from '@kcache-serve/kcache/light';
import { AttentionMode, GenerateRequest } from '@kcache-serve/proto';
import { InputLimits, RequestDefaults } from '../config/gateway-config';
import { InvalidArgumentError } from '../errors/gateway-errors';
import { RequestValidator } from './request-validator';

const MODEL = { vocabSize: 512, maxSeqLen: 512, numLayers: 5 } as ModelConfig;
const DEFAULTS: RequestDefaults = { maxNewTokens: 256, temperature: 1, attention: { mode: 'full', topN: 64, denseLayers: 0, renormalize: false } };
const LIMITS: InputLimits = { maxPromptBytes: 1000, maxPromptTokens: 100, maxChatMessages: 3, maxChatMessageBytes: 400, maxNewTokens: 200, maxStopStrings: 2, maxStopStringBytes: 8, maxStopTokenIds: 3 };
/** One token per byte: enough to count tokens. */
const tokenizer = { encode: (text: string) => [...Buffer.from(text, 'utf8')].map((b) => 1 + (b % 500)) };
let numEncoded = 0;
const countingTokenizer = { encode: (text: string) => (numEncoded++, tokenizer.encode(text)) };

const validator = new RequestValidator(MODEL, countingTokenizer, DEFAULTS, LIMITS);
const request = (patch: Partial<GenerateRequest>) => GenerateRequest.fromPartial({ prompt: 'hello', maxNewTokens: 8, ...patch });

function assertRefused(patch: Partial<GenerateRequest>, field: string, message: RegExp): void {
  assert.throws(
    () => validator.toJobRequest(request(patch)),
    (e: unknown) => e instanceof InvalidArgumentError && e.field === field && message.test(e.message),
    JSON.stringify(patch).slice(0, 80),
  );
}

describe('RequestValidator input limits', () => {
  it('accepts what is within every limit, defaulting max_new_tokens to the smaller limit', () => {
    const job = validator.toJobRequest(request({ maxNewTokens: undefined, stop: ['ab', 'cd'], stopTokenIds: [1, 2, 3] }));
    assert.equal(job.maxNewTokens, 200);
    assert.equal(job.promptTokenIds.length, 5);
  });

  it('refuses oversized prompts by bytes before tokenizing them', () => {
    numEncoded = 0;
    assertRefused({ prompt: 'x'.repeat(1001) }, 'prompt', /1001 bytes is above this server's limit of 1000/);
    assert.equal(numEncoded, 0);
  });

  it('refuses prompts over the token limit, text or ids, without quoting them', () => {
    assertRefused({ prompt: 'secret '.repeat(20) }, 'prompt', /^prompt: 140 tokens is above the limit of 100$/);
    assertRefused({ prompt: '', promptTokenIds: new Array(101).fill(1) }, 'prompt_token_ids', /101 tokens/);
  });

  it('refuses max_new_tokens, stop strings and stop ids beyond their limits', () => {
    assertRefused({ maxNewTokens: 201 }, 'max_new_tokens', /limit of 200/);
    assertRefused({ stop: ['a', 'b', 'c'] }, 'stop', /3 stop strings/);
    assertRefused({ stop: ['ééééé'] }, 'stop', /10 bytes is above the limit of 8/);
    assertRefused({ stopTokenIds: [1, 2, 3, 4] }, 'stop_token_ids', /4 ids/);
  });

  it('refuses dense_layers outside [0, numLayers] whatever the mode (the default mode too), and accepts the bounds', () => {
    for (const mode of [AttentionMode.ATTENTION_MODE_UNSPECIFIED, AttentionMode.ATTENTION_MODE_FULL, AttentionMode.ATTENTION_MODE_KCACHE]) {
      assertRefused({ attention: { mode, denseLayers: -2147483648 } }, 'attention.dense_layers', /must be in \[0, 5\].*got -2147483648/);
      assertRefused({ attention: { mode, denseLayers: 6 } }, 'attention.dense_layers', /got 6/);
    }
    assert.equal(validator.toJobRequest(request({ attention: { mode: AttentionMode.ATTENTION_MODE_KCACHE, denseLayers: 5 } })).attention.denseLayers, 5);
    assert.equal(validator.toJobRequest(request({ attention: { mode: AttentionMode.ATTENTION_MODE_FULL, denseLayers: 0 } })).attention.denseLayers, 0);
  });
});
