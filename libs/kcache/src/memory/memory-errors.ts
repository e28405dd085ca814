/** A pool (or a tier of pools) has too few free bytes for the requested blocks. Transient: retry after frees. */
export class OutOfBlocksError extends Error {
  override readonly name = 'OutOfBlocksError';
  constructor(
    message: string,
    readonly poolName: string,
    readonly requestedBytes: number,
    readonly freeBytes: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A block pool or KV cache manager was built with options that can never work. */
export class MemoryConfigError extends Error {
  override readonly name = 'MemoryConfigError';
  constructor(
    message: string,
    readonly field: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
