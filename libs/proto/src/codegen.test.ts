import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { test } from 'node:test';

const projectDir = join(__dirname, '..');

function listFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? listFiles(path) : [path];
  });
}

test('regenerating the TypeScript from the protos gives the checked-in output', () => {
  const outBase = mkdtempSync(join(tmpdir(), 'kcache-proto-gen-'));
  try {
    execFileSync('bash', [join(projectDir, 'scripts', 'generate.sh'), outBase], { stdio: 'pipe' });
    const checkedIn = join(projectDir, 'src', 'gen');
    const fresh = join(outBase, 'src', 'gen');
    const names = (dir: string): string[] => listFiles(dir).map((f) => relative(dir, f)).sort();
    assert.deepEqual(names(fresh), names(checkedIn));
    for (const name of names(checkedIn)) {
      assert.equal(readFileSync(join(fresh, name), 'utf8'), readFileSync(join(checkedIn, name), 'utf8'), name);
    }
  } finally {
    rmSync(outBase, { recursive: true, force: true });
  }
});
