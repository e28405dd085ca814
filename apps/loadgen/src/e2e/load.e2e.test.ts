import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { repoRoot, stories260kDir } from '@kcache-serve/kcache/testing';
import { fetchMetric, ServingCluster } from '@kcache-serve/proto/dist/testing';
import { LoadReport } from '../load/load-report';

const TOKENS_METRIC = 'kcache_gateway_tokens_total';
const API_KEY = `load-test-${randomBytes(12).toString('hex')}`;
let cluster: ServingCluster;

before(async () => {
  const keyHash = createHash('sha256').update(API_KEY).digest('hex');
  cluster = await ServingCluster.start({
    model: stories260kDir(),
    numWorkers: 2,
    gatewayEnv: { AUTH_MODE: 'api-key', API_KEY_HASHES: `load-test:${keyHash}` },
  });
});

after(async () => {
  await cluster?.stop();
});

describe('kcache load against a real gateway and two workers', () => {
  it('without the API key every request fails UNAUTHENTICATED, counted by status; exit 1', async () => {
    const bin = join(repoRoot(), 'apps', 'loadgen', 'bin', 'kcache.js');
    const env = { ...process.env, KCACHE_API_KEY: '' };
    const run = promisify(execFile)(process.execPath, [bin, 'load', '--target', cluster.grpcAddress, '--duration', '1', '--json', '--quiet'], { env });
    const error = (await run.then(() => assert.fail('exit 0'), (e: unknown) => e)) as { code: number; stdout: string };
    assert.equal(error.code, 1);
    const report = JSON.parse(error.stdout) as LoadReport;
    assert.equal(report.numRequestsCompleted, 0);
    assert.ok(report.numRequestsFailed > 0);
    assert.deepEqual(Object.keys(report.errors), ['UNAUTHENTICATED']);
    assert.equal(report.errors.UNAUTHENTICATED, report.numRequestsFailed);
  });

  it('10 s at concurrency 8: no errors, and its token count is the gateway counter’s increase', async () => {
    const metricsUrl = `${cluster.httpUrl}/metrics`;
    const tokensBefore = await fetchMetric(metricsUrl, TOKENS_METRIC);
    const args = ['load', '--target', cluster.grpcAddress, '--concurrency', '8', '--duration', '10', '--prompt-len', '32', '--max-new-tokens', '48', '--json'];
    // Through the `kcache` bin, so that its forwarding of `load` to this package is covered too.
    // The key comes from KCACHE_API_KEY (--api-key is the other way).
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [join(repoRoot(), 'apps', 'loadgen', 'bin', 'kcache.js'), ...args], {
      timeout: 120_000,
      env: { ...process.env, KCACHE_API_KEY: API_KEY },
    });
    const report = JSON.parse(stdout) as LoadReport;
    const tokensAfter = await fetchMetric(metricsUrl, TOKENS_METRIC);

    assert.deepEqual(report.errors, {}, report.errorSamples.join('\n'));
    assert.equal(report.numRequestsFailed, 0);
    assert.ok(report.numRequestsCompleted >= 8, `only ${report.numRequestsCompleted} requests completed`);
    assert.ok(report.numTokens > 0);
    assert.equal(report.numTokens, tokensAfter - tokensBefore);
    assert.ok(report.wallS >= 10);
    for (const p of [report.ttftMs, report.interTokenMs, report.totalMs]) {
      assert.ok(p.p50 !== null && p.p90 !== null && p.p99 !== null && p.p50 <= p.p90 && p.p90 <= p.p99, JSON.stringify(p));
    }
    assert.ok(report.totalMs.p50! >= report.ttftMs.p50!);
    assert.ok(!stdout.includes(API_KEY), 'the key is not in the report');
    // Progress went to stderr about once a second (one line each: stderr is a pipe here).
    assert.ok(stderr.split('\n').filter((line) => / requests \d+ ok \d+ failed /.test(line)).length >= 5, stderr);
  });
});
