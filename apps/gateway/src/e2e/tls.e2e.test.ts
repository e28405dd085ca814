import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ChannelCredentials, credentials, Metadata, status as Status } from '@grpc/grpc-js';
import { repoRoot, stories260kDir } from '@kcache-serve/kcache/testing';
import { relay } from '@kcache-serve/proto';
import { collectStream, freePort, getUrl, makeTestCertificates, opensslVersion, ServingCluster, TestCertificates } from '@kcache-serve/proto/dist/testing';

/**
 * Every hop encrypted, with throwaway certificates made by openssl: the public gRPC and HTTP ports
 * serve TLS, workers reach the gateway's Relay over mutual TLS, and Redis serves TLS only with an ACL
 * user. Clients without the right certificate (or the right CA) are refused.
 */
const skip = opensslVersion() === null ? 'no openssl CLI on PATH to make test certificates' : false;
const REDIS_USER = { name: 'kcache', password: 'redis-pass-7e1d' };

let certs: TestCertificates;
let cluster: ServingCluster;
let relayAddress: string;

before(async () => {
  if (skip) return;
  certs = makeTestCertificates();
  const relayPort = await freePort();
  relayAddress = `127.0.0.1:${relayPort}`;
  cluster = await ServingCluster.start({
    model: stories260kDir(),
    numWorkers: 1,
    publicTlsCaPath: certs.ca.certPath,
    redis: { user: REDIS_USER, tls: { ...certs.server, caPath: certs.ca.certPath } },
    gatewayEnv: {
      TLS_CERT_PATH: certs.server.certPath,
      TLS_KEY_PATH: certs.server.keyPath,
      RELAY_PORT: String(relayPort),
      RELAY_TLS_CERT_PATH: certs.server.certPath,
      RELAY_TLS_KEY_PATH: certs.server.keyPath,
      RELAY_TLS_CA_PATH: certs.ca.certPath,
    },
    workerEnv: { RELAY_TLS_CERT_PATH: certs.client.certPath, RELAY_TLS_KEY_PATH: certs.client.keyPath, RELAY_TLS_CA_PATH: certs.ca.certPath },
  });
});

after(async () => {
  await cluster?.stop();
  certs?.remove();
});

const request = { prompt: 'Once upon a time', maxNewTokens: 12, sampling: { temperature: 0 } };
const ca = () => readFileSync(certs.ca.certPath);

describe('public port TLS', { skip }, () => {
  it('a client trusting the CA streams tokens (the worker relayed them over mutual TLS, Redis spoke TLS)', async () => {
    assert.match(cluster.redis.url, /^rediss:\/\/kcache:/);
    const result = await collectStream(cluster.client(), request, 15_000);
    assert.equal(result.error, null, result.error?.details);
    assert.equal(result.tokens.length, 12);
  });

  it('a plaintext client, or one trusting another CA, is refused (UNAVAILABLE)', async () => {
    for (const [what, creds] of [
      ['plaintext', credentials.createInsecure()],
      ['other CA', credentials.createSsl(readFileSync(certs.otherCa.certPath))],
    ] as Array<[string, ChannelCredentials]>) {
      const result = await collectStream(cluster.client(creds), request, 5000);
      assert.equal(result.error?.code, Status.UNAVAILABLE, what);
      assert.equal(result.tokens.length, 0);
    }
  });

  it('HTTP is HTTPS: /healthz answers with the CA, plain http gets no answer', async () => {
    assert.equal((await cluster.httpGet('/healthz')).status, 200);
    await assert.rejects(getUrl(cluster.httpUrl.replace('https:', 'http:') + '/healthz', { timeoutMs: 2000 }));
    await assert.rejects(getUrl(`${cluster.httpUrl}/healthz`, { ca: readFileSync(certs.otherCa.certPath), timeoutMs: 2000 }), /self[- ]signed|unable to verify|certificate/i);
  });
});

describe('relay mutual TLS', { skip }, () => {
  const deliver = (creds: ChannelCredentials): Promise<number> => {
    const client = new relay.RelayClient(relayAddress, creds);
    return new Promise<number>((resolve) => {
      client.deliver({ workerId: 'intruder', events: [{ requestId: 'x', event: { $case: 'token', value: { index: 0, tokenId: 1, text: 'a', topLogprobs: [] } }, capability: randomBytes(32) }] }, new Metadata(), { deadline: Date.now() + 5000 }, (error) => {
        client.close();
        resolve(error === null ? Status.OK : (error.code ?? Status.UNKNOWN));
      });
    });
  };

  it('takes a worker certificate signed by the relay CA', async () => {
    assert.equal(await deliver(credentials.createSsl(ca(), readFileSync(certs.client.keyPath), readFileSync(certs.client.certPath))), Status.OK);
  });

  it('refuses plaintext, no client certificate, and a certificate from another CA', async () => {
    assert.equal(await deliver(credentials.createInsecure()), Status.UNAVAILABLE, 'plaintext');
    assert.equal(await deliver(credentials.createSsl(ca())), Status.UNAVAILABLE, 'no client certificate');
    assert.equal(await deliver(credentials.createSsl(ca(), readFileSync(certs.otherClient.keyPath), readFileSync(certs.otherClient.certPath))), Status.UNAVAILABLE, 'other CA');
  });
});

describe('Redis credentials', { skip }, () => {
  it('a worker with a wrong Redis password exits 1 with one line naming the cause, without the password', async () => {
    const url = cluster.redis.url.replace(encodeURIComponent(REDIS_USER.password), 'not-the-password-42');
    const child = spawn(process.execPath, [join(repoRoot(), 'apps', 'worker', 'dist', 'main.js')], {
      env: { ...process.env, REDIS_URL: url, REDIS_TLS_CA_PATH: certs.ca.certPath, REDIS_STARTUP_TIMEOUT_MS: '1500', MODEL: stories260kDir(), METRICS_PORT: '0', NUM_THREADS: '1', LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    assert.equal(code, 1, output);
    const lines = output.trim().split('\n');
    assert.equal(lines.length, 1, output);
    assert.match(lines[0], /^worker: cannot start: RedisUnavailableError: Redis at rediss:\/\/kcache:\*\*\*@127\.0\.0\.1:\d+\/? did not answer within 1500 ms: .*WRONGPASS/);
    assert.ok(!output.includes('not-the-password-42'));
  });
});
