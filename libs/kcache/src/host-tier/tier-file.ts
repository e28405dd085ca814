import { closeSync, fstatSync, linkSync, openSync, readdirSync, readSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { HostTierConfigError, HostTierFormatError, HostTierSpaceError } from './host-tier-errors';
import { NativeShm } from './native-shm';
import { computeLayout, initializeState, PAGE_BYTES, readHeader, TierLayout, TierShape, writeHeader } from './tier-layout';

/** A tier file, open and mapped: the control region (header, state, tables) and the data regions. */
export interface TierFile {
  readonly path: string;
  readonly fd: number;
  readonly layout: TierLayout;
  readonly capacityBytes: number;
  readonly control: ArrayBuffer;
  /** Per layer: numBlocks · layerBlockFloats fp32 of V (the engine's host-V arena). */
  readonly v: Float32Array[];
  /** Per layer, when the tier keeps K of prefix blocks; else null. */
  readonly k: Float32Array[] | null;
  /** This process created the file. */
  readonly created: boolean;
}

export interface OpenTierFileOptions {
  readonly directory: string;
  readonly name: string;
  readonly shape: TierShape;
  readonly capacityBytes: number;
  readonly populate: boolean;
}

export function tierFilePath(directory: string, name: string): string {
  return join(directory, `kcache-${name}.tier`);
}

/**
 * Opens the tier's file, creating it if absent: written aside under a temporary name, allocated in
 * full, then linked into place, so a file under the tier's name is always complete. A file of that
 * name that is not a tier of this exact shape is an error, never overwritten.
 */
export function openTierFile(native: NativeShm, options: OpenTierFileOptions): TierFile {
  let isDirectory = false;
  try {
    isDirectory = statSync(options.directory).isDirectory();
  } catch (error) {
    throw new HostTierConfigError(`host tier directory ${options.directory} does not exist`, 'directory', { cause: error });
  }
  if (!isDirectory) throw new HostTierConfigError(`host tier directory ${options.directory} is not a directory`, 'directory');
  const path = tierFilePath(options.directory, options.name);
  for (let attempt = 0; ; attempt++) {
    const existing = tryOpen(path);
    if (existing !== null) return mapExisting(native, path, existing, options);
    const created = createAside(native, path, options);
    if (created !== null) return created;
    if (attempt > 3) throw new HostTierFormatError(`host tier file ${path} keeps appearing and disappearing`, path);
  }
}

function tryOpen(path: string): number | null {
  try {
    return openSync(path, 'r+');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new HostTierFormatError(`cannot open host tier file ${path}: ${(error as Error).message}`, path, { cause: error });
  }
}

function mapExisting(native: NativeShm, path: string, fd: number, options: OpenTierFileOptions): TierFile {
  try {
    const page = new Uint8Array(PAGE_BYTES);
    const fileBytes = fstatSync(fd).size;
    readSync(fd, page, 0, PAGE_BYTES, 0);
    const header = readHeader(page, fileBytes);
    if ('kind' in header) {
      const what = header.kind === 'foreign' ? 'is not a kcache host tier' : header.kind === 'version' ? 'is another version of the host tier' : 'is a corrupt host tier';
      throw new HostTierFormatError(
        `${path} ${what}: ${header.detail}. Remove it (when no worker uses it) or choose another hostTier.name or directory.`,
        path,
      );
    }
    const expected = computeLayout(options.shape);
    const differences = (Object.keys(options.shape) as Array<keyof TierShape>)
      .filter((field) => header.layout[field] !== expected[field])
      .map((field) => `${field} ${header.layout[field]} (this worker: ${expected[field]})`);
    if (differences.length > 0) {
      throw new HostTierFormatError(
        `host tier ${path} was created for another shape: ${differences.join(', ')}` +
          (differences.some((d) => d.startsWith('numBlocks')) ? ` — it holds ${header.capacityBytes} capacity bytes` : '') +
          '. Every worker of a tier must use the same model shape, blockSize, capacityBytes, maxWorkers and prefixKeys; ' +
          'or remove the file when no worker uses it.',
        path,
      );
    }
    return mapRegions(native, path, fd, header.layout, header.capacityBytes, options.populate, false);
  } catch (error) {
    closeSync(fd);
    throw error;
  }
}

/** Creates the file under a temporary name and links it into place; null when another process won the race. */
function createAside(native: NativeShm, path: string, options: OpenTierFileOptions): TierFile | null {
  removeAbandonedTemporaries(native, options.directory, path);
  const layout = computeLayout(options.shape);
  const temporary = `${path}.${process.pid}.${Math.floor(Math.random() * 2 ** 32).toString(16)}.tmp`;
  const fd = openSync(temporary, 'wx+', 0o660);
  let linked = false;
  try {
    // Held while the temporary exists: another creator sees that this one is alive.
    native.flock(fd, 'ex');
    const freeBytes = native.freeBytes(options.directory);
    if (freeBytes < layout.fileBytes) throw spaceError(options.directory, layout, freeBytes);
    try {
      native.fallocate(fd, layout.fileBytes);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOSPC' || code === 'EFBIG' || code === 'ENOMEM') throw spaceError(options.directory, layout, native.freeBytes(options.directory), error);
      throw error;
    }
    const file = mapRegions(native, path, fd, layout, options.capacityBytes, options.populate, true);
    initializeState(file.control, layout);
    writeHeader(new Uint32Array(file.control, 0, PAGE_BYTES / 4), new Float64Array(file.control, 0, PAGE_BYTES / 8), layout, options.capacityBytes);
    try {
      linkSync(temporary, path);
      linked = true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    native.flock(fd, 'un');
    unlinkSync(temporary);
    if (!linked) {
      closeSync(fd);
      return null;
    }
    return file;
  } catch (error) {
    try {
      unlinkSync(temporary);
    } catch {
      // already gone
    }
    closeSync(fd);
    throw error;
  }
}

function mapRegions(native: NativeShm, path: string, fd: number, layout: TierLayout, capacityBytes: number, populate: boolean, created: boolean): TierFile {
  const control = native.map(fd, 0, layout.controlBytes, populate);
  const region = (index: number) =>
    new Float32Array(native.map(fd, layout.controlBytes + index * layout.layerRegionBytes, layout.layerRegionBytes, populate), 0, layout.numBlocks * layout.layerBlockFloats);
  const v = Array.from({ length: layout.numLayers }, (_, l) => region(l));
  const k = layout.hasKeys ? Array.from({ length: layout.numLayers }, (_, l) => region(layout.numLayers + l)) : null;
  return { path, fd, layout, capacityBytes, control, v, k, created };
}

/** Temporaries of creators that died mid-creation (their flock is gone) would hold tmpfs memory forever. */
function removeAbandonedTemporaries(native: NativeShm, directory: string, path: string): void {
  const prefix = `${path.slice(directory.length + 1)}.`;
  for (const entry of readdirSync(directory)) {
    if (!entry.startsWith(prefix) || !entry.endsWith('.tmp')) continue;
    const temporary = join(directory, entry);
    let fd: number;
    try {
      fd = openSync(temporary, 'r+');
    } catch {
      continue;
    }
    try {
      if (native.flock(fd, 'exnb')) unlinkSync(temporary);
    } catch {
      // another process removed it first
    } finally {
      closeSync(fd);
    }
  }
}

function spaceError(directory: string, layout: TierLayout, freeBytes: number, cause?: unknown): HostTierSpaceError {
  return new HostTierSpaceError(
    `host tier needs ${layout.fileBytes} bytes in ${directory} (${layout.numBlocks} blocks of ${layout.blockBytes} bytes ` +
      `plus ${layout.controlBytes} bytes of metadata), only ${freeBytes} are free: lower hostTier.capacityBytes or make ` +
      'room (a container\'s /dev/shm is often 64 MiB: docker run --shm-size, or a memory-backed emptyDir in Kubernetes)',
    cause === undefined ? undefined : { cause },
  );
}
