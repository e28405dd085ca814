import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';

/** The onnxruntime files a fresh Node process holds in require.cache after requiring `entry`. */
function onnxRuntimeFilesLoadedBy(entry: string): string[] {
  const script = `require(${JSON.stringify(entry)});
process.stdout.write(JSON.stringify(Object.keys(require.cache).filter((f) => /[\\\\/]onnxruntime-(node|common)[\\\\/]/.test(f))));`;
  const run = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  return JSON.parse(run.stdout) as string[];
}

describe('entry points of the engine library', () => {
  it('light and testing load no onnxruntime; the engine does (the control)', () => {
    assert.deepEqual(onnxRuntimeFilesLoadedBy(join(__dirname, 'light.js')), []);
    assert.deepEqual(onnxRuntimeFilesLoadedBy(join(__dirname, 'testing', 'index.js')), []);
    assert.ok(onnxRuntimeFilesLoadedBy(join(__dirname, 'index.js')).length > 0);
  });

  it('the engine exports no test helpers; the testing entry point does', () => {
    const engine = require(join(__dirname, 'index.js')) as Record<string, unknown>;
    const testing = require(join(__dirname, 'testing', 'index.js')) as Record<string, unknown>;
    for (const helper of ['stories260kDir', 'sharedDir', 'loadGreedyOracle']) {
      assert.equal(engine[helper], undefined, helper);
      assert.equal(typeof testing[helper], 'function', helper);
    }
  });
});
