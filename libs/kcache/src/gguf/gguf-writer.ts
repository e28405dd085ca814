import { GGUF_MAGIC, GgmlType } from './gguf-file';

/** A metadata value with its GGUF type. */
export type GgufMetadataValue =
  | { readonly type: 'u32' | 'i32' | 'f32'; readonly value: number }
  | { readonly type: 'bool'; readonly value: boolean }
  | { readonly type: 'string'; readonly value: string }
  | { readonly type: 'strings'; readonly value: readonly string[] }
  | { readonly type: 'f32s' | 'i32s'; readonly value: ArrayLike<number> };

export interface GgufTensorToWrite {
  readonly name: string;
  /** Innermost first (a PyTorch [out, in] matrix is [in, out]). */
  readonly dims: readonly number[];
  readonly data: Float32Array;
}

const ALIGNMENT = 32;
const TYPE_CODE = { u32: 4, i32: 5, f32: 6, bool: 7, string: 8, array: 9 } as const;

/** A GGUF v3 file of F32 tensors, laid out as llama.cpp's gguf writer does. */
export function serializeGguf(metadata: ReadonlyMap<string, GgufMetadataValue>, tensors: readonly GgufTensorToWrite[]): Uint8Array {
  const out = new ByteSink();
  out.u32(GGUF_MAGIC);
  out.u32(3);
  out.u64(tensors.length);
  out.u64(metadata.size);
  for (const [key, entry] of metadata) {
    out.string(key);
    writeValue(out, entry);
  }
  let offset = 0;
  const offsets: number[] = [];
  for (const t of tensors) {
    out.string(t.name);
    out.u32(t.dims.length);
    for (const dim of t.dims) out.u64(dim);
    out.u32(GgmlType.F32);
    out.u64(offset);
    offsets.push(offset);
    offset = align(offset + t.data.byteLength);
  }
  out.pad(align(out.length) - out.length);
  const dataStart = out.length;
  const bytes = new Uint8Array(dataStart + offset);
  bytes.set(out.bytes(), 0);
  tensors.forEach((t, i) => bytes.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), dataStart + offsets[i]));
  return bytes;
}

function writeValue(out: ByteSink, entry: GgufMetadataValue): void {
  switch (entry.type) {
    case 'u32':
    case 'i32':
    case 'f32':
      out.u32(TYPE_CODE[entry.type]);
      out.scalar(entry.type, entry.value);
      return;
    case 'bool':
      out.u32(TYPE_CODE.bool);
      out.u8(entry.value ? 1 : 0);
      return;
    case 'string':
      out.u32(TYPE_CODE.string);
      out.string(entry.value);
      return;
    case 'strings':
      out.u32(TYPE_CODE.array);
      out.u32(TYPE_CODE.string);
      out.u64(entry.value.length);
      for (const s of entry.value) out.string(s);
      return;
    case 'f32s':
    case 'i32s': {
      const elementType = entry.type === 'f32s' ? 'f32' : 'i32';
      out.u32(TYPE_CODE.array);
      out.u32(TYPE_CODE[elementType]);
      out.u64(entry.value.length);
      for (let i = 0; i < entry.value.length; i++) out.scalar(elementType, entry.value[i]);
      return;
    }
  }
}

function align(n: number): number {
  return Math.ceil(n / ALIGNMENT) * ALIGNMENT;
}

/** A growable little-endian byte buffer. */
class ByteSink {
  private buffer = new Uint8Array(1 << 16);
  private view = new DataView(this.buffer.buffer);
  length = 0;

  private reserve(n: number): void {
    if (this.length + n <= this.buffer.length) return;
    const grown = new Uint8Array(Math.max(this.buffer.length * 2, this.length + n));
    grown.set(this.buffer.subarray(0, this.length));
    this.buffer = grown;
    this.view = new DataView(grown.buffer);
  }

  u8(v: number): void {
    this.reserve(1);
    this.buffer[this.length++] = v;
  }

  u32(v: number): void {
    this.reserve(4);
    this.view.setUint32(this.length, v, true);
    this.length += 4;
  }

  u64(v: number): void {
    this.reserve(8);
    this.view.setBigUint64(this.length, BigInt(v), true);
    this.length += 8;
  }

  scalar(type: 'u32' | 'i32' | 'f32', v: number): void {
    this.reserve(4);
    if (type === 'u32') this.view.setUint32(this.length, v, true);
    else if (type === 'i32') this.view.setInt32(this.length, v, true);
    else this.view.setFloat32(this.length, v, true);
    this.length += 4;
  }

  string(s: string): void {
    const bytes = new TextEncoder().encode(s);
    this.u64(bytes.length);
    this.reserve(bytes.length);
    this.buffer.set(bytes, this.length);
    this.length += bytes.length;
  }

  pad(n: number): void {
    this.reserve(n);
    this.length += n; // the buffer is zero-filled
  }

  bytes(): Uint8Array {
    return this.buffer.subarray(0, this.length);
  }
}
