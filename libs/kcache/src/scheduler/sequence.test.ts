import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FULL_ATTENTION } from '../attention/attention-config';
import { SchedulerConfigError } from './scheduler-errors';
import { Sequence, compareSchedulingOrder } from './sequence';

describe('Sequence', () => {
  it('holds the prompt followed by the output, with maxTotalTokens capped by the model context', () => {
    const seq = new Sequence({
      requestId: 'r', promptTokenIds: [1, 2, 3], outputTokenIds: [4], maxNewTokens: 10, maxModelLen: 8, attention: FULL_ATTENTION,
    });
    assert.deepEqual(seq.tokenIds, [1, 2, 3, 4]);
    assert.equal(seq.numPromptTokens, 3);
    assert.equal(seq.numOutputTokens, 1);
    assert.equal(seq.numTokens, 4);
    assert.equal(seq.numComputedTokens, 0);
    assert.equal(seq.maxTotalTokens, 8);
    assert.equal(seq.status, 'waiting');
    assert.equal(seq.priority, 0);
    seq.appendToken(5);
    assert.deepEqual(seq.outputTokenIds, [4, 5]);
    assert.equal(seq.lastTokenId, 5);
  });

  it('numbers arrivals monotonically and orders by priority, then arrival', () => {
    const make = (priority: number) =>
      new Sequence({ requestId: 'r', promptTokenIds: [1], maxNewTokens: 1, maxModelLen: 8, attention: FULL_ATTENTION, priority });
    const a = make(0);
    const b = make(0);
    const c = make(1);
    assert.ok(b.arrivalIndex > a.arrivalIndex && c.arrivalIndex > b.arrivalIndex);
    assert.deepEqual([b, c, a].sort(compareSchedulingOrder), [c, a, b]);
  });

  it('rejects an empty prompt and bad limits', () => {
    const base = { requestId: 'r', promptTokenIds: [1], maxNewTokens: 1, maxModelLen: 8, attention: FULL_ATTENTION };
    assert.throws(() => new Sequence({ ...base, promptTokenIds: [] }), SchedulerConfigError);
    assert.throws(() => new Sequence({ ...base, maxNewTokens: -1 }), SchedulerConfigError);
    assert.throws(() => new Sequence({ ...base, maxModelLen: 0 }), SchedulerConfigError);
    assert.throws(() => new Sequence({ ...base, priority: NaN }), SchedulerConfigError);
  });
});
