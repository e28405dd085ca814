import { Metadata, status as GrpcStatus, ServiceError } from '@grpc/grpc-js';
import { DeliveredRun, relay } from '@kcache-serve/proto';
import type { Logger } from 'pino';
import { DeliveryRecorder } from './delivery-recorder';
import { RelayChannel } from './relay-credentials';

export interface GatewayRelayOptions {
  readonly address: string;
  readonly workerId: string;
  readonly channel: RelayChannel;
  /** Total time one batch may take, retries included, before its requests are given up. */
  readonly timeoutMs: number;
  /** Where acknowledged tokens are recorded for crash recovery (asynchronously: Redis may be away). */
  readonly recorder: DeliveryRecorder;
  /** Requests the gateway wants stopped (client gone, Cancel called, or unknown to it). */
  readonly onCancelRequested: (requestIds: readonly string[]) => void;
  readonly log: Logger;
}

const RETRYABLE = new Set([GrpcStatus.UNAVAILABLE, GrpcStatus.DEADLINE_EXCEEDED, GrpcStatus.RESOURCE_EXHAUSTED]);
const FIRST_RETRY_DELAY_MS = 50;

/**
 * Relays events to one gateway. Events queued while a call is in flight go out together in the next call,
 * so one call carries (about) one engine step; at most one call is in flight, so order is kept.
 * A batch's tokens are handed to the DeliveryRecorder once the gateway acknowledged them; the next batch
 * does not wait for Redis, so generation keeps streaming while Redis is away.
 */
export class GatewayRelay {
  private readonly client: relay.RelayClient;
  private pending: relay.RelayEvent[] = [];
  private pendingWaiters: Array<() => void> = [];
  private isPumping = false;

  constructor(private readonly options: GatewayRelayOptions) {
    this.client = new relay.RelayClient(options.address, options.channel.credentials, options.channel.options);
  }

  /** Resolves once the batch holding the event was acknowledged (or given up). */
  send(event: relay.RelayEvent): Promise<void> {
    this.pending.push(event);
    const delivered = new Promise<void>((resolve) => this.pendingWaiters.push(resolve));
    if (!this.isPumping) {
      this.isPumping = true;
      // Let the rest of this engine step's events join the batch.
      setImmediate(() => void this.pump());
    }
    return delivered;
  }

  close(): void {
    this.client.close();
  }

  private async pump(): Promise<void> {
    while (this.pending.length > 0) {
      const events = this.pending;
      const waiters = this.pendingWaiters;
      this.pending = [];
      this.pendingWaiters = [];
      await this.deliver(events);
      for (const resolve of waiters) resolve();
    }
    this.isPumping = false;
  }

  private async deliver(events: relay.RelayEvent[]): Promise<void> {
    const request: relay.DeliverRequest = { workerId: this.options.workerId, events };
    let response: relay.DeliverResponse;
    try {
      response = await this.callWithRetry(request);
    } catch (error) {
      const requestIds = [...new Set(events.map((e) => e.requestId))];
      this.options.log.warn({ err: error, gateway: this.options.address, requestIds }, 'relay failed; stopping its requests');
      this.options.onCancelRequested(requestIds);
      return;
    }
    this.options.recorder.record(tokenRuns(events));
    if (response.cancelRequestIds.length > 0) this.options.onCancelRequested(response.cancelRequestIds);
  }

  private async callWithRetry(request: relay.DeliverRequest): Promise<relay.DeliverResponse> {
    const giveUpAt = Date.now() + this.options.timeoutMs;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.call(request, giveUpAt);
      } catch (error) {
        const code = (error as ServiceError).code;
        const delayMs = FIRST_RETRY_DELAY_MS * 2 ** attempt;
        if (!RETRYABLE.has(code) || Date.now() + delayMs >= giveUpAt) throw error;
        await new Promise((resolve) => setTimeout(resolve, delayMs));
      }
    }
  }

  private call(request: relay.DeliverRequest, deadlineUnixMs: number): Promise<relay.DeliverResponse> {
    return new Promise((resolve, reject) => {
      this.client.deliver(request, new Metadata(), { deadline: deadlineUnixMs }, (error, response) =>
        error ? reject(error) : resolve(response),
      );
    });
  }
}

/** Per request, the consecutive token run a batch carries (events of one request are in index order). */
function tokenRuns(events: readonly relay.RelayEvent[]): DeliveredRun[] {
  const runs = new Map<string, { startIndex: number; tokenIds: number[] }>();
  for (const { requestId, event } of events) {
    if (event?.$case !== 'token') continue;
    const run = runs.get(requestId);
    if (run === undefined) runs.set(requestId, { startIndex: event.value.index, tokenIds: [event.value.tokenId] });
    else run.tokenIds.push(event.value.tokenId);
  }
  return [...runs].map(([requestId, run]) => ({ requestId, ...run }));
}
