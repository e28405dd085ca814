import { Counter, Gauge, Histogram, Registry } from 'prom-client';

const LATENCY_BUCKETS_S = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** The gateway's Prometheus metrics, in their own registry (served at GET /metrics). */
export class GatewayMetrics {
  readonly registry = new Registry();
  private readonly registers = [this.registry];
  /** Finished requests by transport (grpc, http) and gRPC status name (OK, INVALID_ARGUMENT, ...). */
  readonly requests = new Counter({
    name: 'kcache_gateway_requests_total',
    help: 'Finished generation requests by transport and status',
    labelNames: ['transport', 'status'] as const,
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
  constructor(readQueueDepth: () => Promise<number>) {
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
