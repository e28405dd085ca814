import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, parseWorkerConfig } from './worker-config';

describe('parseWorkerConfig: NATIVE_BACKEND', () => {
  it("leaves the choice to the engine when unset, and passes true or false through", () => {
    assert.equal(parseWorkerConfig({}).engine.nativeBackend, undefined);
    assert.equal(parseWorkerConfig({ EXECUTION_PROVIDER: 'cpu', NATIVE_BACKEND: 'true' }).engine.nativeBackend, true);
    assert.equal(parseWorkerConfig({ EXECUTION_PROVIDER: 'cuda', NATIVE_BACKEND: 'false' }).engine.nativeBackend, false);
    assert.equal(parseWorkerConfig({}).engine.pagedAttention, undefined);
    assert.equal(parseWorkerConfig({ EXECUTION_PROVIDER: 'cuda', PAGED_ATTENTION: 'false' }).engine.pagedAttention, false);
    assert.equal(parseWorkerConfig({ NATIVE_BACKEND: 'true', PAGED_ATTENTION: 'true' }).engine.pagedAttention, true);
    assert.equal(parseWorkerConfig({}).engine.cudaGraphs, undefined);
    assert.equal(parseWorkerConfig({ EXECUTION_PROVIDER: 'cuda', CUDA_GRAPHS: 'true' }).engine.cudaGraphs, true);
  });

  it('names the variable, not its value, when the value is neither true nor false', () => {
    assert.throws(
      () => parseWorkerConfig({ NATIVE_BACKEND: 'yes-please' }),
      (e: unknown) => e instanceof ConfigError && /NATIVE_BACKEND/.test(e.message) && !e.message.includes('yes-please'),
    );
  });
});
