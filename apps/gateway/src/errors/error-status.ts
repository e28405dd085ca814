import { Metadata, ServiceError, status as Status } from '@grpc/grpc-js';
import {
  CapacityExceededError,
  ClientTooSlowError,
  GenerationFailedError,
  InvalidArgumentError,
  ModelNotFoundError,
  QueueFullError,
  QueueUnavailableError,
  RateLimitedError,
  DuplicateRequestIdError,
  RequestLostError,
  ShuttingDownError,
  UnauthenticatedError,
} from './gateway-errors';

/** Trailing metadata key (gRPC) carrying RateLimitedError's retry hint in ms; HTTP sends Retry-After (s). */
export const RETRY_AFTER_MS_METADATA_KEY = 'retry-after-ms';

/** The one place named errors become gRPC status codes. Anything unnamed is INTERNAL. */
export function grpcStatusOf(error: unknown): Status {
  if (error instanceof InvalidArgumentError) return Status.INVALID_ARGUMENT;
  if (error instanceof ModelNotFoundError) return Status.NOT_FOUND;
  if (error instanceof QueueFullError) return Status.RESOURCE_EXHAUSTED;
  if (error instanceof CapacityExceededError) return Status.RESOURCE_EXHAUSTED;
  if (error instanceof RateLimitedError) return Status.RESOURCE_EXHAUSTED;
  if (error instanceof ClientTooSlowError) return Status.RESOURCE_EXHAUSTED;
  if (error instanceof UnauthenticatedError) return Status.UNAUTHENTICATED;
  if (error instanceof QueueUnavailableError) return Status.UNAVAILABLE;
  if (error instanceof RequestLostError) return Status.UNAVAILABLE;
  if (error instanceof DuplicateRequestIdError) return Status.ALREADY_EXISTS;
  if (error instanceof ShuttingDownError) return Status.UNAVAILABLE;
  if (error instanceof GenerationFailedError) return Status.INTERNAL;
  return Status.INTERNAL;
}

/** The status the client sees; unnamed errors become a bare "internal error" (log them: isUnexpected). */
export function toServiceError(error: unknown): Partial<ServiceError> {
  const code = grpcStatusOf(error);
  const details = isUnexpected(error) ? 'internal error' : (error as Error).message;
  const metadata = new Metadata();
  if (error instanceof RateLimitedError) metadata.set(RETRY_AFTER_MS_METADATA_KEY, String(Math.ceil(error.retryAfterMs)));
  return Object.assign(new Error(details), { code, details, metadata });
}

/** An error no mapping names: a bug or an infrastructure failure, worth a log line with its stack. */
export function isUnexpected(error: unknown): boolean {
  return grpcStatusOf(error) === Status.INTERNAL && !(error instanceof GenerationFailedError);
}

/** For the HTTP API: the status a gRPC code stands for (as grpc-gateway maps them). */
export function httpStatusOf(code: Status): number {
  switch (code) {
    case Status.OK:
      return 200;
    case Status.INVALID_ARGUMENT:
      return 400;
    case Status.UNAUTHENTICATED:
      return 401;
    case Status.PERMISSION_DENIED:
      return 403;
    case Status.NOT_FOUND:
      return 404;
    case Status.ALREADY_EXISTS:
      return 409;
    case Status.RESOURCE_EXHAUSTED:
      return 429;
    case Status.CANCELLED:
      return 499;
    case Status.UNAVAILABLE:
      return 503;
    case Status.DEADLINE_EXCEEDED:
      return 504;
    default:
      return 500;
  }
}

export function statusName(code: Status): string {
  return Status[code] ?? String(code);
}
