import { createHash } from 'node:crypto';

/** An accepted API key, known only by the sha256 of its UTF-8 bytes. */
export interface ApiKey {
  /** Shown in logs and metrics instead of the key; defaults to the hash's first 8 hex digits. */
  readonly name: string;
  /** 32 bytes. */
  readonly sha256: Buffer;
}

const HASH_PATTERN = /^[0-9a-f]{64}$/;
const NAME_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;

/** `[name:]sha256hex` entries, comma-separated. Throws naming the bad entry by position, never its text. */
export function parseApiKeyHashes(text: string): ApiKey[] {
  const entries = text.split(',').map((e) => e.trim()).filter((e) => e.length > 0);
  const keys = entries.map((entry, i) => {
    const colon = entry.lastIndexOf(':');
    const hex = (colon < 0 ? entry : entry.slice(colon + 1)).toLowerCase();
    const name = colon < 0 ? hex.slice(0, 8) : entry.slice(0, colon);
    if (!HASH_PATTERN.test(hex)) throw new Error(`entry ${i + 1} is not [name:]<64 hex digits of sha256>`);
    if (!NAME_PATTERN.test(name)) throw new Error(`entry ${i + 1} has a name that is not 1 to 64 characters of [A-Za-z0-9._-]`);
    return { name, sha256: Buffer.from(hex, 'hex') };
  });
  if (keys.length === 0) throw new Error('no entries');
  const names = new Set(keys.map((k) => k.name));
  if (names.size !== keys.length) throw new Error('two entries have the same name');
  return keys;
}

/** What API_KEY_HASHES holds for `key`. */
export function sha256Hex(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}
