import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { ModelFormatError, ModelNotFoundError } from '../model/model-errors';
import { bf16ToFloat32, float16ToFloat32, float32ToBf16 } from './float-formats';

/**
 * safetensors: u64 little-endian header length N, N bytes of JSON
 * `{ name: { dtype, shape, data_offsets: [begin, end] }, "__metadata__"?: { string: string } }`,
 * then the data; offsets count from the end of the header.
 */
export type SafetensorsDtype = 'F32' | 'F16' | 'BF16';

const BYTES_PER_ELEMENT: Record<SafetensorsDtype, number> = { F32: 4, F16: 2, BF16: 2 };
/** Guards against reading a huge "header" out of a file that is not safetensors. */
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

export interface SafetensorsTensorInfo {
  readonly name: string;
  readonly dtype: SafetensorsDtype;
  readonly shape: readonly number[];
  /** Absolute position in the file. */
  readonly byteOffset: number;
  readonly byteLength: number;
}

/** An open safetensors file whose header has been validated; tensors are read one at a time. */
export class SafetensorsFile {
  private constructor(
    readonly path: string,
    private readonly fd: number,
    readonly tensors: ReadonlyMap<string, SafetensorsTensorInfo>,
    readonly metadata: Readonly<Record<string, string>>,
  ) {}

  static open(path: string): SafetensorsFile {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (error) {
      throw new ModelNotFoundError(`cannot open safetensors file ${path}`, { cause: error });
    }
    try {
      const fileBytes = fstatSync(fd).size;
      const prefix = readExactly(fd, 0, Math.min(8, fileBytes));
      const headerBytes = readHeaderLength(prefix, fileBytes, path);
      const header = readExactly(fd, 8, headerBytes);
      const { tensors, metadata } = parseSafetensorsHeader(header, fileBytes - 8 - headerBytes, 8 + headerBytes, path);
      return new SafetensorsFile(path, fd, tensors, metadata);
    } catch (error) {
      closeSync(fd);
      throw error;
    }
  }

  /** The tensor converted to fp32 (a fresh, aligned array). */
  readFloat32(name: string): Float32Array {
    const info = this.tensors.get(name);
    if (!info) throw new ModelFormatError(`${this.path}: no tensor ${name}`);
    const bytes = readExactly(this.fd, info.byteOffset, info.byteLength);
    return toFloat32(bytes, info.dtype);
  }

  close(): void {
    closeSync(this.fd);
  }
}

function readHeaderLength(prefix: Uint8Array, fileBytes: number, source: string): number {
  if (prefix.length < 8) {
    throw new ModelFormatError(`${source}: truncated safetensors file: ${fileBytes} bytes, less than the 8-byte header length`);
  }
  const length = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (length > BigInt(Math.min(MAX_HEADER_BYTES, fileBytes - 8))) {
    throw new ModelFormatError(
      `${source}: truncated or invalid safetensors header: it claims ${length} bytes, the file has ${fileBytes - 8} after the length field`,
    );
  }
  return Number(length);
}

/** Validates every entry: known dtype, integer shape, offsets inside the data and matching the shape. */
export function parseSafetensorsHeader(
  header: Uint8Array,
  dataBytes: number,
  dataStart: number,
  source: string,
): { tensors: Map<string, SafetensorsTensorInfo>; metadata: Record<string, string> } {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(header));
  } catch (error) {
    throw new ModelFormatError(`${source}: safetensors header is not valid UTF-8 JSON (truncated or corrupt file?)`, { cause: error });
  }
  if (!isObject(json)) throw new ModelFormatError(`${source}: safetensors header is not a JSON object`);
  const tensors = new Map<string, SafetensorsTensorInfo>();
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(json)) {
    if (name === '__metadata__') {
      metadata = isObject(entry) ? (entry as Record<string, string>) : {};
      continue;
    }
    if (!isObject(entry)) throw new ModelFormatError(`${source}: tensor ${name}: header entry is not an object`);
    const { dtype, shape, data_offsets: offsets } = entry as { dtype: unknown; shape: unknown; data_offsets: unknown };
    if (typeof dtype !== 'string' || !(dtype in BYTES_PER_ELEMENT)) {
      throw new ModelFormatError(
        `${source}: tensor ${name} has dtype ${JSON.stringify(dtype)}, not supported (supported: ${Object.keys(BYTES_PER_ELEMENT).join(', ')})`,
      );
    }
    if (!Array.isArray(shape) || !shape.every((n) => Number.isSafeInteger(n) && n >= 0)) {
      throw new ModelFormatError(`${source}: tensor ${name} has shape ${JSON.stringify(shape)}, expected non-negative integers`);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((n) => Number.isSafeInteger(n) && n >= 0)) {
      throw new ModelFormatError(`${source}: tensor ${name} has data_offsets ${JSON.stringify(offsets)}, expected [begin, end]`);
    }
    const [begin, end] = offsets as number[];
    const expectedBytes = shape.reduce((a: number, b: number) => a * b, 1) * BYTES_PER_ELEMENT[dtype as SafetensorsDtype];
    if (end - begin !== expectedBytes) {
      throw new ModelFormatError(
        `${source}: tensor ${name} (${dtype} [${shape}]) needs ${expectedBytes} bytes, data_offsets [${begin}, ${end}] hold ${end - begin}`,
      );
    }
    if (end > dataBytes) {
      throw new ModelFormatError(`${source}: truncated file: tensor ${name} ends at data byte ${end}, the file holds ${dataBytes} data bytes`);
    }
    tensors.set(name, { name, dtype: dtype as SafetensorsDtype, shape, byteOffset: dataStart + begin, byteLength: expectedBytes });
  }
  return { tensors, metadata };
}

export interface TensorToWrite {
  readonly name: string;
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

/** A safetensors file of the given tensors, stored as `dtype` (BF16 rounds to nearest even). */
export function serializeSafetensors(
  tensors: readonly TensorToWrite[],
  options: { readonly dtype?: 'F32' | 'BF16'; readonly metadata?: Record<string, string> } = {},
): Uint8Array {
  const dtype = options.dtype ?? 'F32';
  const header: Record<string, unknown> = { __metadata__: options.metadata ?? { format: 'pt' } };
  let offset = 0;
  for (const t of tensors) {
    const numel = t.shape.reduce((a, b) => a * b, 1);
    if (numel !== t.data.length) throw new ModelFormatError(`serializeSafetensors: ${t.name} has ${t.data.length} values for shape [${t.shape}]`);
    const byteLength = numel * BYTES_PER_ELEMENT[dtype];
    header[t.name] = { dtype, shape: t.shape, data_offsets: [offset, offset + byteLength] };
    offset += byteLength;
  }
  // The data starts 8-byte aligned, as the reference writer pads the header with spaces.
  let headerText = JSON.stringify(header);
  headerText += ' '.repeat((8 - ((8 + Buffer.byteLength(headerText)) % 8)) % 8);
  const headerBytes = new TextEncoder().encode(headerText);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let cursor = 8 + headerBytes.length;
  for (const t of tensors) {
    const bytes = dtype === 'F32' ? new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength) : float32ToBf16(t.data);
    out.set(bytes, cursor);
    cursor += bytes.length;
  }
  return out;
}

function toFloat32(bytes: Uint8Array, dtype: SafetensorsDtype): Float32Array {
  if (dtype === 'F32') return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  const halves = new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2);
  return dtype === 'BF16' ? bf16ToFloat32(halves) : float16ToFloat32(halves);
}

/** A fresh buffer (offset 0, so any typed view is aligned) holding bytes [position, position + length). */
function readExactly(fd: number, position: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const n = readSync(fd, out, done, length - done, position + done);
    if (n === 0) break;
    done += n;
  }
  if (done !== length) throw new ModelFormatError(`unexpected end of file reading ${length} bytes at ${position}`);
  return out;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
