import { join } from 'node:path';
import { homedir } from 'node:os';
import { resolveDefaultModelDir } from '../model/default-model-resolver';
import { repoRoot } from '../testing/reference-data';

/** `--model` as given, or the default stories260K folder (shared data, cache, or a verified download). */
export async function resolveModelSpec(model: string | undefined): Promise<string> {
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
