/**
 * A request id that is already queued or running where the request was submitted: the gateway's queue,
 * an engine, or its scheduler. One error for all three; the gateway answers it with ALREADY_EXISTS.
 */
export class DuplicateRequestIdError extends Error {
  override readonly name = 'DuplicateRequestIdError';
  readonly field = 'request_id';
  constructor(
    readonly requestId: string,
    options?: { cause?: unknown },
  ) {
    super(`request_id: '${requestId}' is already in flight`, options);
  }
}
