import { relay } from '@kcache-serve/proto';
import { CapacityExceededError, GenerationFailedError, InvalidArgumentError } from './gateway-errors';
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

  /** Applies one Deliver batch in order; returns the requests the worker should stop. */
  dispatch(events: readonly relay.RelayEvent[]): string[] {
    const toCancel = new Set<string>();
    for (const { requestId, event } of events) {
      const stream = this.streams.get(requestId);
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
    return [...toCancel];
  }
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
