import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A throwaway redis-server for tests, or the one REDIS_URL names (only when no option asks for more). */
export interface TestRedis {
  readonly url: string;
  /** Kills the server (SIGKILL by default) and starts it again on the same port and data folder. */
  restart(options?: { readonly signal?: NodeJS.Signals; readonly downMs?: number }): Promise<void>;
  /** The server's pid, null for a REDIS_URL server. */
  pid(): number | null;
  stop(): Promise<void>;
}

export interface TestRedisOptions {
  /** AOF on with fsync on every write: a restart, even after SIGKILL, loses no acknowledged write. */
  readonly isAppendOnly?: boolean;
  /** An ACL user (the default user is turned off); the URL carries the credentials. */
  readonly user?: { readonly name: string; readonly password: string };
  /** TLS only (no plaintext port), server certificate signed by caPath; clients need no certificate. */
  readonly tls?: { readonly certPath: string; readonly keyPath: string; readonly caPath: string };
  readonly env?: NodeJS.ProcessEnv;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      if (address === null || typeof address === 'string') return reject(new Error('no port'));
      server.close(() => resolve(address.port));
    });
  });
}

export async function startTestRedis(redisOptions: TestRedisOptions = {}): Promise<TestRedis> {
  const env = redisOptions.env ?? process.env;
  const needsOwn = redisOptions.isAppendOnly === true || redisOptions.user !== undefined || redisOptions.tls !== undefined;
  if (env.REDIS_URL && !needsOwn) {
    const url = env.REDIS_URL;
    return {
      url,
      pid: () => null,
      restart: () => Promise.reject(new Error(`cannot restart the Redis at REDIS_URL=${url}`)),
      stop: async () => undefined,
    };
  }
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'kcache-redis-'));
  const args = ['--bind', '127.0.0.1', '--dir', dir, '--save', ''];
  args.push(...(redisOptions.isAppendOnly ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no']));
  if (redisOptions.user !== undefined) {
    const { name, password } = redisOptions.user;
    args.push('--user', 'default', 'off', '--user', name, 'on', `>${password}`, '~*', '&*', '+@all');
  }
  const tls = redisOptions.tls;
  if (tls !== undefined) {
    args.push('--port', '0', '--tls-port', String(port), '--tls-cert-file', tls.certPath, '--tls-key-file', tls.keyPath);
    args.push('--tls-ca-cert-file', tls.caPath, '--tls-auth-clients', 'no');
  } else {
    args.push('--port', String(port));
  }
  const executable = env.REDIS_SERVER ?? 'redis-server';
  let child = spawn(executable, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  await waitForReady(child, port);
  const credentials = redisOptions.user === undefined ? '' : `${encodeURIComponent(redisOptions.user.name)}:${encodeURIComponent(redisOptions.user.password)}@`;
  const kill = async (signal: NodeJS.Signals): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill(signal);
    await exited;
  };
  return {
    url: `${tls === undefined ? 'redis' : 'rediss'}://${credentials}127.0.0.1:${port}`,
    pid: () => child.pid ?? null,
    restart: async ({ signal = 'SIGKILL', downMs = 0 } = {}) => {
      await kill(signal);
      if (downMs > 0) await new Promise((resolve) => setTimeout(resolve, downMs));
      child = spawn(executable, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      await waitForReady(child, port);
    },
    stop: async () => {
      await kill('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function waitForReady(child: ChildProcess, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let output = '';
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      if (output.includes('Ready to accept connections')) {
        child.stdout?.off('data', onData);
        child.stderr?.off('data', onData);
        child.stdout?.resume();
        child.stderr?.resume();
        resolve();
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`redis-server on port ${port} exited (${code}): ${output}`)));
  });
}
