import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startupFailureLine } from './startup-failure';

describe('startupFailureLine', () => {
  it('is one line with the error and its distinct causes', () => {
    const cause = new TypeError('bad byte at 12\nsee the spec');
    const error = new Error('cannot load model', { cause });
    assert.equal(startupFailureLine('worker', error), 'worker: cannot start: Error: cannot load model; caused by TypeError: bad byte at 12 see the spec');
  });

  it('says a repeated cause once, and adds the stack only when asked', () => {
    const error = new Error('Redis at x did not answer: WRONGPASS', { cause: new Error('WRONGPASS') });
    assert.equal(startupFailureLine('gateway', error), 'gateway: cannot start: Error: Redis at x did not answer: WRONGPASS');
    assert.match(startupFailureLine('gateway', error, true), /\n\s*at /);
  });
});
