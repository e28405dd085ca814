/** Initial-metadata key of Generate responses carrying the request id (see generation.proto). */
export const REQUEST_ID_METADATA_KEY = 'kcache-request-id';
