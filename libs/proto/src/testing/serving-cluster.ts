import { ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { ChannelCredentials, credentials, Metadata, ServiceError } from '@grpc/grpc-js';
import { repoRoot } from '@kcache-serve/kcache/testing';
import { FinalEvent, GenerateRequest, GenerateResponse, GenerationClient, TokenEvent } from '../gen/kcache/v1/generation';
import { GENERATION_QUEUE_NAME, GenerationJobData } from '../queue/generation-job';
import { RedisKeys } from '../queue/redis-keys';
import { createRedis, RedisConnectionOptions } from '../queue/redis-connection';
import { REQUEST_ID_METADATA_KEY } from '../metadata';
import { freePort, startTestRedis, TestRedis, TestRedisOptions } from './redis-server';
import { waitFor } from './wait-for';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';

/**
 * Real processes for end-to-end tests: a Redis (own, or REDIS_URL with a random key prefix), one gateway
 * (`node apps/gateway/dist/main.js`) and workers (`node apps/worker/dist/main.js`), talking real gRPC
 * over loopback. Child output is kept and printed when a process exits unexpectedly.
 * The gateway runs with AUTH_MODE=off unless gatewayEnv says otherwise.
 */
export interface ClusterOptions {
  readonly model: string;
  readonly numWorkers?: number;
  readonly gatewayEnv?: Readonly<Record<string, string>>;
  readonly workerEnv?: Readonly<Record<string, string>>;
  /** Options of the cluster's own Redis (AOF, ACL user, TLS); the gateway and workers get its URL. */
  readonly redis?: TestRedisOptions;
  /** The gateway's public ports serve TLS (set TLS_CERT_PATH/TLS_KEY_PATH in gatewayEnv); clients trust this CA. */
  readonly publicTlsCaPath?: string;
  /** Sent by the harness's own HTTP checks (health, readiness), for a gateway with HEALTH_AUTH=protected. */
  readonly apiKey?: string;
}

export interface ServingProcess {
  readonly name: string;
  readonly child: ChildProcess;
  readonly output: string[];
  readonly exited: Promise<number | null>;
}

export interface WorkerProcess extends ServingProcess {
  readonly metricsUrl: string;
}

export interface CollectedStream {
  readonly requestId: string;
  readonly tokens: TokenEvent[];
  readonly final: FinalEvent | null;
  readonly error: ServiceError | null;
}

const STARTUP_TIMEOUT_MS = 30_000;

export class ServingCluster {
  readonly keys: RedisKeys;
  readonly workers: WorkerProcess[] = [];
  private readonly clients: GenerationClient[] = [];
  private readonly queues: Queue[] = [];
  private readonly redisClients: Redis[] = [];
  private workerCount = 0;

  private constructor(
    readonly options: ClusterOptions,
    readonly redis: TestRedis,
    readonly gateway: ServingProcess,
    readonly grpcAddress: string,
    readonly httpUrl: string,
    prefix: string,
  ) {
    this.keys = new RedisKeys(prefix);
  }

  static async start(options: ClusterOptions): Promise<ServingCluster> {
    const redis = await startTestRedis(options.redis ?? {});
    const prefix = `kcache-test-${randomBytes(4).toString('hex')}`;
    for (let attempt = 1; ; attempt++) {
      const [grpcPort, httpPort] = [await freePort(), await freePort()];
      const gateway = spawnNode('gateway', join(repoRoot(), 'apps', 'gateway', 'dist', 'main.js'), {
        REDIS_URL: redis.url,
        REDIS_PREFIX: prefix,
        MODEL: options.model,
        PORT: String(grpcPort),
        GRPC_HOST: '127.0.0.1',
        HTTP_PORT: String(httpPort),
        HTTP_HOST: '127.0.0.1',
        RELAY_PORT: '0',
        RELAY_HOST: '127.0.0.1',
        LOG_LEVEL: 'warn',
        AUTH_MODE: 'off',
        ...redisTlsEnv(options.redis),
        ...options.gatewayEnv,
      });
      const scheme = options.publicTlsCaPath === undefined ? 'http' : 'https';
      const cluster = new ServingCluster(options, redis, gateway, `127.0.0.1:${grpcPort}`, `${scheme}://127.0.0.1:${httpPort}`, prefix);
      try {
        await cluster.waitForHttp(`${cluster.httpUrl}/healthz`, gateway);
      } catch (error) {
        // freePort's port can be taken by another process before the gateway listens on it: new ports, a new gateway.
        if (attempt < 3 && error instanceof Error && error.message.includes('EADDRINUSE')) {
          await stopProcess(gateway);
          continue;
        }
        await cluster.stop();
        throw error;
      }
      try {
        for (let i = 0; i < (options.numWorkers ?? 1); i++) await cluster.startWorker();
        if ((options.numWorkers ?? 1) > 0) await cluster.waitUntilReady();
      } catch (error) {
        await cluster.stop();
        throw error;
      }
      return cluster;
    }
  }

  async startWorker(env: Readonly<Record<string, string>> = {}): Promise<WorkerProcess> {
    const metricsPort = await freePort();
    const name = `worker-${this.workerCount++}`;
    const spawned = spawnNode(name, join(repoRoot(), 'apps', 'worker', 'dist', 'main.js'), {
      REDIS_URL: this.redis.url,
      REDIS_PREFIX: this.keys.prefix,
      MODEL: this.options.model,
      WORKER_ID: name,
      METRICS_HOST: '127.0.0.1',
      METRICS_PORT: String(metricsPort),
      LOCK_DURATION_MS: '2000',
      STALLED_INTERVAL_MS: '1000',
      HEARTBEAT_INTERVAL_MS: '500',
      HEARTBEAT_TTL_MS: '1500',
      NUM_THREADS: '1',
      LOG_LEVEL: 'warn',
      ...redisTlsEnv(this.options.redis),
      ...this.options.workerEnv,
      ...env,
    });
    const worker = { ...spawned, metricsUrl: `http://127.0.0.1:${metricsPort}/metrics` };
    this.workers.push(worker);
    await waitForHttp(`http://127.0.0.1:${metricsPort}/healthz`, spawned);
    return worker;
  }

  async waitUntilReady(): Promise<void> {
    await this.waitForHttp(`${this.httpUrl}/readyz`, this.gateway);
  }

  /** A client of the public gRPC port (TLS trusting publicTlsCaPath when set), or with other credentials. */
  client(channelCredentials?: ChannelCredentials): GenerationClient {
    const client = new GenerationClient(this.grpcAddress, channelCredentials ?? this.channelCredentials());
    this.clients.push(client);
    return client;
  }

  channelCredentials(): ChannelCredentials {
    const caPath = this.options.publicTlsCaPath;
    return caPath === undefined ? credentials.createInsecure() : credentials.createSsl(readFileSync(caPath));
  }

  /** GET against the gateway's HTTP port (TLS and the harness's API key as configured): status and body. */
  httpGet(path: string, headers: Readonly<Record<string, string>> = {}): Promise<{ status: number; body: string }> {
    return getUrl(`${this.httpUrl}${path}`, {
      ca: this.options.publicTlsCaPath === undefined ? undefined : readFileSync(this.options.publicTlsCaPath),
      headers: { ...(this.options.apiKey === undefined ? {} : { authorization: `Bearer ${this.options.apiKey}` }), ...headers },
    });
  }

  private async waitForHttp(url: string, owner: ServingProcess): Promise<void> {
    const path = url.slice(this.httpUrl.length);
    await waitForOk(() => this.httpGet(path).then((r) => r.status === 200), url, owner);
  }

  /** A plain Redis client on the cluster's Redis. */
  redisClient(): Redis {
    const redis = createRedis(this.redisConnection());
    redis.on('error', () => undefined); // reconnects by itself (tests restart Redis)
    this.redisClients.push(redis);
    return redis;
  }

  /** How to reach the cluster's Redis (its URL, and its CA when it serves TLS). */
  redisConnection(): RedisConnectionOptions {
    return { url: this.redis.url, tlsCaPath: this.options.redis?.tls?.caPath };
  }

  /** A BullMQ handle on the cluster's queue, to inspect jobs. */
  queue(): Queue<GenerationJobData> {
    const connection = this.redisClient();
    const queue = new Queue<GenerationJobData>(GENERATION_QUEUE_NAME, { connection, prefix: this.keys.bullPrefix });
    queue.on('error', () => undefined);
    this.queues.push(queue);
    return queue;
  }

  async stop(): Promise<void> {
    for (const client of this.clients) client.close();
    for (const queue of this.queues) await queue.close();
    for (const redis of this.redisClients) await redis.quit();
    await Promise.all([this.gateway, ...this.workers].map((p) => stopProcess(p)));
    await deleteKeys(this.redisConnection(), this.keys.prefix); // matters when REDIS_URL is shared
    await this.redis.stop();
  }
}

/** Metadata carrying `authorization: Bearer <apiKey>`. */
export function bearer(apiKey: string): Metadata {
  const metadata = new Metadata();
  metadata.set('authorization', `Bearer ${apiKey}`);
  return metadata;
}

/** Runs Generate to its end: the stream's events, or its error status. */
export function collectStream(
  client: GenerationClient,
  request: Partial<GenerateRequest>,
  deadlineMs?: number,
  onToken?: (token: TokenEvent) => void,
  metadata: Metadata = new Metadata(),
): Promise<CollectedStream> {
  return new Promise((resolve) => {
    const tokens: TokenEvent[] = [];
    let final: FinalEvent | null = null;
    let requestId = request.requestId ?? '';
    const options = deadlineMs === undefined ? {} : { deadline: Date.now() + deadlineMs };
    const call = client.generate(GenerateRequest.fromPartial(request), metadata, options);
    call.on('metadata', (metadata: Metadata) => {
      requestId = String(metadata.get(REQUEST_ID_METADATA_KEY)[0] ?? requestId);
    });
    call.on('data', (response: GenerateResponse) => {
      if (response.event?.$case === 'token') {
        tokens.push(response.event.value);
        onToken?.(response.event.value);
      } else if (response.event?.$case === 'final') final = response.event.value;
    });
    call.on('error', (error: ServiceError) => resolve({ requestId, tokens, final, error }));
    call.on('end', () => resolve({ requestId, tokens, final, error: null }));
  });
}

export async function fetchMetric(url: string, name: string): Promise<number> {
  const text = await (await fetch(url)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line === undefined ? NaN : Number(line.slice(line.lastIndexOf(' ') + 1));
}


function spawnNode(name: string, script: string, env: Record<string, string>): ServingProcess {
  const child = spawn(process.execPath, [script], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  child.stdout?.on('data', (chunk: Buffer) => output.push(chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => output.push(chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { name, child, output, exited };
}

/** REDIS_TLS_CA_PATH for the apps when the cluster's Redis serves TLS. */
function redisTlsEnv(options: TestRedisOptions | undefined): Record<string, string> {
  return options?.tls === undefined ? {} : { REDIS_TLS_CA_PATH: options.tls.caPath };
}

/** GET with an optional CA (https) and headers; resolves with the status and body, rejects on no answer. */
export function getUrl(
  url: string,
  options: { readonly ca?: Buffer; readonly headers?: Readonly<Record<string, string>>; readonly timeoutMs?: number } = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = url.startsWith('https:') ? httpsRequest : httpRequest;
    const req = request(url, { method: 'GET', headers: options.headers, ca: options.ca, timeout: options.timeoutMs ?? 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url}`)));
    req.on('error', reject);
    req.end();
  });
}

async function waitForHttp(url: string, owner: ServingProcess): Promise<void> {
  await waitForOk(() => getUrl(url).then((r) => r.status === 200), url, owner);
}

async function waitForOk(isOk: () => Promise<boolean>, url: string, owner: ServingProcess): Promise<void> {
  let hasExited = false;
  void owner.exited.then(() => (hasExited = true));
  await waitFor(
    async () => {
      if (hasExited) throw new Error(`${owner.name} exited during start-up:\n${owner.output.join('')}`);
      try {
        return await isOk();
      } catch {
        return false;
      }
    },
    STARTUP_TIMEOUT_MS,
    `${url} (${owner.name})`,
  ).catch((error) => {
    throw new Error(`${(error as Error).message}\n${owner.name} output:\n${owner.output.join('')}`);
  });
}

async function stopProcess(p: ServingProcess): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill('SIGTERM');
  const timer = setTimeout(() => p.child.kill('SIGKILL'), 10_000);
  await p.exited;
  clearTimeout(timer);
}

async function deleteKeys(connection: RedisConnectionOptions, prefix: string): Promise<void> {
  const redis = createRedis(connection);
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
