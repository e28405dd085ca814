/** Options that can never work (capacity 0, a block size the file does not have...). Fix the configuration. */
export class HostTierConfigError extends Error {
  override readonly name = 'HostTierConfigError';
  constructor(
    message: string,
    readonly field: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The addon that maps shared memory is not built or cannot load here. The in-process host tier still works. */
export class HostTierUnavailableError extends Error {
  override readonly name = 'HostTierUnavailableError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** The tier's file is not a host tier of this layout: foreign, corrupt, truncated or made for another model shape. */
export class HostTierFormatError extends Error {
  override readonly name = 'HostTierFormatError';
  constructor(
    message: string,
    readonly path: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The tier's directory (a tmpfs or disk) has no room for the tier's file, or every worker slot is taken. */
export class HostTierSpaceError extends Error {
  override readonly name = 'HostTierSpaceError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/**
 * This worker's lease ran out (it was stopped, or paused longer than the lease) and the other
 * workers reclaimed its blocks. Its sequences' host-tier contents can no longer be trusted.
 */
export class HostTierLeaseLostError extends Error {
  override readonly name = 'HostTierLeaseLostError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
