/**
 * llama2.c's decode(prev, token) on raw piece bytes: after BOS one leading space is removed, and a
 * piece that sscanf matches as "<0x%02hhX>" (prefix "<0x", optional whitespace, 1-2 hex digits;
 * sign and "0x" forms are not handled) becomes that single byte.
 */
export function referenceDecodePiece(piece: Uint8Array, followsBos: boolean): Uint8Array {
  const stripped = followsBos && piece[0] === 0x20 ? piece.subarray(1) : piece;
  const byte = parseBytePiece(stripped);
  return byte === null ? stripped : new Uint8Array([byte]);
}

function parseBytePiece(piece: Uint8Array): number | null {
  if (piece[0] !== 0x3c || piece[1] !== 0x30 || piece[2] !== 0x78) return null; // "<0x"
  let i = 3;
  while (i < piece.length && isCSpace(piece[i])) i++;
  let value = 0;
  let digits = 0;
  for (; digits < 2 && i < piece.length; digits++, i++) {
    const digit = hexDigitValue(piece[i]);
    if (digit < 0) break;
    value = value * 16 + digit;
  }
  return digits > 0 ? value : null;
}

/**
 * llama2.c's safe_printf filter on a decoded piece: stops at the first NUL (it is a C string), prints
 * nothing for an empty piece or for a lone byte that is neither printable ASCII nor whitespace.
 */
export function referencePrintedBytes(piece: Uint8Array): Uint8Array {
  const nul = piece.indexOf(0);
  const printed = nul >= 0 ? piece.subarray(0, nul) : piece;
  if (printed.length === 1 && !isCPrint(printed[0]) && !isCSpace(printed[0])) return printed.subarray(0, 0);
  return printed;
}

function isCPrint(byte: number): boolean {
  return byte >= 0x20 && byte <= 0x7e;
}

function isCSpace(byte: number): boolean {
  return byte === 0x20 || (byte >= 0x09 && byte <= 0x0d);
}

function hexDigitValue(byte: number): number {
  if (byte >= 0x30 && byte <= 0x39) return byte - 0x30;
  if (byte >= 0x41 && byte <= 0x46) return byte - 0x41 + 10;
  if (byte >= 0x61 && byte <= 0x66) return byte - 0x61 + 10;
  return -1;
}

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  const total = parts.reduce((sum, part) => sum + part.length, 0);
  const joined = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    joined.set(part, offset);
    offset += part.length;
  }
  return joined;
}
