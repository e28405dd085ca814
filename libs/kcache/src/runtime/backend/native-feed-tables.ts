import type * as ort from 'onnxruntime-node';
import { NativeDtype, NativeMemory, NativeOrt, NativeTensor } from '../../ort-native/native-ort';
import { IO } from '../graph-io';
import { NativeProvider } from './native-kv-memory';

/** Inputs the provider's kernels read on the host (an operator's CPU input: TopK's k, PagedDecodeAttention's top_n). */
const READ_ON_HOST: ReadonlySet<string> = new Set([IO.topN]);

/**
 * The runner's small input tables (kept FeedBuffers slots) as addon tensors bound once per shape, so a run
 * binds nothing that did not change:
 * - cpu: the slot's own memory, read in place;
 * - cuda: a device copy, refreshed from the slot before each run (a cudaMemcpy of a few KiB each, and one wait for them all). Bound as host
 *   memory, every table would have to be bound again each step (onnxruntime copies a host input when it is
 *   bound). Not pinned host memory read in place: kernels such as Gather and Add read an index or mask value
 *   per output element, which over the bus made a ~110M step at batch 32 three times slower (measured on an
 *   H100). Tables read on the host (READ_ON_HOST) stay in the slot's memory.
 */
export class NativeFeedTables {
  private tables = new WeakMap<ort.Tensor, FeedTable>();
  /** cuda: each input's device buffer, grown as needed (a table changes shape every blockSize steps). */
  private readonly device = new Map<string, NativeMemory>();

  constructor(
    private readonly native: NativeOrt,
    private readonly provider: NativeProvider,
    private readonly deviceId: number,
    /**
     * Each shape of an input gets device memory of its own, never grown or moved (a CUDA graph captured for a shape
     * reads the addresses it was captured with); else one buffer per input, grown as needed.
     */
    private readonly bufferPerShape = false,
  ) {}

  /** The tensors to bind for `inputs`, their contents as the inputs' now. */
  tensorsFor(inputs: Readonly<Record<string, ort.Tensor>>): Record<string, NativeTensor> {
    const tensors: Record<string, NativeTensor> = {};
    let copied = false;
    for (const [name, tensor] of Object.entries(inputs)) {
      let table = this.tables.get(tensor);
      if (!table) {
        table = this.make(name, tensor);
        this.tables.set(tensor, table);
      }
      copied = table.refresh() || copied;
      tensors[name] = table.tensor;
    }
    if (copied) this.native.waitForCopies(); // one wait for every table's copy
    return tensors;
  }

  /** Frees the device copies now (a backend's release; else the garbage collector does it). */
  release(): void {
    for (const memory of this.device.values()) memory.release();
    this.device.clear();
    this.tables = new WeakMap();
  }

  private make(name: string, tensor: ort.Tensor): FeedTable {
    const data = tensor.data as ArrayBufferView;
    const dtype = tensor.type as NativeDtype;
    if (this.provider === 'cpu' || READ_ON_HOST.has(name) || data.byteLength === 0) {
      return { tensor: this.native.hostTensor(data, dtype, tensor.dims), refresh: () => false };
    }
    const key = this.bufferPerShape ? `${name}/${tensor.dims.join('x')}` : name;
    let memory = this.device.get(key);
    if (!memory || memory.bytes < data.byteLength) {
      memory = this.native.deviceMemory(Math.max(data.byteLength, this.bufferPerShape ? 0 : 2 * (memory?.bytes ?? 0), 256), this.deviceId);
      this.device.set(key, memory);
    }
    const target = memory;
    return {
      tensor: this.native.tensor(target, dtype, tensor.dims),
      refresh: () => {
        target.copy('toDevice', 0, data, false);
        return true;
      },
    };
  }
}

interface FeedTable {
  readonly tensor: NativeTensor;
  /** Brings the tensor's memory up to date with the slot's (cuda: a copy to the device, not waited for); true when it copied. */
  refresh(): boolean;
}
