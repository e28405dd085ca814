import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileSha256 } from './file-sha256';
import { ModelNotFoundError } from './model-errors';
import { STORIES260K_BASE_URL, STORIES260K_FILES, STORIES260K_NAME } from './stories260k-files';
import { downloadVerifiedFile } from './verified-download';

export interface DefaultModelResolverOptions {
  /** Used as is when set (folder or .bin file); it must exist. */
  readonly configuredPath?: string | null;
  /** The checkout root: `<repoRoot>/../shared/models/stories260K` is tried next. */
  readonly repoRoot?: string | null;
  /** Verified copies live in `<cacheDir>/stories260K`; without it nothing is downloaded. */
  readonly cacheDir?: string | null;
  /** Folder URL holding the files. Default: Hugging Face karpathy/tinyllamas at the pinned revision. */
  readonly baseUrl?: string;
  /** Download progress lines go here. Default: none. */
  readonly progress?: NodeJS.WritableStream | null;
}

export type ModelDirSource = 'configured' | 'shared' | 'cache' | 'download';

export interface ResolvedModelDir {
  /** A folder, or a .bin file when the configured path is one. */
  readonly path: string;
  readonly source: ModelDirSource;
}

/**
 * Finds the stories260K folder: the configured path, else the shared reference copy, else a
 * cache folder whose files match the pinned sha256, else downloads the bad or missing files there.
 */
export async function resolveDefaultModelDir(options: DefaultModelResolverOptions = {}): Promise<ResolvedModelDir> {
  if (options.configuredPath) {
    const configured = resolve(options.configuredPath);
    if (!existsSync(configured)) throw new ModelNotFoundError(`configured model path ${configured} does not exist`);
    return { path: configured, source: 'configured' };
  }
  const looked: string[] = [];
  if (options.repoRoot) {
    const shared = resolve(options.repoRoot, '..', 'shared', 'models', STORIES260K_NAME);
    if (STORIES260K_FILES.every((file) => existsSync(join(shared, file.fileName)))) return { path: shared, source: 'shared' };
    looked.push(shared);
  }
  if (!options.cacheDir) {
    throw new ModelNotFoundError(
      `${STORIES260K_NAME} not found (looked in: ${looked.join(', ') || 'nowhere, no repoRoot given'}) and no cacheDir to download it into`,
    );
  }
  const cached = resolve(options.cacheDir, STORIES260K_NAME);
  await mkdir(cached, { recursive: true });
  let downloaded = false;
  for (const file of STORIES260K_FILES) {
    const destination = join(cached, file.fileName);
    if (existsSync(destination)) {
      const actualSha256 = await fileSha256(destination);
      if (actualSha256 === file.sha256) continue;
      options.progress?.write(`${destination}: sha256 ${actualSha256} is not the pinned ${file.sha256}; downloading again\n`);
    }
    const url = `${(options.baseUrl ?? STORIES260K_BASE_URL).replace(/\/+$/, '')}/${file.fileName}`;
    options.progress?.write(`downloading ${url} -> ${destination}\n`);
    await downloadVerifiedFile({
      url,
      destination,
      expectedSha256: file.sha256,
      expectedBytes: file.bytes,
      progress: options.progress,
    });
    downloaded = true;
  }
  return { path: cached, source: downloaded ? 'download' : 'cache' };
}
