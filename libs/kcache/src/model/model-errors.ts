/** A checkpoint (or model spec) whose bytes or header do not describe a valid model. */
export class ModelFormatError extends Error {
  override readonly name = 'ModelFormatError';
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

/** A model file or folder that was looked for and not found. */
export class ModelNotFoundError extends Error {
  override readonly name = 'ModelNotFoundError';
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

/** A model file whose sha256 is not the pinned one. */
export class ModelChecksumError extends Error {
  override readonly name = 'ModelChecksumError';
  constructor(
    readonly file: string,
    readonly expectedSha256: string,
    readonly actualSha256: string,
    options?: ErrorOptions,
  ) {
    super(`${file}: sha256 mismatch: expected ${expectedSha256}, got ${actualSha256}`, options);
  }
}

/** A model download that failed (HTTP status, network error or wrong length). */
export class ModelDownloadError extends Error {
  override readonly name = 'ModelDownloadError';
  constructor(
    readonly url: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(`download of ${url} failed: ${message}`, options);
  }
}
