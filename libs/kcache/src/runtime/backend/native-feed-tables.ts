import type * as ort from 'onnxruntime-node';
import { NativeDtype, NativeMemory, NativeOrt, NativeTensor } from '../../ort-native/native-ort';
import { IO } from '../graph-io';
import { NativeProvider } from './native-kv-memory';

/** Inputs the provider's kernels read on the host (an operator's CPU input: TopK's k, PagedDecodeAttention's top_n). */
const READ_ON_HOST: ReadonlySet<string> = new Set([IO.topN]);

/**
 * The runner's small input tables (kept FeedBuffers slots) as addon tensors that a run reads in place, so a
 * binding made once serves every later run of the same shape:
 * - cpu: the slot's own memory;
 * - cuda: a pinned, mapped host copy that the GPU kernels read over the bus, refreshed from the slot before
 *   each run (a few KiB). Bound as host memory instead, every table would be copied up by onnxruntime when bound,
 *   one synchronous copy per table per step. Tables read on the host (READ_ON_HOST) stay in the slot's memory.
 */
export class NativeFeedTables {
  private readonly tables = new WeakMap<ort.Tensor, FeedTable>();
  /** cuda: each input's pinned buffer, grown as needed (a table changes shape every blockSize steps; pinning memory is slow). */
  private readonly pinned = new Map<string, NativeMemory>();

  constructor(
    private readonly native: NativeOrt,
    private readonly provider: NativeProvider,
  ) {}

  /** The tensors to bind for `inputs`, their contents as the inputs' now. */
  tensorsFor(inputs: Readonly<Record<string, ort.Tensor>>): Record<string, NativeTensor> {
    const tensors: Record<string, NativeTensor> = {};
    for (const [name, tensor] of Object.entries(inputs)) {
      let table = this.tables.get(tensor);
      if (!table) {
        table = this.make(name, tensor);
        this.tables.set(tensor, table);
      }
      table.refresh();
      tensors[name] = table.tensor;
    }
    return tensors;
  }

  private make(name: string, tensor: ort.Tensor): FeedTable {
    const data = tensor.data as ArrayBufferView;
    const dtype = tensor.type as NativeDtype;
    if (this.provider === 'cpu' || READ_ON_HOST.has(name) || data.byteLength === 0) {
      return { tensor: this.native.hostTensor(data, dtype, tensor.dims), refresh: () => {} };
    }
    let memory = this.pinned.get(name);
    if (!memory || memory.bytes < data.byteLength) {
      memory = this.native.pinnedMemory(Math.max(data.byteLength, 2 * (memory?.bytes ?? 0), 256));
      this.pinned.set(name, memory);
    }
    const copy = new Uint8Array(memory.buffer!, 0, data.byteLength);
    const source = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    return { tensor: this.native.tensor(memory, dtype, tensor.dims), refresh: () => copy.set(source) };
  }
}

interface FeedTable {
  readonly tensor: NativeTensor;
  /** Brings the tensor's memory up to date with the slot's (cuda: a copy into pinned memory). */
  refresh(): void;
}
