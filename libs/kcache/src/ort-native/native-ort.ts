import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { NativeOrtError, nativeOrtError } from './native-ort-error';

/**
 * The typed face of libs/kcache/native/kcache_ort.cc: onnxruntime's C API with IO binding over memory
 * the engine owns, the CUDA provider, and GPU-visible memory. Runs are synchronous.
 */
export type NativeDtype = 'float32' | 'float16' | 'int64' | 'int32' | 'uint16' | 'uint8' | 'bool' | 'float64';

/**
 * Where a buffer lives:
 * - host: a JavaScript ArrayBuffer, as it is (CPU provider inputs and outputs, or small tables a GPU
 *   provider copies up itself).
 * - device: GPU memory (cudaMalloc); read and written with copy().
 * - pinned: pinned, mapped host memory (cudaHostAlloc); `buffer` is an ArrayBuffer over it, and the GPU's
 *   kernels read it in place over the bus.
 * - registered: a JavaScript ArrayBuffer (an mmap of /dev/shm, say) registered with the GPU in place
 *   (cudaHostRegister); read in place like pinned memory.
 */
export type MemoryKind = 'host' | 'device' | 'pinned' | 'registered';

export interface NativeMemory {
  readonly kind: MemoryKind;
  readonly bytes: number;
  /** The host side (host, pinned, registered); undefined for device memory. */
  readonly buffer: ArrayBuffer | undefined;
  /**
   * Copies between `view` and the memory at byteOffset (cudaMemcpy for device memory). A copy to device memory waits
   * until its bytes have landed, unless `wait` is false: then NativeOrt.waitForCopies must come before they are read.
   */
  copy(direction: 'toDevice' | 'fromDevice', byteOffset: number, view: ArrayBufferView, wait?: boolean): void;
  fill(byteOffset: number, bytes: number, value: number): void;
  /** Frees device memory / unregisters registered memory now (else the garbage collector does it). */
  release(): void;
}

/** A tensor over memory: dims and dtype at a byte offset. Bound to a session by name. */
export type NativeTensor = { readonly __nativeTensor: unique symbol };

export interface NativeSessionOptions {
  provider: 'cpu' | 'cuda';
  deviceId?: number;
  intraOpNumThreads?: number;
  logSeverityLevel?: number;
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  /** CUDA provider options (strings, as onnxruntime takes them); device_id and use_tf32=0 are set already. */
  cudaOptions?: Readonly<Record<string, string>>;
  /** onnxruntime session config entries (AddSessionConfigEntry). */
  sessionConfig?: Readonly<Record<string, string>>;
  /** onnxruntime's per-node profile (JSON), written under this file prefix when the session ends it (endProfiling). */
  profileFilePrefix?: string;
  /**
   * Registers the com.kcache PagedDecodeAttention operator (native/paged_attention_op.cc): its CPU kernel, and on
   * cuda its CUDA kernels from pagedAttentionCudaLibrary (default PAGED_ATTENTION_CUDA_LIBRARY_PATH).
   */
  pagedAttention?: boolean;
  pagedAttentionCudaLibrary?: string;
}

export interface NativeSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  /**
   * Binds tensors to inputs and outputs by name; they stay bound across runs until rebound or cleared.
   * On the CPU provider every bound buffer is read and written in place. On a GPU provider, an input in
   * host memory is copied to the device when it is bound (onnxruntime's IO binding): bind it again after
   * changing it. Device, pinned and registered memory is read in place on every run.
   */
  bind(inputs: Readonly<Record<string, NativeTensor>>, outputs?: Readonly<Record<string, NativeTensor>>): void;
  clear(): void;
  /**
   * One run over the bound tensors; returns when the outputs are written. graphId: with a CUDA session made with
   * cudaOptions enable_cuda_graph '1', onnxruntime's gpu_graph_id: each id captures a CUDA graph on its first runs and
   * replays it after, so its shapes and every bound tensor's address must stay the same from run to run.
   */
  run(graphId?: number): void;
  /** Ends the profile of a session made with profileFilePrefix; returns the JSON file's path. */
  endProfiling(): string;
  release(): void;
}

interface Addon {
  init(libPath: string): string;
  waitForCopies(): void;
  Memory: new (kind: MemoryKind | 'pinned-huge', sizeOrBuffer: number | ArrayBuffer, deviceId?: number) => NativeMemory;
  Tensor: new (memory: NativeMemory, dtype: NativeDtype, dims: readonly number[], byteOffset: number) => NativeTensor;
  Session: new (model: Uint8Array, options: NativeSessionOptions) => NativeSession;
}

/** dist/ort-native → libs/kcache/native/build/Release. */
export const NATIVE_ORT_ADDON_PATH = join(__dirname, '..', '..', 'native', 'build', 'Release', 'kcache_ort.node');

/** The CUDA kernels of the PagedDecodeAttention operator (built by build-native.sh where nvcc is found), beside the addon. */
export const PAGED_ATTENTION_CUDA_LIBRARY_PATH = join(dirname(NATIVE_ORT_ADDON_PATH), 'kcache_paged_attention_cuda.so');

/** Whether build-native.sh built the PagedDecodeAttention CUDA kernels (it does where nvcc is found). */
export function pagedAttentionCudaKernelsBuilt(): boolean {
  return existsSync(PAGED_ATTENTION_CUDA_LIBRARY_PATH);
}

/** onnxruntime-node's own libonnxruntime.so.1, which its JavaScript binding loads: the process keeps one onnxruntime. */
export function onnxruntimeLibraryPath(): string {
  const root = dirname(require.resolve('onnxruntime-node/package.json'));
  return join(root, 'bin', 'napi-v6', process.platform, process.arch, 'libonnxruntime.so.1');
}

/** onnxruntime's C API through the addon: memory, tensors, sessions. */
export class NativeOrt {
  private constructor(
    private readonly addon: Addon,
    /** onnxruntime's version string, as the library reports it. */
    readonly version: string,
    /** The library whose provider files the CUDA provider is loaded from (they sit beside it). */
    readonly libraryPath: string,
  ) {}

  private static loaded: NativeOrt | null = null;

  /** The addon, loaded and initialized once. Throws NativeOrtError saying how to build or install what is missing. */
  static load(): NativeOrt {
    if (NativeOrt.loaded) return NativeOrt.loaded;
    if (process.platform !== 'linux') throw new NativeOrtError(`the onnxruntime C API addon is built for Linux; this is ${process.platform}`, 'ERR_KCACHE_ORT_LOAD');
    if (!existsSync(NATIVE_ORT_ADDON_PATH)) {
      throw new NativeOrtError(
        `the onnxruntime C API addon is not built (${NATIVE_ORT_ADDON_PATH} is missing): run ` +
          '`bash libs/kcache/scripts/build-native.sh` (needs python3, make, g++ and onnxruntime C API headers: ORT_INCLUDE_DIR)',
        'ERR_KCACHE_ORT_LOAD',
      );
    }
    let addon: Addon;
    try {
      addon = require(NATIVE_ORT_ADDON_PATH) as Addon;
    } catch (error) {
      throw new NativeOrtError(`the addon ${NATIVE_ORT_ADDON_PATH} does not load; rebuild it with \`bash libs/kcache/scripts/build-native.sh\``, 'ERR_KCACHE_ORT_LOAD', { cause: error });
    }
    const libraryPath = onnxruntimeLibraryPath();
    let version: string;
    try {
      version = addon.init(libraryPath);
    } catch (error) {
      throw nativeOrtError(error);
    }
    NativeOrt.loaded = new NativeOrt(addon, version, libraryPath);
    return NativeOrt.loaded;
  }

  /** Waits for the copies to device memory made with `wait` false (NativeMemory.copy). */
  waitForCopies(): void {
    this.call(() => this.addon.waitForCopies());
  }

  /** A JavaScript buffer as host memory (no copy; the memory keeps the buffer alive). */
  hostMemory(buffer: ArrayBuffer): NativeMemory {
    return this.call(() => new this.addon.Memory('host', buffer));
  }

  deviceMemory(bytes: number, deviceId = 0): NativeMemory {
    return this.call(() => new this.addon.Memory('device', bytes, deviceId));
  }

  /**
   * Pinned, mapped host memory, zero-filled; `buffer` is its JavaScript view. hugePages: an anonymous mapping in
   * transparent huge pages (2 MiB where the kernel grants them) registered with the GPU, instead of cudaHostAlloc,
   * so the GPU translates fewer pages when it reads rows scattered over gigabytes.
   */
  pinnedMemory(bytes: number, options: { readonly hugePages?: boolean } = {}): NativeMemory {
    return this.call(() => new this.addon.Memory(options.hugePages ? 'pinned-huge' : 'pinned', bytes));
  }

  /** `buffer`'s memory registered with the GPU in place (page-aligned memory such as an mmap). */
  registeredMemory(buffer: ArrayBuffer, deviceId = 0): NativeMemory {
    return this.call(() => new this.addon.Memory('registered', buffer, deviceId));
  }

  tensor(memory: NativeMemory, dtype: NativeDtype, dims: readonly number[], byteOffset = 0): NativeTensor {
    return this.call(() => new this.addon.Tensor(memory, dtype, dims, byteOffset));
  }

  /** A tensor over a typed array's own bytes (host memory). */
  hostTensor(view: ArrayBufferView, dtype: NativeDtype, dims: readonly number[]): NativeTensor {
    return this.tensor(this.hostMemory(view.buffer as ArrayBuffer), dtype, dims, view.byteOffset);
  }

  session(model: Uint8Array, options: NativeSessionOptions): NativeSession {
    const withKernels =
      options.pagedAttention && options.provider === 'cuda' && options.pagedAttentionCudaLibrary === undefined
        ? { ...options, pagedAttentionCudaLibrary: PAGED_ATTENTION_CUDA_LIBRARY_PATH }
        : options;
    return this.call(() => new this.addon.Session(model, withKernels));
  }

  private call<T>(make: () => T): T {
    try {
      return make();
    } catch (error) {
      throw nativeOrtError(error);
    }
  }
}
