import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sha256Hex } from '../auth/api-key';
import { ConfigError, parseGatewayConfig } from './gateway-config';

const KEY_HASHES = `ops:${sha256Hex('a-key')}`;

describe('parseGatewayConfig', () => {
  it('needs API keys unless auth is turned off explicitly', () => {
    assert.throws(() => parseGatewayConfig({}), (e: unknown) => e instanceof ConfigError && /API_KEY_HASHES: required/.test(e.message));
    const on = parseGatewayConfig({ API_KEY_HASHES: KEY_HASHES });
    assert.deepEqual({ ...on.auth, apiKeys: on.auth.apiKeys.map((k) => k.name) }, { apiKeys: ['ops'], isEnabled: true, isHealthProtected: false, isMetricsProtected: false });
    const off = parseGatewayConfig({ AUTH_MODE: 'off' });
    assert.equal(off.auth.isEnabled, false);
  });

  it('binds the relay to the advertised host unless RELAY_HOST names another (never every interface by default)', () => {
    assert.equal(parseGatewayConfig({ AUTH_MODE: 'off' }).relayHost, '127.0.0.1');
    assert.equal(parseGatewayConfig({ AUTH_MODE: 'off', RELAY_ADVERTISE_HOST: '10.1.2.3' }).relayHost, '10.1.2.3');
    assert.equal(parseGatewayConfig({ AUTH_MODE: 'off', RELAY_ADVERTISE_HOST: '10.1.2.3', RELAY_HOST: '0.0.0.0' }).relayHost, '0.0.0.0');
  });

  it('takes limits, per-key limits and TLS files', () => {
    const config = parseGatewayConfig({
      API_KEY_HASHES: KEY_HASHES,
      HEALTH_AUTH: 'protected',
      KEY_MAX_CONCURRENT_STREAMS: '4',
      KEY_MAX_TOKENS_PER_MINUTE: '1000',
      MAX_PROMPT_TOKENS: '100',
      MAX_CHAT_MESSAGE_BYTES: '4096',
      TLS_CERT_PATH: '/c.pem',
      TLS_KEY_PATH: '/k.pem',
      RELAY_TLS_CERT_PATH: '/rc.pem',
      RELAY_TLS_KEY_PATH: '/rk.pem',
      RELAY_TLS_CA_PATH: '/ca.pem',
    });
    assert.equal(config.auth.isHealthProtected, true);
    assert.deepEqual(config.keyLimits, { maxConcurrentStreams: 4, maxTokensPerMinute: 1000 });
    assert.deepEqual(config.limits, { maxPromptBytes: 262144, maxPromptTokens: 100, maxChatMessages: 256, maxChatMessageBytes: 4096, maxNewTokens: null, maxStopStrings: 16, maxStopStringBytes: 256, maxStopTokenIds: 64 });
    assert.deepEqual(config.tls, { certPath: '/c.pem', keyPath: '/k.pem' });
    assert.deepEqual(config.relayTls, { certPath: '/rc.pem', keyPath: '/rk.pem', caPath: '/ca.pem' });
  });

  it('bounds each chat message by MAX_PROMPT_BYTES unless MAX_CHAT_MESSAGE_BYTES says otherwise', () => {
    const limits = parseGatewayConfig({ AUTH_MODE: 'off', MAX_PROMPT_BYTES: '5000', MAX_CHAT_MESSAGES: '3' }).limits;
    assert.equal(limits.maxChatMessageBytes, 5000);
    assert.equal(limits.maxChatMessages, 3);
  });

  it('refuses half a TLS pair, stop limits beyond the engine, and names variables but not values', () => {
    const secret = 'not-a-number-secret';
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{ TLS_CERT_PATH: '/c.pem' }, /TLS_CERT_PATH and TLS_KEY_PATH/],
      [{ RELAY_TLS_CA_PATH: '/ca.pem' }, /RELAY_TLS_CERT_PATH, RELAY_TLS_KEY_PATH and RELAY_TLS_CA_PATH/],
      [{ MAX_STOP_STRINGS: '17' }, /MAX_STOP_STRINGS/],
      [{ KEY_MAX_TOKENS_PER_MINUTE: secret }, /KEY_MAX_TOKENS_PER_MINUTE/],
      [{ API_KEY_HASHES: secret }, /API_KEY_HASHES: entry 1/],
    ];
    for (const [env, pattern] of cases) {
      assert.throws(
        () => parseGatewayConfig({ API_KEY_HASHES: KEY_HASHES, ...env }),
        (e: unknown) => e instanceof ConfigError && pattern.test(e.message) && !e.message.includes(secret) && !e.message.includes('\n'),
        JSON.stringify(env),
      );
    }
  });
});
