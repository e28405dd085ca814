import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { GenerationJobData, generationJobId } from './generation-job';
import { InvalidJobDataError, parseGenerationJobData } from './generation-job-schema';
import { newRelayCapability } from './relay-capability';

const valid: GenerationJobData = {
  request: {
    requestId: 'req-1',
    promptTokenIds: [1, 2, 3],
    maxNewTokens: 16,
    sampling: { temperature: 0.8, topK: 0, topP: 1, seed: 7 },
    stopTokenIds: [],
    stopStrings: ['The end'],
    attention: { mode: 'kcache', topN: 8, denseLayers: 1, renormalize: false },
    priority: 0,
    logprobs: false,
  },
  relayAddress: '10.0.0.7:50052',
  submissionId: 'a0b1',
  relayCapability: newRelayCapability(),
  deadlineUnixMs: null,
};
const JOB_ID = generationJobId('req-1');

/** Sets `value` at `path` in a deep copy of `data` (undefined deletes the field). */
function withField(data: unknown, path: readonly string[], value: unknown): unknown {
  const copy = structuredClone(data) as Record<string, unknown>;
  let node = copy;
  for (const key of path.slice(0, -1)) node = node[key] as Record<string, unknown>;
  if (value === undefined) delete node[path.at(-1)!];
  else node[path.at(-1)!] = value;
  return copy;
}

const FIELDS: ReadonlyArray<readonly string[]> = [
  ['request'], ['request', 'requestId'], ['request', 'promptTokenIds'], ['request', 'maxNewTokens'], ['request', 'sampling'],
  ['request', 'sampling', 'temperature'], ['request', 'sampling', 'topP'], ['request', 'sampling', 'seed'], ['request', 'stopStrings'],
  ['request', 'attention', 'mode'], ['request', 'priority'], ['request', 'logprobs'], ['relayAddress'], ['submissionId'], ['relayCapability'], ['deadlineUnixMs'],
];

describe('parseGenerationJobData', () => {
  it('returns a valid job as it is', () => {
    assert.deepEqual(parseGenerationJobData(JOB_ID, valid), valid);
    assert.deepEqual(parseGenerationJobData(JOB_ID, { ...valid, relayAddress: '[::1]:50052', deadlineUnixMs: Date.now() }).relayAddress, '[::1]:50052');
  });

  it('refuses a job whose id is not its request id (it would speak for another stream)', () => {
    assert.throws(() => parseGenerationJobData(generationJobId('other'), valid), InvalidJobDataError);
    assert.throws(() => parseGenerationJobData(undefined, valid), InvalidJobDataError);
  });

  it('refuses named bad fields: out-of-range numbers, huge arrays, unknown keys, bad addresses', () => {
    const cases: Array<[readonly string[], unknown]> = [
      [['request', 'promptTokenIds'], []],
      [['request', 'promptTokenIds'], [1, -1]],
      [['request', 'promptTokenIds'], new Array((1 << 20) + 1).fill(1)],
      [['request', 'maxNewTokens'], 1.5],
      [['request', 'sampling', 'topP'], 0],
      [['request', 'sampling', 'temperature'], Number.POSITIVE_INFINITY],
      [['request', 'stopStrings'], ['']],
      [['request', 'attention', 'mode'], 'sparse'],
      [['request', 'priority'], 1001],
      [['request', 'extra'], 1],
      // Conversations are tokenized by the gateway: a job carries token ids, never messages.
      [['request', 'messages'], [{ role: 'user', content: 'hi' }]],
      [['relayAddress'], 'evil.example.com'],
      [['relayAddress'], 'a:1/path'],
      [['deadlineUnixMs'], '0'],
      // A capability shorter than RELAY_CAPABILITY_BYTES, or not base64url.
      [['relayCapability'], 'abc'],
      [['relayCapability'], '+'.repeat(43)],
    ];
    for (const [path, value] of cases) {
      assert.throws(
        () => parseGenerationJobData(JOB_ID, withField(valid, path, value)),
        // An unknown key is reported at its parent.
        (e: unknown) => e instanceof InvalidJobDataError && (e.path.startsWith(path.join('.')) || path.join('.').startsWith(`${e.path}.`)),
        `${path.join('.')} = ${JSON.stringify(value)?.slice(0, 40)}`,
      );
    }
  });

  it('throws only InvalidJobDataError for any value, any field replaced by anything (fast-check)', () => {
    fc.assert(
      fc.property(fc.constantFrom(...FIELDS), fc.anything({ withBigInt: true, withNullPrototype: true, withTypedArray: true }), (path, value) => {
        try {
          parseGenerationJobData(JOB_ID, withField(valid, path, value));
        } catch (error) {
          return error instanceof InvalidJobDataError;
        }
        return true;
      }),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.anything(), (junk) => {
        assert.throws(() => parseGenerationJobData(JOB_ID, junk), InvalidJobDataError);
      }),
      { numRuns: 500 },
    );
  });
});
