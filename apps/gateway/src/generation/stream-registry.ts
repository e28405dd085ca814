import { isSameRelayCapability, relay } from '@kcache-serve/proto';
import { CapacityExceededError, GenerationFailedError, InvalidArgumentError, UnauthenticatedError } from './gateway-errors';
import { RequestStream } from './request-stream';

/** The client streams this gateway owns, by request id; applies what workers deliver. */
export class StreamRegistry {
  private readonly streams = new Map<string, RequestStream>();

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
          stream.finish(event.value.finishReason);
          break;
        case 'failed':
          stream.fail(errorOfFailure(event.value));
          break;
      }
    }
    return { cancelRequestIds: [...toCancel], refusedRequestIds: [...refused] };
  }
}

export interface DispatchOutcome {
  /** Requests the worker should stop (client gone, Cancel called, unknown here, or not its job's). */
  readonly cancelRequestIds: string[];
  /** Requests named by events whose capability was not their stream's. */
  readonly refusedRequestIds: string[];
}

function errorOfFailure(failure: relay.JobFailed): Error {
  switch (failure.kind) {
    case relay.FailureKind.FAILURE_KIND_INVALID_REQUEST:
      return new InvalidArgumentError(failure.field, failure.message.replace(`${failure.field}: `, ''));
    case relay.FailureKind.FAILURE_KIND_CAPACITY:
      return new CapacityExceededError(failure.message);
    default:
      return new GenerationFailedError(`generation failed: ${failure.message}`);
  }
}
