import { isSameRelayCapability, relay } from '@kcache-serve/proto';
import { CapacityExceededError, GenerationFailedError, InvalidArgumentError, UnauthenticatedError } from '../errors/gateway-errors';
import { RequestStream } from './request-stream';

/** The client streams this gateway owns, by request id; applies what workers deliver. */
export class StreamRegistry {
  private readonly streams = new Map<string, RequestStream>();
  /** Capabilities (base64url) of recent jobs whose stream got the worker's finish or failure; oldest first. */
  private readonly endedByWorker = new Set<string>();

  get size(): number {
    return this.streams.size;
  }

  get(requestId: string): RequestStream | undefined {
    return this.streams.get(requestId);
  }

  add(stream: RequestStream): void {
    this.streams.set(stream.requestId, stream);
  }

  delete(stream: RequestStream): void {
    if (this.streams.get(stream.requestId) === stream) this.streams.delete(stream.requestId);
  }

  all(): RequestStream[] {
    return [...this.streams.values()];
  }

  /** Whether the job with this relay capability told its stream it is done (its job ends moments later). */
  wasEndedByWorker(relayCapability: string): boolean {
    return this.endedByWorker.has(relayCapability);
  }

  /**
   * Applies one Deliver batch in order. An event counts only if it carries the capability of the stream it
   * names: the job that holds the stream. Throws UnauthenticatedError, applying nothing, when an event
   * carries no capability at all. An event with another capability is dropped like one for an unknown
   * request (so the answer does not tell whether the id is in flight) and reported in refusedRequestIds.
   */
  dispatch(events: readonly relay.RelayEvent[]): DispatchOutcome {
    if (events.some((e) => e.capability.length === 0)) throw new UnauthenticatedError('relay events must carry their job\'s capability');
    const toCancel = new Set<string>();
    const refused = new Set<string>();
    for (const { requestId, event, capability } of events) {
      let stream = this.streams.get(requestId);
      if (stream !== undefined && !isSameRelayCapability(capability, stream.relayCapability)) {
        refused.add(requestId);
        stream = undefined;
      }
      if (stream === undefined || stream.isCancelRequested) {
        if (event?.$case === 'started' || event?.$case === 'token') toCancel.add(requestId);
        if (stream === undefined) continue;
      }
      switch (event?.$case) {
        case 'started':
          stream.markStarted();
          break;
        case 'token':
          stream.acceptToken(event.value);
          break;
        case 'finished':
          this.rememberEndedByWorker(stream);
          stream.finish(event.value.finishReason);
          break;
        case 'failed':
          this.rememberEndedByWorker(stream);
          stream.fail(errorOfFailure(event.value));
          break;
      }
    }
    return { cancelRequestIds: [...toCancel], refusedRequestIds: [...refused] };
  }

  private rememberEndedByWorker(stream: RequestStream): void {
    if (stream.ended) return;
    this.endedByWorker.add(Buffer.from(stream.relayCapability).toString('base64url'));
    if (this.endedByWorker.size > MAX_REMEMBERED_ENDINGS) this.endedByWorker.delete(this.endedByWorker.values().next().value!);
  }
}

/** Enough for the jobs that end within the few ms their workers take to complete them. */
const MAX_REMEMBERED_ENDINGS = 4096;

export interface DispatchOutcome {
  /** Requests the worker should stop (client gone, Cancel called, unknown here, or not its job's). */
  readonly cancelRequestIds: string[];
  /** Requests named by events whose capability was not their stream's. */
  readonly refusedRequestIds: string[];
}

function errorOfFailure(failure: relay.JobFailed): Error {
  switch (failure.kind) {
    case relay.FailureKind.FAILURE_KIND_INVALID_REQUEST:
      return new InvalidArgumentError(failure.field, failure.message);
    case relay.FailureKind.FAILURE_KIND_CAPACITY:
      return new CapacityExceededError(failure.message);
    default:
      return new GenerationFailedError(`generation failed: ${failure.message}`);
  }
}
