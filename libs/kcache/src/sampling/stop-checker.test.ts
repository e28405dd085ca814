import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidRequestError } from '../request/invalid-request-error';
import { StopChecker, StopCheckerOptions } from './stop-checker';

const BASE: StopCheckerOptions = { stopTokenIds: [5], eosTokenIds: [2], stopStrings: [], maxNewTokens: 10, maxTotalTokens: 100 };

describe('StopChecker', () => {
  it('stops on eos before a stop token, a stop string or the length', () => {
    const checker = new StopChecker({ ...BASE, stopTokenIds: [2], stopStrings: ['x'] });
    assert.deepEqual(checker.check(2, 10, 100, 'x'), { reason: 'eos' });
  });

  it('stops on a stop token', () => {
    assert.deepEqual(new StopChecker(BASE).check(5, 1, 4, 'a'), { reason: 'stop' });
  });

  it('stops at maxNewTokens and at maxTotalTokens, counting the token just added', () => {
    const checker = new StopChecker(BASE);
    assert.equal(checker.check(9, 9, 20, ''), null);
    assert.deepEqual(checker.check(9, 10, 21, ''), { reason: 'length' });
    assert.deepEqual(new StopChecker(BASE).check(9, 3, 100, ''), { reason: 'length' });
  });

  it('finds a stop string that spans tokens and cuts the output before it', () => {
    const checker = new StopChecker({ ...BASE, stopStrings: ['world', 'END'] });
    assert.equal(checker.check(9, 1, 4, 'Hello'), null);
    assert.equal(checker.check(9, 2, 5, 'Hello wo'), null);
    assert.deepEqual(checker.check(9, 3, 6, 'Hello world!'), { reason: 'stop', truncateTextAt: 6 });
  });

  it('holds back the longest end of the text that could still begin a stop string', () => {
    const checker = new StopChecker({ ...BASE, stopStrings: [' there was', 'ab'] });
    assert.equal(checker.numHeldChars('Once, there'), ' there'.length);
    assert.equal(checker.numHeldChars('Once, there w'), ' there w'.length);
    assert.equal(checker.numHeldChars('Once, there is'), 0);
    assert.equal(checker.numHeldChars('xa'), 1);
    assert.equal(checker.numHeldChars('Once,'), 0);
    assert.equal(new StopChecker(BASE).numHeldChars('anything'), 0);
  });

  it('reports the earliest of several matches in the new text', () => {
    const checker = new StopChecker({ ...BASE, stopStrings: ['cd', 'b'] });
    assert.equal(checker.check(9, 1, 4, 'a'), null);
    assert.deepEqual(checker.check(9, 2, 5, 'abcd'), { reason: 'stop', truncateTextAt: 1 });
  });

  it('searches only the tail where a new match can end', () => {
    const checker = new StopChecker({ ...BASE, stopStrings: ['aXa'], maxNewTokens: 10_000, maxTotalTokens: 10_000 });
    let text = '';
    for (let i = 0; i < 2000; i++) {
      text += 'a';
      assert.equal(checker.check(9, i + 1, i + 4, text), null);
    }
    text += 'X';
    assert.equal(checker.check(9, 2001, 2004, text), null);
    text += 'a';
    assert.deepEqual(checker.check(9, 2002, 2005, text), { reason: 'stop', truncateTextAt: 1999 });
  });

  it('ignores empty stop strings and rejects bad limits', () => {
    assert.equal(new StopChecker({ ...BASE, stopStrings: [''] }).check(9, 1, 4, 'abc'), null);
    assert.throws(() => new StopChecker({ ...BASE, maxNewTokens: -1 }), InvalidRequestError);
  });
});
