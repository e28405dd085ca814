/** The request can never fit this engine's memory tiers, even running alone. */
export class CapacityError extends Error {
  override readonly name = 'CapacityError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export { DuplicateRequestIdError } from '../request/duplicate-request-id-error';

/** The engine is closing or closed and takes no new requests. */
export class EngineClosedError extends Error {
  override readonly name = 'EngineClosedError';
  constructor() {
    super('the engine is shutting down and takes no new requests');
  }
}
