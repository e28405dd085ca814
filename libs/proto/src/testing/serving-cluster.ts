import { ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { credentials, Metadata, ServiceError } from '@grpc/grpc-js';
import { repoRoot } from '@kcache-serve/kcache';
import { FinalEvent, GenerateRequest, GenerateResponse, GenerationClient, TokenEvent } from '../gen/kcache/v1/generation';
import { GENERATION_QUEUE_NAME, GenerationJobData } from '../queue/generation-job';
import { RedisKeys } from '../queue/redis-keys';
import { REQUEST_ID_METADATA_KEY } from '../metadata';
import { freePort, startTestRedis, TestRedis } from './redis-server';
import { waitFor } from './wait-for';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';

/**
 * Real processes for end-to-end tests: a Redis (own, or REDIS_URL with a random key prefix), one gateway
 * (`node apps/gateway/dist/main.js`) and workers (`node apps/worker/dist/main.js`), talking real gRPC
 * over loopback. Child output is kept and printed when a process exits unexpectedly.
 */
export interface ClusterOptions {
  readonly model: string;
  readonly numWorkers?: number;
  readonly gatewayEnv?: Readonly<Record<string, string>>;
  readonly workerEnv?: Readonly<Record<string, string>>;
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
    const redis = await startTestRedis();
    const prefix = `kcache-test-${randomBytes(4).toString('hex')}`;
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
      ...options.gatewayEnv,
    });
    const cluster = new ServingCluster(options, redis, gateway, `127.0.0.1:${grpcPort}`, `http://127.0.0.1:${httpPort}`, prefix);
    try {
      await waitForHttp(`${cluster.httpUrl}/healthz`, gateway);
      for (let i = 0; i < (options.numWorkers ?? 1); i++) await cluster.startWorker();
      if ((options.numWorkers ?? 1) > 0) await cluster.waitUntilReady();
    } catch (error) {
      await cluster.stop();
      throw error;
    }
    return cluster;
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
      ...this.options.workerEnv,
      ...env,
    });
    const worker = { ...spawned, metricsUrl: `http://127.0.0.1:${metricsPort}/metrics` };
    this.workers.push(worker);
    await waitForHttp(`http://127.0.0.1:${metricsPort}/healthz`, spawned);
    return worker;
  }

  async waitUntilReady(): Promise<void> {
    await waitForHttp(`${this.httpUrl}/readyz`, this.gateway);
  }

  client(): GenerationClient {
    const client = new GenerationClient(this.grpcAddress, credentials.createInsecure());
    this.clients.push(client);
    return client;
  }

  /** A plain Redis client on the cluster's Redis. */
  redisClient(): Redis {
    const redis = new Redis(this.redis.url, { maxRetriesPerRequest: null });
    this.redisClients.push(redis);
    return redis;
  }

  /** A BullMQ handle on the cluster's queue, to inspect jobs. */
  queue(): Queue<GenerationJobData> {
    const connection = this.redisClient();
    const queue = new Queue<GenerationJobData>(GENERATION_QUEUE_NAME, { connection, prefix: this.keys.bullPrefix });
    this.queues.push(queue);
    return queue;
  }

  async stop(): Promise<void> {
    for (const client of this.clients) client.close();
    for (const queue of this.queues) await queue.close();
    for (const redis of this.redisClients) await redis.quit();
    await Promise.all([this.gateway, ...this.workers].map((p) => stopProcess(p)));
    await deleteKeys(this.redis.url, this.keys.prefix); // matters when REDIS_URL is shared
    await this.redis.stop();
  }
}

/** Runs Generate to its end: the stream's events, or its error status. */
export function collectStream(
  client: GenerationClient,
  request: Partial<GenerateRequest>,
  deadlineMs?: number,
  onToken?: (token: TokenEvent) => void,
): Promise<CollectedStream> {
  return new Promise((resolve) => {
    const tokens: TokenEvent[] = [];
    let final: FinalEvent | null = null;
    let requestId = request.requestId ?? '';
    const options = deadlineMs === undefined ? {} : { deadline: Date.now() + deadlineMs };
    const call = client.generate(GenerateRequest.fromPartial(request), new Metadata(), options);
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

async function waitForHttp(url: string, owner: ServingProcess): Promise<void> {
  let hasExited = false;
  void owner.exited.then(() => (hasExited = true));
  await waitFor(
    async () => {
      if (hasExited) throw new Error(`${owner.name} exited during start-up:\n${owner.output.join('')}`);
      try {
        return (await fetch(url)).status === 200;
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
