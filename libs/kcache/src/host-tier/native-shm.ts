import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { HostTierUnavailableError } from './host-tier-errors';

/** The addon built from libs/kcache/native (kcache_shm.c documents each call). */
export interface NativeShm {
  fallocate(fd: number, bytes: number): void;
  freeBytes(directory: string): number;
  map(fd: number, offset: number, bytes: number, populate: boolean): ArrayBuffer;
  flock(fd: number, op: 'ex' | 'exnb' | 'un'): boolean;
  monotonicMs(): number;
  startHeartbeat(buffer: ArrayBuffer, byteOffset: number, intervalMs: number): HeartbeatHandle;
  stopHeartbeat(handle: HeartbeatHandle): void;
}

declare const heartbeatBrand: unique symbol;
export type HeartbeatHandle = { readonly [heartbeatBrand]: true };

/** dist/host-tier → libs/kcache/native/build/Release. */
export const NATIVE_ADDON_PATH = join(__dirname, '..', '..', 'native', 'build', 'Release', 'kcache_shm.node');

let loaded: NativeShm | null = null;

/** The addon, loaded once. Throws HostTierUnavailableError saying how to build it. */
export function loadNativeShm(): NativeShm {
  if (loaded) return loaded;
  if (process.platform !== 'linux') {
    throw new HostTierUnavailableError(`the shared host tier needs Linux (mmap of tmpfs files, flock); this is ${process.platform}`);
  }
  if (!existsSync(NATIVE_ADDON_PATH)) {
    throw new HostTierUnavailableError(
      `the shared host tier's addon is not built (${NATIVE_ADDON_PATH} is missing): run ` +
        '`bash libs/kcache/scripts/build-native.sh` (needs python3, make and a C compiler); ' +
        "or use the in-process host tier (hostTier: { kind: 'process' })",
    );
  }
  try {
    loaded = require(NATIVE_ADDON_PATH) as NativeShm;
  } catch (error) {
    throw new HostTierUnavailableError(
      `the shared host tier's addon ${NATIVE_ADDON_PATH} does not load (built for another Node or platform?); ` +
        'rebuild it with `bash libs/kcache/scripts/build-native.sh`',
      { cause: error },
    );
  }
  return loaded;
}
