import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { ModelConfig } from '../model/model-config';
import { TierCapacity } from '../memory/tier-capacity';
import { checkAdmission } from './admission';
import { DuplicateRequestIdError, EngineClosedError } from './engine-errors';
import { EngineOptions } from './engine-options';
import { EngineThreadData, FromEngineThread, ToEngineThread } from './engine-thread-messages';
import { EngineStats, GenerationEngine } from './generation-engine';
import { GenerationListener, GenerationRequest } from './generation-request';

type ReadyMessage = Extract<FromEngineThread, { type: 'ready' }>;

/**
 * An LlmEngine on a thread of its own (worker_threads), behind the same GenerationEngine interface.
 * onnxruntime-node runs a graph synchronously, so an engine on the caller's thread holds its event
 * loop for a whole decode step (tens to hundreds of milliseconds on large models): relaying tokens,
 * taking jobs, heartbeats and lock renewals would wait for it. Here they do not.
 * submit runs the engine's admission checks itself, so it throws exactly what LlmEngine.submit throws;
 * stats() is the engine thread's latest report (refreshed whenever the batch changes and every few milliseconds).
 */
export class ThreadedEngine implements GenerationEngine {
  private readonly listeners = new Map<string, { readonly listener: GenerationListener; readonly promptTokens: number; completionTokens: number }>();
  private readonly modelConfig: ModelConfig;
  private readonly capacity: TierCapacity;
  private readonly maxNumSeqs: number;
  private latestStats: EngineStats;
  private isClosing = false;
  private closed: Promise<void> | null = null;
  private readonly failureListeners: Array<(reason: string) => void> = [];

  private constructor(
    private readonly thread: Worker,
    ready: ReadyMessage,
  ) {
    this.modelConfig = ready.modelConfig;
    this.capacity = ready.capacity;
    this.maxNumSeqs = ready.maxNumSeqs;
    this.latestStats = ready.stats;
    thread.on('message', (message: FromEngineThread) => this.onMessage(message));
    thread.on('error', (error) => this.fail(`engine thread failed: ${error.message}`));
    thread.on('exit', (code) => this.fail(`engine thread exited (code ${code})`));
  }

  /** Starts the thread, which loads the model and compiles its graphs; rejects with the engine's start-up error. */
  static async start(options: EngineOptions): Promise<ThreadedEngine> {
    const thread = new Worker(join(__dirname, 'engine-thread.js'), { workerData: { options } satisfies EngineThreadData });
    const ready = await new Promise<ReadyMessage>((resolve, reject) => {
      const onExit = (code: number) => reject(new Error(`engine thread exited (code ${code}) before it was ready`));
      thread.once('exit', onExit);
      thread.once('error', reject);
      thread.once('message', (message: FromEngineThread) => {
        thread.off('exit', onExit);
        thread.off('error', reject);
        if (message.type === 'ready') resolve(message);
        else if (message.type === 'startFailed') reject(Object.assign(new Error(message.message), { name: message.name }));
        else reject(new Error(`engine thread: unexpected first message '${message.type}'`));
      });
    }).catch(async (error: unknown) => {
      await thread.terminate();
      throw error;
    });
    return new ThreadedEngine(thread, ready);
  }

  submit(request: GenerationRequest, listener: GenerationListener): void {
    if (this.isClosing) throw new EngineClosedError();
    checkAdmission(request, this.modelConfig, this.capacity);
    if (this.listeners.has(request.requestId)) throw new DuplicateRequestIdError(request.requestId);
    this.listeners.set(request.requestId, { listener, promptTokens: request.promptTokenIds.length, completionTokens: request.resumeTokenIds?.length ?? 0 });
    this.post({ type: 'submit', request });
  }

  cancel(requestId: string): boolean {
    if (!this.listeners.has(requestId)) return false;
    this.post({ type: 'cancel', requestId });
    return true;
  }

  numFreeSlots(): number {
    return Math.max(0, this.maxNumSeqs - this.listeners.size);
  }

  stats(): EngineStats {
    return this.latestStats;
  }

  /** Ends every request (finish 'cancelled'), stops the decode loop and the thread. */
  close(): Promise<void> {
    this.isClosing = true;
    this.closed ??= new Promise<void>((resolve) => {
      this.thread.once('exit', () => resolve());
      this.post({ type: 'close' });
    });
    return this.closed;
  }

  /**
   * Called once if the thread dies other than by close(): every open request has then ended (finish
   * 'cancelled' with the reason) and submit refuses new ones, so the owner should restart the process.
   */
  onThreadFailure(listener: (reason: string) => void): void {
    this.failureListeners.push(listener);
  }

  private post(message: ToEngineThread): void {
    this.thread.postMessage(message);
  }

  private onMessage(message: FromEngineThread): void {
    if (message.type === 'events') {
      for (const event of message.events) {
        const open = this.listeners.get(event.requestId);
        if (event.type === 'finish') this.listeners.delete(event.requestId);
        else if (open) open.completionTokens++;
        open?.listener(event);
      }
    }
    if ('stats' in message && message.stats !== undefined) this.latestStats = message.stats;
  }

  /** The thread is gone: every request still open ends now, with the reason. */
  private fail(reason: string): void {
    const isUnexpected = this.closed === null && !this.isClosing;
    this.isClosing = true;
    for (const [requestId, { listener, promptTokens, completionTokens }] of [...this.listeners]) {
      this.listeners.delete(requestId);
      listener({ type: 'finish', requestId, reason: 'cancelled', promptTokens, completionTokens, error: reason });
    }
    if (isUnexpected) for (const listener of this.failureListeners) listener(reason);
  }
}
