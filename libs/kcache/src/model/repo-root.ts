import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** The repository root: the nearest folder above this file whose package.json is the workspace root. */
export function repoRoot(): string {
  let dir = __dirname;
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && JSON.parse(readFileSync(manifest, 'utf8')).name === 'kcache-serve') return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('kcache-serve repository root not found above ' + __dirname);
    dir = parent;
  }
}
