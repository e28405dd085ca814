import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { describe, it } from 'node:test';
import { repoRoot } from '@kcache-serve/kcache/testing';
import { freePort } from '@kcache-serve/proto/dist/testing';
import { Redis } from 'ioredis';

const MARKER = 'KCACHE_QUICKSTART_TEST_RUN';
const TIMEOUT_MS = 240_000;

interface ScriptRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the script; onOutput (called on each stdout chunk) may send it a signal once it has printed what a check needs. */
function runScript(args: string[], env: NodeJS.ProcessEnv, onOutput?: (stdout: string, stderr: string, stop: () => void) => void): Promise<ScriptRun> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [join(repoRoot(), 'scripts', 'quickstart.sh'), ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const stop = () => child.kill('SIGTERM');
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      onOutput?.(stdout, stderr, stop);
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGTERM'), TIMEOUT_MS);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Processes whose environment carries MARKER=value: everything the script started, at any depth. */
function processesMarked(value: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      if (readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(`${MARKER}=${value}`)) {
        found.push(`${pid}: ${readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ')}`);
      }
    } catch {
      // exited meanwhile, or not ours to read
    }
  }
  return found;
}

async function deleteKeys(url: string, prefix: string): Promise<void> {
  const redis = new Redis(url);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    await redis.quit();
  }
}

/** A port p with p+1 free as well, for METRICS_PORT with two workers. */
async function freePortPair(): Promise<number> {
  for (;;) {
    const port = await freePort();
    if (port < 65535 && (await isFree(port + 1))) return port;
  }
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

describe('scripts/quickstart.sh', () => {
  it('--exit-after-demo: streams a completion, prints its summary and the API, exits 0 leaving no process behind', { timeout: TIMEOUT_MS + 10_000 }, async () => {
    const runId = randomBytes(6).toString('hex');
    const prefix = `kcache-test-${runId}`;
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      [MARKER]: runId,
      PORT: String(await freePort()),
      HTTP_PORT: String(await freePort()),
      LOG_LEVEL: 'warn',
    };
    // With REDIS_URL from the test environment the script uses it: keep to a key prefix of our own.
    if (process.env.REDIS_URL) env.REDIS_PREFIX = prefix;
    // --no-install: a stale node_modules fails the run instead of `npm ci` replacing it under the suite.
    const run = await runScript(['--exit-after-demo', '--no-install'], env);
    try {
      const context = `exit ${run.code}\nstdout:\n${run.stdout}\nstderr:\n${run.stderr}`;
      assert.equal(run.code, 0, context);
      const summary = /^demo: (\d+) tokens in [\d.]+ s \(finish \w+\), TTFT ([\d.]+) ms, ([\d.]+) tokens\/s$/m.exec(run.stdout);
      assert.ok(summary, `no summary line\n${context}`);
      assert.ok(Number(summary[1]) > 0 && Number(summary[2]) > 0 && Number(summary[3]) > 0, summary[0]);
      // The prompt, then the streamed text (stories260K writes words), before the summary.
      const text = run.stdout.slice(0, summary.index);
      assert.match(text, /^Once upon a time\S*(\s+\S+){5,}/, context);
      assert.match(run.stdout, new RegExp(`grpcurl -plaintext .* 127\\.0\\.0\\.1:${env.PORT} kcache\\.v1\\.Generation/Generate`));
      assert.match(run.stdout, new RegExp(`curl -N http://127\\.0\\.0\\.1:${env.HTTP_PORT}/v1/completions`));
      assert.match(run.stderr, /quickstart: authentication is OFF for this local quick start/);
      assert.match(run.stderr, /quickstart: stopped/);
      assert.deepEqual(processesMarked(runId), []);
      // redis-server rewrites its environment for its process title, so it is found by the pid logged.
      const redisPid = /redis-server .* on redis:\S+ \(pid (\d+)\)/.exec(run.stderr)?.[1];
      if (!process.env.REDIS_URL) assert.ok(redisPid !== undefined && !existsSync(`/proc/${redisPid}`), `redis-server pid ${redisPid}`);
    } finally {
      if (process.env.REDIS_URL) await deleteKeys(process.env.REDIS_URL, prefix);
    }
  });

  it('supervises its workers: kill -9 of one is logged and restarted with backoff, the stack keeps serving, Ctrl-C still stops cleanly', { timeout: TIMEOUT_MS + 10_000 }, async () => {
    const runId = randomBytes(6).toString('hex');
    const prefix = `kcache-test-${runId}`;
    const httpPort = await freePort();
    // info: the restarted worker's log says when it started (a SIGTERM before that is not a clean stop).
    const env: NodeJS.ProcessEnv = { ...process.env, [MARKER]: runId, PORT: String(await freePort()), HTTP_PORT: String(httpPort), LOG_LEVEL: 'info' };
    if (process.env.REDIS_URL) env.REDIS_PREFIX = prefix;
    const child = spawn('bash', [join(repoRoot(), 'scripts', 'quickstart.sh'), '--no-install'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stdout.on('data', () => undefined);
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
    const until = async (what: string, isDone: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> => {
      const giveUpAt = Date.now() + timeoutMs;
      while (!(await isDone())) {
        if (Date.now() > giveUpAt || child.exitCode !== null) throw new Error(`${what}: not seen\nstderr:\n${stderr}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    const complete = async (): Promise<number> =>
      (await fetch(`http://127.0.0.1:${httpPort}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt: 'Once upon a time', max_tokens: 8 }) })).status;
    try {
      await until('serving', () => stderr.includes('quickstart: serving; Ctrl-C stops'), TIMEOUT_MS);
      const workers = processesMarked(runId).filter((p) => p.includes('apps/worker/dist/main.js'));
      assert.equal(workers.length, 2, workers.join('\n'));
      const victim = Number(workers[0].split(':')[0]);
      process.kill(victim, 'SIGKILL');
      await until('the exit logged', () => new RegExp(`worker-\\d \\(pid ${victim}\\) exited with status 137 after \\d+ s; restarting it in 1 s`).test(stderr), 10_000);
      assert.equal(await complete(), 200, 'the other worker serves meanwhile');
      await until('the restart logged', () => /quickstart: worker-\d restarted \(pid \d+\)/.test(stderr), 10_000);
      await until('two workers again', () => processesMarked(runId).filter((p) => p.includes('apps/worker/dist/main.js')).length === 2, 10_000);
      const logPath = /\(log: (\S+)\)/.exec(stderr)![1];
      await until('the restarted worker started', () => (readFileSync(logPath, 'utf8').match(/"msg":"worker started"/g) ?? []).length === 2, 30_000);
      assert.equal(await complete(), 200);
      assert.ok(child.exitCode === null, 'the quick start is still running');
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0, stderr);
    assert.match(stderr, /quickstart: stopped/);
    assert.deepEqual(processesMarked(runId), []);
    if (process.env.REDIS_URL) await deleteKeys(process.env.REDIS_URL, prefix);
  });

  it('passes RELAY_PORT and METRICS_PORT through, logs every port, and worker log lines name workerId once', { timeout: TIMEOUT_MS + 10_000 }, async () => {
    const runId = randomBytes(6).toString('hex');
    const prefix = `kcache-test-${runId}`;
    const [relayPort, metricsPort] = [await freePort(), await freePortPair()];
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      [MARKER]: runId,
      PORT: String(await freePort()),
      HTTP_PORT: String(await freePort()),
      RELAY_PORT: String(relayPort),
      METRICS_PORT: String(metricsPort),
      LOG_LEVEL: 'info',
    };
    if (process.env.REDIS_URL) env.REDIS_PREFIX = prefix;
    const seen: { metrics: number[]; relayListening: boolean; workerLogLines: string[] } = { metrics: [], relayListening: false, workerLogLines: [] };
    let isChecking = false;
    const run = await runScript(['--no-install'], env, (stdout, stderr, stop) => {
      if (isChecking || !stdout.includes('kcache-serve is running')) return;
      isChecking = true;
      void (async () => {
        try {
          for (const port of [metricsPort, metricsPort + 1]) seen.metrics.push((await fetch(`http://127.0.0.1:${port}/metrics`)).status);
          seen.relayListening = !(await isFree(relayPort));
          const runDir = /logs in (\S+)/.exec(stderr)?.[1] ?? '';
          seen.workerLogLines = readFileSync(join(runDir, 'worker-1.log'), 'utf8').split('\n').filter((line) => line.startsWith('{'));
        } finally {
          stop();
        }
      })();
    });
    try {
      const context = `exit ${run.code}\nstdout:\n${run.stdout}\nstderr:\n${run.stderr}`;
      assert.equal(run.code, 0, context);
      assert.match(run.stderr, new RegExp(`relay ${relayPort}\\) and 2 workers \\(metrics ports ${metricsPort} ${metricsPort + 1}\\)`), context);
      assert.deepEqual(seen.metrics, [200, 200], context);
      assert.ok(seen.relayListening, `nothing listens on RELAY_PORT ${relayPort}\n${context}`);
      assert.ok(seen.workerLogLines.some((line) => line.includes('"worker started"')), seen.workerLogLines.join('\n'));
      for (const line of seen.workerLogLines) assert.ok((line.match(/"workerId":/g) ?? []).length <= 1, line);
      assert.deepEqual(processesMarked(runId), []);
    } finally {
      if (process.env.REDIS_URL) await deleteKeys(process.env.REDIS_URL, prefix);
    }
  });
});
