import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidRequestError } from '../request/invalid-request-error';
import { GREEDY, SamplingParams } from './sampling-params';
import { validateSamplingParams } from './validate-sampling-params';

describe('validateSamplingParams', () => {
  it('accepts greedy and ordinary sampling params', () => {
    validateSamplingParams(GREEDY);
    validateSamplingParams({ temperature: 0.7, topK: 40, topP: 0.9, seed: -12 });
    validateSamplingParams({ temperature: 1, topK: 0, topP: 1, seed: Number.MAX_SAFE_INTEGER });
  });

  const cases: Array<[Partial<SamplingParams>, string]> = [
    [{ temperature: -0.1 }, 'temperature'],
    [{ temperature: Infinity }, 'temperature'],
    [{ temperature: NaN }, 'temperature'],
    [{ topK: -1 }, 'topK'],
    [{ topK: 2.5 }, 'topK'],
    [{ topP: 0 }, 'topP'],
    [{ topP: 1.01 }, 'topP'],
    [{ topP: NaN }, 'topP'],
    [{ seed: 1.5 }, 'seed'],
    [{ seed: 2 ** 53 }, 'seed'],
  ];
  for (const [override, field] of cases) {
    it(`rejects ${JSON.stringify(override)} naming ${field}`, () => {
      assert.throws(
        () => validateSamplingParams({ ...GREEDY, ...override }),
        (err: unknown) => err instanceof InvalidRequestError && err.field === field && err.name === 'InvalidRequestError',
      );
    });
  }
});
