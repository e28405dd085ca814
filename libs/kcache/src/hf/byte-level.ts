/**
 * GPT-2's byte-level alphabet: every byte is one printable character. Bytes that are printable
 * Latin-1 ('!'..'~', '¡'..'¬', '®'..'ÿ') map to themselves; the other 68 map to U+0100, U+0101, …
 * in byte order (so ' ' is 'Ġ' and '\n' is 'Ċ').
 */
function buildByteToChar(): string[] {
  const isPrintable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const chars: string[] = [];
  let next = 0x100;
  for (let b = 0; b < 256; b++) chars.push(String.fromCodePoint(isPrintable(b) ? b : next++));
  return chars;
}

export const BYTE_TO_CHAR: readonly string[] = buildByteToChar();

const CHAR_TO_BYTE = new Map(BYTE_TO_CHAR.map((char, byte) => [char, byte]));

/** The bytes a byte-level token stands for, or null if it has a character outside the alphabet. */
export function byteLevelTokenBytes(token: string): Uint8Array | null {
  const chars = Array.from(token);
  const out = new Uint8Array(chars.length);
  for (let i = 0; i < chars.length; i++) {
    const byte = CHAR_TO_BYTE.get(chars[i]);
    if (byte === undefined) return null;
    out[i] = byte;
  }
  return out;
}
