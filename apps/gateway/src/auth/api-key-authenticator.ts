import { createHash, timingSafeEqual } from 'node:crypto';
import { UnauthenticatedError } from '../errors/gateway-errors';
import { ApiKey } from './api-key';
import { ANONYMOUS, Principal } from './principal';

const BEARER_PREFIX = /^Bearer[ \t]+/i;
/**
 * HTTP/2 (RFC 9113) drops a header value with leading or trailing whitespace before the gateway sees it,
 * so a key sent as `Bearer <key> ` arrives as no key at all: the message says so.
 */
const MISSING_KEY_MESSAGE = 'missing API key: send authorization: Bearer <key> (over HTTP/2 and gRPC a value with leading or trailing whitespace is dropped in transit)';
/** Longer values are refused before hashing. */
const MAX_KEY_LENGTH = 4096;

/**
 * Checks `authorization: Bearer <key>` (gRPC metadata or HTTP header) against the configured key hashes.
 * The presented key is hashed and compared with every configured hash in constant time, without early
 * exit, so the time taken says nothing about which bytes (or which key) matched.
 */
export class ApiKeyAuthenticator {
  /** keys: empty means auth is off and every call is ANONYMOUS. */
  constructor(private readonly keys: readonly ApiKey[]) {}

  get isEnabled(): boolean {
    return this.keys.length > 0;
  }

  /** The principal of a call, or UnauthenticatedError. `authorization` as received (undefined: absent). */
  authenticate(authorization: string | undefined): Principal {
    if (!this.isEnabled) return ANONYMOUS;
    if (authorization === undefined || authorization === '') throw new UnauthenticatedError(MISSING_KEY_MESSAGE);
    const match = BEARER_PREFIX.exec(authorization);
    if (match === null) throw new UnauthenticatedError('malformed authorization: expected Bearer <key>');
    const key = authorization.slice(match[0].length).trim();
    if (key.length === 0 || key.length > MAX_KEY_LENGTH) throw new UnauthenticatedError('invalid API key');
    const digest = createHash('sha256').update(key, 'utf8').digest();
    let found: ApiKey | null = null;
    for (const candidate of this.keys) {
      if (timingSafeEqual(digest, candidate.sha256) && found === null) found = candidate;
    }
    if (found === null) throw new UnauthenticatedError('invalid API key');
    return { name: found.name };
  }
}
