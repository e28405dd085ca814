/** The onnxruntime C API addon could not do what was asked; the message names what to install or fix. */
export class NativeOrtError extends Error {
  constructor(
    message: string,
    /** The addon's code: ERR_KCACHE_ORT_LOAD, ERR_KCACHE_CUDA_RUNTIME, ORT_<n> (onnxruntime's OrtErrorCode), … */
    readonly code: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'NativeOrtError';
  }
}

/** A thrown addon error as a NativeOrtError whose message says what to install (the addon's text is kept). */
export function nativeOrtError(error: unknown): NativeOrtError {
  if (error instanceof NativeOrtError) return error;
  const message = error instanceof Error ? error.message : String(error);
  const code = typeof (error as { code?: unknown })?.code === 'string' ? (error as { code: string }).code : 'ERR_KCACHE_ORT';
  return new NativeOrtError(`${hintFor(code, message)}${message}`, code, { cause: error });
}

function hintFor(code: string, message: string): string {
  if (/libonnxruntime_providers_(cuda|shared)/.test(message) || /Failed to load library/i.test(message)) {
    return (
      "onnxruntime's CUDA provider is not installed next to onnxruntime-node's libonnxruntime.so.1: " +
      'reinstall onnxruntime-node with --onnxruntime-node-install=cuda12 (CUDA 12), or place the CUDA 13 build of ' +
      'libonnxruntime_providers_cuda.so and libonnxruntime_providers_shared.so of the same onnxruntime version there, ' +
      'and put the CUDA and cuDNN libraries on LD_LIBRARY_PATH (docs/gpu.md). '
    );
  }
  if (code === 'ERR_KCACHE_CUDA_RUNTIME') return 'no CUDA runtime: ';
  if (/CUDA driver|no CUDA-capable device|cudaErrorNoDevice|insufficient for CUDA runtime/i.test(message)) {
    return 'no usable GPU or driver (nvidia-smi should list the card; the driver must support the CUDA runtime in use): ';
  }
  return '';
}
