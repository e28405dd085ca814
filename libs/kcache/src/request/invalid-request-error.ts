/**
 * A request is malformed. `field` names the offending field as clients spell it (e.g. `sampling.top_p`),
 * `reason` says what is wrong with it; the message is `field: reason`. Callers read the two parts, never
 * the message. Not retryable.
 */
export class InvalidRequestError extends Error {
  override readonly name: string = 'InvalidRequestError';
  constructor(
    readonly field: string,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`${field}: ${reason}`, options);
  }
}
