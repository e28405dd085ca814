import type { InferenceSession } from 'onnxruntime-node';

/**
 * Where onnxruntime runs the engine's graphs.
 * - cpu: the default; bundled with onnxruntime-node.
 * - webgpu: bundled with onnxruntime-node on Linux x64 (Dawn); on Linux it runs through Vulkan, so it
 *   needs a GPU driver with a Vulkan ICD and libvulkan.so.1 (see docs/gpu.md).
 * - cuda: not bundled; onnxruntime-node must be installed with its CUDA files
 *   (`npm install onnxruntime-node --onnxruntime-node-install=cuda12`, or ONNXRUNTIME_NODE_INSTALL=cuda12),
 *   plus CUDA 12 and cuDNN 9 on the library path (or the CUDA 13 provider files; docs/gpu.md). Runs
 *   through the native backend (onnxruntime's C API, the kcache_ort addon) unless nativeBackend is false.
 */
export const EXECUTION_PROVIDERS = ['cpu', 'webgpu', 'cuda'] as const;

export type ExecutionProviderName = (typeof EXECUTION_PROVIDERS)[number];

/** The environment variable an app may read to pick the provider (see executionProviderFromEnv). */
export const EXECUTION_PROVIDER_ENV = 'KCACHE_EP';

export function isExecutionProvider(value: unknown): value is ExecutionProviderName {
  return typeof value === 'string' && (EXECUTION_PROVIDERS as readonly string[]).includes(value);
}

/** `value` as a provider name; throws a RangeError naming `source` (a flag or variable) otherwise. */
export function parseExecutionProvider(value: string, source: string): ExecutionProviderName {
  if (!isExecutionProvider(value)) {
    throw new RangeError(`${source} must be one of ${EXECUTION_PROVIDERS.join(', ')}, got '${value}'`);
  }
  return value;
}

/**
 * KCACHE_EP from an environment the caller passes (apps read process.env; the library takes typed
 * config), else cpu.
 */
export function executionProviderFromEnv(env: Readonly<Record<string, string | undefined>>): ExecutionProviderName {
  const value = env[EXECUTION_PROVIDER_ENV];
  return value === undefined || value === '' ? 'cpu' : parseExecutionProvider(value, EXECUTION_PROVIDER_ENV);
}

/**
 * Session options that select the provider. Empty for cpu, so CPU sessions are created exactly as
 * before (onnxruntime's default provider list is the CPU provider alone).
 * Nodes a GPU provider has no kernel for fall back to the CPU provider (onnxruntime inserts the copies).
 */
export function providerSessionOptions(provider: ExecutionProviderName): Pick<InferenceSession.SessionOptions, 'executionProviders'> {
  switch (provider) {
    case 'cpu':
      return {};
    case 'webgpu':
      return { executionProviders: [{ name: 'webgpu' }] };
    case 'cuda':
      return { executionProviders: [{ name: 'cuda', deviceId: 0 }] };
  }
}

/** A provider that could not start a session; the message says what is missing and keeps onnxruntime's own text. */
export class ExecutionProviderError extends Error {
  constructor(
    readonly provider: ExecutionProviderName,
    readonly detail: string,
  ) {
    super(`execution provider '${provider}' could not start: ${hintFor(provider, detail)} (onnxruntime: ${detail.trim()})`);
    this.name = 'ExecutionProviderError';
  }
}

function hintFor(provider: ExecutionProviderName, detail: string): string {
  if (provider === 'webgpu') {
    if (/adapter/i.test(detail)) {
      return 'no WebGPU adapter was found; on Linux the WebGPU provider needs a GPU, its driver\'s Vulkan ICD and libvulkan.so.1 (set VK_DRIVER_FILES to the ICD json if the loader does not find it; see docs/gpu.md)';
    }
    return 'the WebGPU provider failed to create the session';
  }
  if (provider === 'cuda') {
    if (/PagedDecodeAttention/.test(detail)) {
      return (
        "the PagedDecodeAttention operator's CUDA kernels (kcache_paged_attention_cuda.so) could not be used: build them with " +
        '`bash libs/kcache/scripts/build-native.sh` on a machine with nvcc (CUDA 12 or 13; they run on compute capability 8.0 and later), ' +
        'or run without them (pagedAttention: false, PAGED_ATTENTION=false in the worker)'
      );
    }
    if (/ERR_KCACHE_ORT_LOAD|addon .*(not built|does not load)|build-native/.test(detail)) {
      return "the native backend's onnxruntime addon is missing: run `bash libs/kcache/scripts/build-native.sh` (needs g++ and onnxruntime's C API headers, ORT_INCLUDE_DIR)";
    }
    if (/libcudart|CUDA runtime .*could not be opened/i.test(detail)) {
      return "the CUDA runtime libraries were not found: put CUDA's lib folder (libcudart.so.12 or .13, with cuBLAS and cuDNN 9) on LD_LIBRARY_PATH";
    }
    if (/driver|no CUDA-capable device|cudaErrorNoDevice/i.test(detail)) {
      return 'no usable GPU or driver: nvidia-smi should list the card, and the driver must support the CUDA version of the provider (12 or 13)';
    }
    if (/load|shared library|providers_shared|providers_cuda|cannot open/i.test(detail)) {
      return (
        "onnxruntime's CUDA provider files are not installed: reinstall onnxruntime-node with --onnxruntime-node-install=cuda12 " +
        '(or ONNXRUNTIME_NODE_INSTALL=cuda12) for CUDA 12, or put the CUDA 13 build of libonnxruntime_providers_cuda.so and ' +
        "libonnxruntime_providers_shared.so of the same onnxruntime version next to onnxruntime-node's libonnxruntime.so.1 (docs/gpu.md), " +
        'with the CUDA and cuDNN 9 libraries on LD_LIBRARY_PATH'
      );
    }
    return 'the CUDA provider failed to create the session';
  }
  return 'session creation failed';
}

/** Wraps a session-creation failure of a non-CPU provider in an ExecutionProviderError (CPU errors pass unchanged). */
export function providerError(provider: ExecutionProviderName, error: unknown): unknown {
  if (provider === 'cpu' || error instanceof ExecutionProviderError) return error;
  return new ExecutionProviderError(provider, error instanceof Error ? error.message : String(error));
}
