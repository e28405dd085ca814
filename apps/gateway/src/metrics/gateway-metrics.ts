import { FinalEvent, FinishReason } from '@kcache-serve/proto';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

const LATENCY_BUCKETS_S = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** Whole requests, from accepted to final event (vLLM's e2e_request_latency_seconds buckets, roughly). */
const REQUEST_LATENCY_BUCKETS_S = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 60, 120, 300, 600];

/** The finish_reason label: the final event's reason, or `error` for a request that ended without one. */
export type FinishReasonLabel = 'length' | 'stop' | 'eos' | 'cancelled' | 'error';

const FINISH_REASON_LABELS: Readonly<Record<FinishReason, FinishReasonLabel>> = {
  [FinishReason.FINISH_REASON_UNSPECIFIED]: 'stop',
  [FinishReason.FINISH_REASON_LENGTH]: 'length',
  [FinishReason.FINISH_REASON_STOP]: 'stop',
  [FinishReason.FINISH_REASON_EOS]: 'eos',
  [FinishReason.FINISH_REASON_CANCELLED]: 'cancelled',
  [FinishReason.UNRECOGNIZED]: 'stop',
};

export function finishReasonLabel(reason: FinishReason): FinishReasonLabel {
  return FINISH_REASON_LABELS[reason];
}

/**
 * The gateway's Prometheus metrics, in their own registry (served at GET /metrics), with Node's and the
 * process's default metrics (process_cpu_seconds_total, nodejs_eventloop_lag_seconds, ...).
 */
export class GatewayMetrics {
  readonly registry = new Registry();
  private readonly registers = [this.registry];
  /**
   * Finished generations (one per prompt of a batch) by transport, status (HTTP: the status code sent,
   * 499 when the client left first; gRPC: the status name, OK, INVALID_ARGUMENT, ...), finish reason and model.
   */
  private readonly requests = new Counter({
    name: 'kcache_gateway_requests_total',
    help: 'Finished generation requests by transport, status (HTTP code or gRPC name), finish reason and model',
    labelNames: ['transport', 'status', 'finish_reason', 'model'] as const,
    registers: this.registers,
  });
  private readonly promptTokens = new Counter({
    name: 'kcache_gateway_prompt_tokens_total',
    help: 'Prompt tokens of requests that reached their final event',
    labelNames: ['model'] as const,
    registers: this.registers,
  });
  private readonly requestSeconds = new Histogram({
    name: 'kcache_gateway_e2e_request_latency_seconds',
    help: 'Time from accepting a request to its final event',
    labelNames: ['model'] as const,
    buckets: REQUEST_LATENCY_BUCKETS_S,
    registers: this.registers,
  });
  /** Calls refused for want of a valid API key (they never reach `requests`). */
  readonly authFailures = new Counter({
    name: 'kcache_gateway_auth_failures_total',
    help: 'Calls refused with UNAUTHENTICATED / 401',
    labelNames: ['transport'] as const,
    registers: this.registers,
  });
  /** Streams cut because the client read too slowly (SLOW_CLIENT_*). */
  readonly slowClients = new Counter({
    name: 'kcache_gateway_slow_clients_total',
    help: 'Streams cancelled because the client did not read',
    labelNames: ['transport'] as const,
    registers: this.registers,
  });
  /** Open streams whose job was gone from the queue (Redis lost it); they end UNAVAILABLE. */
  readonly lostRequests = new Counter({ name: 'kcache_gateway_lost_requests_total', help: 'Streams ended because their job vanished from the queue', registers: this.registers });
  readonly tokens = new Counter({ name: 'kcache_gateway_tokens_total', help: 'Tokens streamed to clients', registers: this.registers });
  readonly activeStreams = new Gauge({ name: 'kcache_gateway_active_streams', help: 'Client streams open on this gateway', registers: this.registers });
  readonly ttftSeconds = new Histogram({
    name: 'kcache_gateway_ttft_seconds',
    help: 'Time from accepting a request to its first token',
    buckets: LATENCY_BUCKETS_S,
    registers: this.registers,
  });
  readonly interTokenSeconds = new Histogram({
    name: 'kcache_gateway_inter_token_seconds',
    help: 'Time between consecutive tokens of one stream',
    buckets: LATENCY_BUCKETS_S,
    registers: this.registers,
  });
  readonly queueSeconds = new Histogram({
    name: 'kcache_gateway_queue_seconds',
    help: 'Time from accepting a request to a worker starting it',
    buckets: LATENCY_BUCKETS_S,
    registers: this.registers,
  });

  /**
   * readQueueDepth: requests waiting for a worker (BullMQ waiting + prioritized), read at scrape time; it
   * should fail at once while Redis is unreachable. A scrape never waits for Redis longer than
   * QUEUE_READ_TIMEOUT_MS: it then serves the last depth read and kcache_gateway_queue_depth_stale 1.
   */
  constructor(
    readQueueDepth: () => Promise<number>,
    /** The `model` label: the served model's name. */
    private readonly modelName = '',
  ) {
    collectDefaultMetrics({ register: this.registry });
    const probe = new QueueDepthProbe(readQueueDepth);
    new Gauge({
      name: 'kcache_gateway_queue_depth',
      help: 'Requests waiting for a worker (all gateways); the last value read while kcache_gateway_queue_depth_stale is 1',
      registers: this.registers,
      async collect() {
        this.set((await probe.read()).depth);
      },
    });
    new Gauge({
      name: 'kcache_gateway_queue_depth_stale',
      help: '1 when the queue (Redis) did not answer this scrape and kcache_gateway_queue_depth is an older reading (NaN: none yet)',
      registers: this.registers,
      async collect() {
        this.set((await probe.read()).isStale ? 1 : 0);
      },
    });
  }

  /** A generation ended: `status` is the HTTP code (as text) or the gRPC status name. */
  countRequest(transport: 'grpc' | 'http', status: string, finishReason: FinishReasonLabel, count = 1): void {
    this.requests.inc({ transport, status, finish_reason: finishReason, model: this.modelName }, count);
  }

  /** A request reached its final event: its prompt tokens and its whole latency. */
  observeFinal(final: FinalEvent): void {
    this.promptTokens.inc({ model: this.modelName }, final.usage?.promptTokens ?? 0);
    this.requestSeconds.observe({ model: this.modelName }, (final.timings?.totalMs ?? 0) / 1000);
  }
}

/** Longest a scrape waits for the queue's figures. */
const QUEUE_READ_TIMEOUT_MS = 500;

/** One queue reading per scrape, shared by the gauges that show it; the last good one when Redis does not answer. */
class QueueDepthProbe {
  private lastDepth = NaN;
  private reading: Promise<{ depth: number; isStale: boolean }> | null = null;

  constructor(private readonly readDepth: () => Promise<number>) {}

  read(): Promise<{ depth: number; isStale: boolean }> {
    this.reading ??= this.readNow().finally(() => (this.reading = null));
    return this.reading;
  }

  private async readNow(): Promise<{ depth: number; isStale: boolean }> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('queue read timed out')), QUEUE_READ_TIMEOUT_MS)));
    try {
      this.lastDepth = await Promise.race([this.readDepth(), timeout]);
      return { depth: this.lastDepth, isStale: false };
    } catch {
      return { depth: this.lastDepth, isStale: true };
    } finally {
      clearTimeout(timer);
    }
  }
}
