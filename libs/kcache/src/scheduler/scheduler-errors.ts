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
