import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UnauthenticatedError } from '../errors/gateway-errors';
import { parseApiKeyHashes, sha256Hex } from './api-key';
import { ApiKeyAuthenticator } from './api-key-authenticator';
import { ANONYMOUS } from './principal';

const KEY_A = 'kc-alpha-0123456789';
const KEY_B = 'kc-beta-9876543210';

describe('parseApiKeyHashes', () => {
  it('takes named and bare sha256 hex entries', () => {
    const keys = parseApiKeyHashes(` alpha:${sha256Hex(KEY_A)} , ${sha256Hex(KEY_B).toUpperCase()}`);
    assert.deepEqual(keys.map((k) => k.name), ['alpha', sha256Hex(KEY_B).slice(0, 8)]);
    assert.deepEqual(keys[0].sha256, Buffer.from(sha256Hex(KEY_A), 'hex'));
  });

  it('refuses bad entries without quoting them', () => {
    for (const text of ['', 'alpha:1234', `a b:${sha256Hex(KEY_A)}`, `x:${sha256Hex(KEY_A)},x:${sha256Hex(KEY_B)}`, KEY_A]) {
      assert.throws(() => parseApiKeyHashes(text), (error: Error) => !error.message.includes(KEY_A), text);
    }
  });
});

describe('ApiKeyAuthenticator', () => {
  const authenticator = new ApiKeyAuthenticator(parseApiKeyHashes(`alpha:${sha256Hex(KEY_A)},beta:${sha256Hex(KEY_B)}`));

  it('names the key a valid bearer token belongs to', () => {
    assert.deepEqual(authenticator.authenticate(`Bearer ${KEY_A}`), { name: 'alpha' });
    assert.deepEqual(authenticator.authenticate(`bearer   ${KEY_B}`), { name: 'beta' });
  });

  it('refuses missing, malformed, unknown and oversized keys with UnauthenticatedError', () => {
    for (const header of [undefined, '', KEY_A, `Basic ${KEY_A}`, 'Bearer ', `Bearer ${KEY_A}x`, `Bearer ${'k'.repeat(5000)}`]) {
      assert.throws(() => authenticator.authenticate(header), UnauthenticatedError, String(header).slice(0, 40));
    }
  });

  it('lets everything through as ANONYMOUS when no keys are configured (AUTH_MODE=off)', () => {
    const off = new ApiKeyAuthenticator([]);
    assert.equal(off.isEnabled, false);
    assert.equal(off.authenticate(undefined), ANONYMOUS);
  });
});
