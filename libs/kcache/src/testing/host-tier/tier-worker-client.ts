import { ChildProcess, fork } from 'node:child_process';
import { join } from 'node:path';
import { LlmEngine } from '../../engine/llm-engine';
import { GenerationRequest } from '../../engine/generation-request';
import { TierWorkerConfig, TierWorkerMessage } from './tier-worker';

export type WorkerStats = ReturnType<LlmEngine['stats']>;

export interface WorkerResult {
  readonly requestId: string;
  readonly tokenIds: number[];
  readonly reason: string;
  readonly error?: string;
}

/** The parent's handle on one tier-worker child process. */
export class TierWorker {
  private readonly results = new Map<string, (result: WorkerResult) => void>();
  private readonly firstTokens = new Map<string, () => void>();
  private readonly statsWaiters = new Map<number, (stats: WorkerStats) => void>();
  private batchStarted: ((stats: WorkerStats) => void) | null = null;
  private nextStatsId = 0;
  private exited: Promise<number | null>;

  private constructor(
    readonly child: ChildProcess,
    readonly slot: number | null,
  ) {
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    child.on('message', (message: { type: string } & Record<string, unknown>) => {
      if (message.type === 'result') this.results.get(message.requestId as string)?.(message as unknown as WorkerResult);
      else if (message.type === 'first-token') this.firstTokens.get(message.requestId as string)?.();
      else if (message.type === 'stats') this.statsWaiters.get(message.id as number)?.(message.stats as WorkerStats);
      else if (message.type === 'batch-started') this.batchStarted?.(message.stats as WorkerStats);
    });
  }

  /** Forks a worker and waits until its engine is up; rejects with the worker's start-up error. */
  static start(config: TierWorkerConfig): Promise<TierWorker> {
    const child = fork(join(__dirname, 'tier-worker.js'), [JSON.stringify(config)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    return new Promise((resolve, reject) => {
      const onExit = (code: number | null) => reject(new Error(`tier worker exited with ${code} before it was ready`));
      child.once('exit', onExit);
      child.once('message', (message: { type: string; slot?: number | null; name?: string; message?: string }) => {
        child.off('exit', onExit);
        if (message.type === 'ready') resolve(new TierWorker(child, message.slot ?? null));
        else {
          const error = new Error(message.message);
          error.name = message.name ?? 'Error';
          reject(error);
        }
      });
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Resolves with the result; `started` resolves at the first token. */
  generate(request: GenerationRequest): { result: Promise<WorkerResult>; started: Promise<void> } {
    const result = new Promise<WorkerResult>((resolve) => this.results.set(request.requestId, resolve));
    const started = new Promise<void>((resolve) => this.firstTokens.set(request.requestId, resolve));
    this.send({ type: 'generate', request });
    return { result, started };
  }

  /** Submits every request at once; `started` gives the stats taken when the last of them got its first token. */
  generateBatch(requests: readonly GenerationRequest[]): { results: Promise<WorkerResult[]>; started: Promise<WorkerStats> } {
    const results = Promise.all(requests.map((r) => new Promise<WorkerResult>((resolve) => this.results.set(r.requestId, resolve))));
    const started = new Promise<WorkerStats>((resolve) => (this.batchStarted = resolve));
    this.send({ type: 'generate-batch', requests });
    return { results, started };
  }

  stats(): Promise<WorkerStats> {
    const id = this.nextStatsId++;
    const stats = new Promise<WorkerStats>((resolve) => this.statsWaiters.set(id, resolve));
    this.send({ type: 'stats', id });
    return stats;
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.send({ type: 'close' });
    await this.exited;
  }

  /** SIGKILL: no clean-up of any kind runs in the worker. */
  async kill(): Promise<void> {
    this.child.kill('SIGKILL');
    await this.exited;
  }

  private send(message: TierWorkerMessage): void {
    this.child.send(message);
  }
}
