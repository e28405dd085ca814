import { performance } from 'node:perf_hooks';
import { FinalEvent, FinishReason, GenerateResponse, TokenEvent } from '@kcache-serve/proto';
import { GatewayMetrics } from '../metrics/gateway-metrics';

/**
 * What a stream emits: the public API's response event as GenerateResponse carries it (the token a worker
 * relayed, unchanged, or the final event), or the error that ends the stream.
 */
export type StreamEvent = NonNullable<GenerateResponse['event']> | { readonly $case: 'error'; readonly value: Error };

export type StreamListener = (event: StreamEvent) => void;

/**
 * One client's view of a request: tokens leave in index order 0, 1, 2, ... exactly once, whatever order
 * and repetition workers deliver them in (a resumed job repeats indices), then one final event or one error.
 */
export class RequestStream {
  private readonly createdAtMs = performance.now();
  private startedAtMs: number | null = null;
  private firstTokenAtMs: number | null = null;
  private lastTokenAtMs: number | null = null;
  private nextIndex = 0;
  private readonly pending = new Map<number, TokenEvent>();
  private isEnded = false;
  /** performance.now() of the last sign of life from a worker (or of creation). */
  private lastActivityAtMs = this.createdAtMs;
  /** The job is in the queue (admission finished); before that, the queue has no job to look for. */
  isQueued = false;
  /** The client left before the end (disconnect, deadline). */
  isAbandoned = false;
  /** Cancel was called; the worker is asked to stop and the stream ends with its CANCELLED finish. */
  isCancelRequested = false;

  constructor(
    readonly requestId: string,
    readonly numPromptTokens: number,
    /** What every relay event for this stream must carry (the job's relayCapability, decoded); never logged. */
    readonly relayCapability: Uint8Array,
    private readonly listener: StreamListener,
    private readonly metrics: GatewayMetrics,
    private readonly onEnd: (stream: RequestStream) => void,
  ) {
    metrics.activeStreams.inc();
  }

  get ended(): boolean {
    return this.isEnded;
  }

  get numTokens(): number {
    return this.nextIndex;
  }

  markQueued(): void {
    this.isQueued = true;
    this.lastActivityAtMs = performance.now();
  }

  /** How long no worker has said anything about this request. */
  idleMs(nowMs: number = performance.now()): number {
    return nowMs - this.lastActivityAtMs;
  }

  /** A worker took the job (again, after a worker died: the first time counts). */
  markStarted(): void {
    this.lastActivityAtMs = performance.now();
    if (this.startedAtMs !== null) return;
    this.startedAtMs = performance.now();
    this.metrics.queueSeconds.observe((this.startedAtMs - this.createdAtMs) / 1000);
  }

  acceptToken(token: TokenEvent): void {
    this.lastActivityAtMs = performance.now();
    if (this.isEnded || token.index < this.nextIndex) return;
    this.pending.set(token.index, token);
    for (let next = this.pending.get(this.nextIndex); next !== undefined; next = this.pending.get(this.nextIndex)) {
      this.pending.delete(this.nextIndex);
      this.nextIndex++;
      this.observeToken();
      this.listener({ $case: 'token', value: next });
    }
  }

  /** Ends the stream with its final event; usage counts the tokens this client received. */
  finish(reason: FinishReason): void {
    if (this.isEnded) return;
    const nowMs = performance.now();
    const final: FinalEvent = {
      requestId: this.requestId,
      finishReason: reason,
      usage: { promptTokens: this.numPromptTokens, completionTokens: this.nextIndex },
      timings: {
        queueMs: (this.startedAtMs ?? nowMs) - this.createdAtMs,
        ttftMs: this.firstTokenAtMs === null ? 0 : this.firstTokenAtMs - this.createdAtMs,
        totalMs: nowMs - this.createdAtMs,
      },
    };
    this.end();
    this.metrics.observeFinal(final);
    this.listener({ $case: 'final', value: final });
  }

  fail(error: Error): void {
    if (this.isEnded) return;
    this.end();
    this.listener({ $case: 'error', value: error });
  }

  /** The client left: end without telling it anything. */
  abandon(): void {
    if (this.isEnded) return;
    this.isAbandoned = true;
    this.end();
  }

  private end(): void {
    this.isEnded = true;
    this.pending.clear();
    this.metrics.activeStreams.dec();
    this.onEnd(this);
  }

  private observeToken(): void {
    const nowMs = performance.now();
    if (this.firstTokenAtMs === null) {
      this.firstTokenAtMs = nowMs;
      this.metrics.ttftSeconds.observe((nowMs - this.createdAtMs) / 1000);
    } else if (this.lastTokenAtMs !== null) {
      this.metrics.interTokenSeconds.observe((nowMs - this.lastTokenAtMs) / 1000);
    }
    this.lastTokenAtMs = nowMs;
    this.metrics.tokens.inc();
  }
}
