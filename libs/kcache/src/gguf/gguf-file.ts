import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { ModelFormatError, ModelNotFoundError } from '../model/model-errors';

/**
 * GGUF (v2, v3), little-endian: "GGUF", u32 version, u64 tensor count, u64 metadata count, the
 * metadata key/values, the tensor infos (name, u32 n_dims, u64 dims innermost first, u32 type,
 * u64 offset), then tensor data from the next multiple of general.alignment (default 32).
 */
export type GgufValue = number | bigint | boolean | string | GgufArray;
export type GgufArray = readonly string[] | readonly boolean[] | Float32Array | Float64Array | Int32Array | Uint32Array | readonly number[] | readonly GgufArray[];

export interface GgufTensorInfo {
  readonly name: string;
  /** Innermost first, as stored (a PyTorch [out, in] matrix is [in, out] here). */
  readonly dims: readonly number[];
  readonly type: number;
  /** Absolute position in the file. */
  readonly byteOffset: number;
}

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32

export const GgmlType = { F32: 0, F16: 1, BF16: 30 } as const;

enum ValueType {
  U8 = 0,
  I8 = 1,
  U16 = 2,
  I16 = 3,
  U32 = 4,
  I32 = 5,
  F32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  U64 = 10,
  I64 = 11,
  F64 = 12,
}

/** Header of a GGUF file: metadata and tensor infos. Tensor data is read on demand. */
export class GgufFile {
  private constructor(
    readonly path: string,
    readonly version: number,
    readonly metadata: ReadonlyMap<string, GgufValue>,
    readonly tensors: ReadonlyMap<string, GgufTensorInfo>,
    readonly fileBytes: number,
  ) {}

  static read(path: string): GgufFile {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (error) {
      throw new ModelNotFoundError(`cannot open GGUF file ${path}`, { cause: error });
    }
    try {
      const fileBytes = fstatSync(fd).size;
      const cursor = new FileCursor(fd, fileBytes, path);
      if (cursor.u32() !== GGUF_MAGIC) throw new ModelFormatError(`${path}: not a GGUF file (bad magic)`);
      const version = cursor.u32();
      if (version !== 2 && version !== 3) throw new ModelFormatError(`${path}: GGUF version ${version} is not supported (2 or 3)`);
      const numTensors = cursor.count('tensor count');
      const numKeys = cursor.count('metadata count');
      const metadata = new Map<string, GgufValue>();
      for (let i = 0; i < numKeys; i++) {
        const key = cursor.string();
        metadata.set(key, readValue(cursor, cursor.u32()));
      }
      const infos: Array<Omit<GgufTensorInfo, 'byteOffset'> & { offset: number }> = [];
      for (let i = 0; i < numTensors; i++) {
        const name = cursor.string();
        const numDims = cursor.u32();
        if (numDims > 8) throw new ModelFormatError(`${path}: tensor ${name} has ${numDims} dimensions`);
        const dims = Array.from({ length: numDims }, () => cursor.count(`tensor ${name} dimension`));
        infos.push({ name, dims, type: cursor.u32(), offset: cursor.count(`tensor ${name} offset`) });
      }
      const alignment = metadata.get('general.alignment') ?? 32;
      if (typeof alignment !== 'number' || alignment <= 0) throw new ModelFormatError(`${path}: general.alignment must be a positive integer`);
      const dataStart = Math.ceil(cursor.position / alignment) * alignment;
      const tensors = new Map(infos.map(({ offset, ...info }) => [info.name, { ...info, byteOffset: dataStart + offset }]));
      return new GgufFile(path, version, metadata, tensors, fileBytes);
    } finally {
      closeSync(fd);
    }
  }

  /** Bytes [byteOffset, byteOffset + byteLength) of the file, checked against its size. */
  readBytes(byteOffset: number, byteLength: number, what: string): Uint8Array {
    if (byteOffset + byteLength > this.fileBytes) {
      throw new ModelFormatError(`${this.path}: truncated file: ${what} ends at byte ${byteOffset + byteLength}, the file has ${this.fileBytes}`);
    }
    const fd = openSync(this.path, 'r');
    try {
      const out = new Uint8Array(byteLength);
      let done = 0;
      while (done < byteLength) {
        const n = readSync(fd, out, done, byteLength - done, byteOffset + done);
        if (n === 0) throw new ModelFormatError(`${this.path}: unexpected end of file reading ${what}`);
        done += n;
      }
      return out;
    } finally {
      closeSync(fd);
    }
  }

  string(key: string): string | null {
    const value = this.metadata.get(key);
    return typeof value === 'string' ? value : null;
  }

  number(key: string): number | null {
    const value = this.metadata.get(key);
    return typeof value === 'number' ? value : null;
  }

  boolean(key: string): boolean | null {
    const value = this.metadata.get(key);
    return typeof value === 'boolean' ? value : null;
  }
}

function readValue(cursor: FileCursor, type: number): GgufValue {
  switch (type) {
    case ValueType.U8:
      return cursor.bytes(1)[0];
    case ValueType.I8:
      return cursor.view(1).getInt8(0);
    case ValueType.U16:
      return cursor.view(2).getUint16(0, true);
    case ValueType.I16:
      return cursor.view(2).getInt16(0, true);
    case ValueType.U32:
      return cursor.u32();
    case ValueType.I32:
      return cursor.view(4).getInt32(0, true);
    case ValueType.F32:
      return cursor.view(4).getFloat32(0, true);
    case ValueType.BOOL:
      return cursor.bytes(1)[0] !== 0;
    case ValueType.STRING:
      return cursor.string();
    case ValueType.U64:
    case ValueType.I64: {
      const value = type === ValueType.U64 ? cursor.view(8).getBigUint64(0, true) : cursor.view(8).getBigInt64(0, true);
      return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
    }
    case ValueType.F64:
      return cursor.view(8).getFloat64(0, true);
    case ValueType.ARRAY:
      return readArray(cursor);
    default:
      throw new ModelFormatError(`${cursor.source}: unknown GGUF value type ${type} at byte ${cursor.position - 4}`);
  }
}

function readArray(cursor: FileCursor): GgufArray {
  const type = cursor.u32();
  const length = cursor.count('array length');
  const typed = <T>(bytesEach: number, make: (buffer: ArrayBuffer) => T): T => {
    const bytes = cursor.bytes(length * bytesEach);
    return make(new Uint8Array(bytes).buffer); // copied: aligned at 0
  };
  switch (type) {
    case ValueType.F32:
      return typed(4, (b) => new Float32Array(b));
    case ValueType.I32:
      return typed(4, (b) => new Int32Array(b));
    case ValueType.U32:
      return typed(4, (b) => new Uint32Array(b));
    case ValueType.F64:
      return typed(8, (b) => new Float64Array(b));
    case ValueType.STRING:
      return Array.from({ length }, () => cursor.string());
    default: {
      const values: GgufValue[] = [];
      for (let i = 0; i < length; i++) values.push(readValue(cursor, type));
      return values as GgufArray;
    }
  }
}

/** Sequential reads from a file through a window buffer. */
class FileCursor {
  position = 0;
  private window = new Uint8Array(0);
  private windowStart = 0;
  private readonly utf8 = new TextDecoder('utf-8', { fatal: false });

  constructor(
    private readonly fd: number,
    private readonly fileBytes: number,
    readonly source: string,
  ) {}

  bytes(n: number): Uint8Array {
    if (this.position + n > this.fileBytes) {
      throw new ModelFormatError(`${this.source}: truncated GGUF header: needs byte ${this.position + n}, the file has ${this.fileBytes}`);
    }
    const start = this.position - this.windowStart;
    if (start + n > this.window.length) {
      const size = Math.min(Math.max(n, 1 << 20), this.fileBytes - this.position);
      this.window = new Uint8Array(size);
      readSync(this.fd, this.window, 0, size, this.position);
      this.windowStart = this.position;
    }
    const offset = this.position - this.windowStart;
    this.position += n;
    return this.window.subarray(offset, offset + n);
  }

  view(n: number): DataView {
    const b = this.bytes(n);
    return new DataView(b.buffer, b.byteOffset, n);
  }

  u32(): number {
    return this.view(4).getUint32(0, true);
  }

  /** A u64 used as a count or offset; must fit the file. */
  count(what: string): number {
    const value = this.view(8).getBigUint64(0, true);
    if (value > BigInt(this.fileBytes)) throw new ModelFormatError(`${this.source}: ${what} ${value} is larger than the file (corrupt header?)`);
    return Number(value);
  }

  string(): string {
    const length = this.count('string length');
    return this.utf8.decode(this.bytes(length));
  }
}
