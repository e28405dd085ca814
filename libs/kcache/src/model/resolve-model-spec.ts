import { join } from 'node:path';
import { homedir } from 'node:os';
import { resolveDefaultModelDir } from './default-model-resolver';
import { repoRoot } from './repo-root';

/**
 * A model spec as given, or the default stories260K folder when none is: `../shared/models` beside
 * the checkout, else `~/.cache/kcache-serve`, else a checksum-verified download into that cache
 * (progress on stderr).
 */
export async function resolveModelSpec(model: string | undefined | null): Promise<string> {
  if (model) return model;
  let root: string | null = null;
  try {
    root = repoRoot();
  } catch {
    root = null;
  }
  const resolved = await resolveDefaultModelDir({
    repoRoot: root,
    cacheDir: join(homedir(), '.cache', 'kcache-serve'),
    progress: process.stderr,
  });
  return resolved.path;
}
