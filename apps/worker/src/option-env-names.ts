/**
 * The engine's errors name its options (`hostTier.capacityBytes`); a worker's operator sets environment
 * variables. Startup errors are reworded here, in the app that owns the mapping (worker-config.ts).
 */
const ENV_NAME_OF_OPTION: ReadonlyArray<readonly [string, string]> = [
  ['hostTier.capacityBytes', 'HOST_TIER_CAPACITY_BYTES'],
  ["hostTier: { kind: 'process' }", 'HOST_TIER=process'],
  ['nativeBackend', 'NATIVE_BACKEND'],
  ['pagedAttention', 'PAGED_ATTENTION'],
  ['cudaGraphs', 'CUDA_GRAPHS'],
];

/** Rewrites the messages of error and its causes in place, and returns it. */
export function withEnvNames(error: unknown): unknown {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    for (const [option, envName] of ENV_NAME_OF_OPTION) e.message = e.message.replaceAll(option, envName);
  }
  return error;
}
