import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { repoRoot, stories260kDir } from '@kcache-serve/kcache/testing';

/**
 * A process that cannot start says why in one line on stderr, exits 1, and writes nothing else: bad model
 * and tokenizer files (the engine's loaders throw ModelFormatError / TokenizerFormatError), a missing
 * model, and bad configuration. No Redis is needed: both apps load the model before connecting.
 */
let dir: string;
const MODEL_FILE = 'stories260K.bin';
const TOKENIZER_FILE = 'tok512.bin';

/** A copy of stories260K with `edit` applied to one of its files. */
function modelFolder(name: string, file: string, edit: (bytes: Buffer) => Buffer): string {
  const folder = join(dir, name);
  mkdirSync(folder);
  for (const f of [MODEL_FILE, TOKENIZER_FILE]) copyFileSync(join(stories260kDir(), f), join(folder, f));
  writeFileSync(join(folder, file), edit(readFileSync(join(folder, file))));
  return folder;
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'kcache-bad-models-'));
});

after(() => {
  rmSync(dir, { recursive: true, force: true });
});

function run(app: 'gateway' | 'worker', env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(repoRoot(), 'apps', app, 'dist', 'main.js')], {
      // An unreachable Redis: reaching it would mean the model was accepted.
      env: { ...process.env, REDIS_URL: 'redis://127.0.0.1:1', REDIS_STARTUP_TIMEOUT_MS: '500', METRICS_PORT: '0', NUM_THREADS: '1', LOG_LEVEL: 'info', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

async function assertOneLineFailure(app: 'gateway' | 'worker', env: Record<string, string>, pattern: RegExp): Promise<void> {
  const { code, stdout, stderr } = await run(app, { AUTH_MODE: 'off', ...env });
  for (const secret of ['sekrit-value', 'soon']) assert.ok(!stderr.includes(secret) || !Object.values(env).includes(secret), `${app} printed a value: ${stderr}`);
  assert.equal(code, 1, `${app}: ${stdout}${stderr}`);
  assert.equal(stdout, '', `${app} wrote to stdout`);
  const lines = stderr.split('\n').filter((l) => l.length > 0);
  assert.equal(lines.length, 1, `${app} stderr:\n${stderr}`);
  assert.match(lines[0], new RegExp(`^${app}: cannot start: ${pattern.source}`));
}

describe('bad model files: gateway and worker exit 1 with one clear line', () => {
  const cases: Array<[string, () => string, RegExp]> = [
    ['a truncated model', () => modelFolder('truncated-model', MODEL_FILE, (b) => b.subarray(0, b.length >> 1)), /ModelFormatError: .*stories260K\.bin: truncated file/],
    ['a model with a garbage header', () => modelFolder('garbage-model', MODEL_FILE, (b) => Buffer.concat([Buffer.alloc(28, 0xff), b.subarray(28)])), /ModelFormatError: .*stories260K\.bin/],
    ['a truncated tokenizer', () => modelFolder('truncated-tokenizer', TOKENIZER_FILE, (b) => b.subarray(0, 3000)), /TokenizerFormatError: .*tok512\.bin: truncated file/],
    ['an empty tokenizer', () => modelFolder('empty-tokenizer', TOKENIZER_FILE, () => Buffer.alloc(0)), /TokenizerFormatError: .*tok512\.bin/],
    ['a model folder that does not exist', () => join(dir, 'missing'), /Model\w*Error: .*missing/],
  ];
  for (const [what, folder, pattern] of cases) {
    it(what, async () => {
      const model = folder();
      await Promise.all([assertOneLineFailure('gateway', { MODEL: model }, pattern), assertOneLineFailure('worker', { MODEL: model }, pattern)]);
    });
  }
});

describe('bad configuration', () => {
  it('names the variable, not its value', async () => {
    await assertOneLineFailure('gateway', { AUTH_MODE: 'api-key', API_KEY_HASHES: 'sekrit-value' }, /ConfigError: invalid configuration: API_KEY_HASHES: entry 1 /);
    await assertOneLineFailure('gateway', { AUTH_MODE: 'api-key', API_KEY_HASHES: '' }, /ConfigError: .*API_KEY_HASHES: required when AUTH_MODE=api-key/);
    await assertOneLineFailure('worker', { LOCK_DURATION_MS: 'soon' }, /ConfigError: invalid configuration: LOCK_DURATION_MS: /);
  });

  it('an unreachable Redis is named, after the model loaded', async () => {
    await assertOneLineFailure('worker', { MODEL: stories260kDir() }, /RedisUnavailableError: Redis at redis:\/\/127\.0\.0\.1:1\/? did not answer within 500 ms: .*ECONNREFUSED/);
  });

  it('a shared host tier that does not fit its folder names HOST_TIER_CAPACITY_BYTES, not an internal option', async () => {
    const tierDir = join(dir, 'host-tier');
    mkdirSync(tierDir);
    const freeBytes = statfsSync(tierDir).bavail * statfsSync(tierDir).bsize;
    const env = { MODEL: stories260kDir(), HOST_TIER: 'shared', HOST_TIER_DIR: tierDir };
    await assertOneLineFailure('worker', { ...env, HOST_TIER_CAPACITY_BYTES: String(freeBytes + (64 << 20)) }, /HostTierSpaceError: host tier needs \d+ bytes .* lower HOST_TIER_CAPACITY_BYTES /);
    await assertOneLineFailure('worker', { ...env, HOST_TIER_CAPACITY_BYTES: '1' }, /HostTierSpaceError: HOST_TIER_CAPACITY_BYTES 1 is below one block/);
  });
});
