import { DuplicateRequestIdError, InvalidRequestError } from '@kcache-serve/kcache/light';

/** A request with this client-chosen id is still in flight (the engine library's one error for it). */
export { DuplicateRequestIdError };

/**
 * Named errors at the gateway's edge. Each maps to one gRPC status in errors/error-status.ts (and from there
 * to an HTTP status); the message is what the client sees, `cause` keeps the origin.
 */

/**
 * Bad client input: the engine's InvalidRequestError as the gateway raises it, with the same two parts
 * (`field`, the request field's proto name such as `sampling.top_p`, and `reason`).
 */
export class InvalidArgumentError extends InvalidRequestError {
  override readonly name: string = 'InvalidArgumentError';
}

/** A request named a model this gateway does not serve. */
export class ModelNotFoundError extends Error {
  override readonly name = 'ModelNotFoundError';
  readonly field = 'model';
  constructor(requested: string, served: string) {
    super(`model: '${requested}' is not served here; this gateway serves '${served}' (GET /v1/models)`);
  }
}

/** A request set a field the gateway accepts only at its default (it would otherwise be ignored). */
export class UnsupportedParameterError extends InvalidArgumentError {
  override readonly name = 'UnsupportedParameterError';
}

/** MAX_QUEUED_REQUESTS requests are already waiting for a worker. */
export class QueueFullError extends Error {
  override readonly name = 'QueueFullError';
  constructor(numQueued: number) {
    super(`queue full: ${numQueued} requests are waiting for a worker; retry later`);
  }
}

/** The request cannot fit a worker's KV memory, even alone. */
export class CapacityExceededError extends Error {
  override readonly name = 'CapacityExceededError';
}

/** A worker failed the request for a reason of its own. */
export class GenerationFailedError extends Error {
  override readonly name = 'GenerationFailedError';
}

/** The gateway is shutting down and takes no new requests. */
export class ShuttingDownError extends Error {
  override readonly name = 'ShuttingDownError';
  constructor() {
    super('the gateway is shutting down; retry on another instance');
  }
}

/** No valid API key came with the call. */
export class UnauthenticatedError extends Error {
  override readonly name = 'UnauthenticatedError';
}

/** A per-key limit (concurrent streams, tokens per minute) is reached; retrying after retryAfterMs may succeed. */
export class RateLimitedError extends Error {
  override readonly name = 'RateLimitedError';
  constructor(
    message: string,
    readonly retryAfterMs: number,
  ) {
    super(`${message}; retry in ${Math.ceil(retryAfterMs / 1000)} s`);
  }
}

/** Redis (the queue) cannot be reached now; nothing was queued. */
export class QueueUnavailableError extends Error {
  override readonly name = 'QueueUnavailableError';
}

/** The request's job vanished from the queue (Redis lost it) before it finished. */
export class RequestLostError extends Error {
  override readonly name = 'RequestLostError';
}

/** The client read too slowly: its stream was cut to keep the gateway's buffers bounded. */
export class ClientTooSlowError extends Error {
  override readonly name = 'ClientTooSlowError';
}
