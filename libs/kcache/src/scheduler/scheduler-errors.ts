/** A Scheduler or Sequence was built with options that can never work. */
export class SchedulerConfigError extends Error {
  override readonly name = 'SchedulerConfigError';
  constructor(
    message: string,
    readonly field: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** addSequence was given a requestId the scheduler already holds. */
export class DuplicateRequestError extends Error {
  override readonly name = 'DuplicateRequestError';
  constructor(
    readonly requestId: string,
    options?: { cause?: unknown },
  ) {
    super(`request '${requestId}' is already scheduled`, options);
  }
}
