import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pagedAttentionCudaKernelsBuilt } from '../ort-native/native-ort';
import { InvalidRequestError } from '../request/invalid-request-error';
import { resolveEngineOptions } from './engine-options';

/** Asserts that options are refused with an InvalidRequestError naming `field`, its reason matching `reason`. */
function refusedFor(field: string): (options: object, reason: RegExp) => void {
  return (options, reason) =>
    assert.throws(
      () => resolveEngineOptions({ model: 'm', ...options }),
      (error: unknown) => error instanceof InvalidRequestError && error.field === field && reason.test(error.reason),
    );
}

describe('engine options: execution provider and native backend', () => {
  it('cuda runs the native backend unless told otherwise; cpu and webgpu do not', () => {
    assert.equal(resolveEngineOptions({ model: 'm', executionProvider: 'cuda' }).nativeBackend, true);
    assert.equal(resolveEngineOptions({ model: 'm', executionProvider: 'cuda', nativeBackend: false }).nativeBackend, false);
    assert.equal(resolveEngineOptions({ model: 'm' }).nativeBackend, false);
    assert.equal(resolveEngineOptions({ model: 'm', nativeBackend: true }).nativeBackend, true);
    assert.equal(resolveEngineOptions({ model: 'm', executionProvider: 'webgpu' }).nativeBackend, false);
  });

  it('refuses a native backend for webgpu, and a non-boolean, naming the field', () => {
    const refused = refusedFor('nativeBackend');
    refused({ executionProvider: 'webgpu', nativeBackend: true }, /webgpu runs through onnxruntime-node only/);
    refused({ nativeBackend: 'yes' }, /must be true or false, got "yes"/);
  });

  it('currentRowInArena: off unless asked for, a native-backend graph only, a boolean', () => {
    assert.equal(resolveEngineOptions({ model: 'm', executionProvider: 'cuda' }).currentRowInArena, false);
    assert.equal(resolveEngineOptions({ model: 'm', executionProvider: 'cuda', currentRowInArena: true }).currentRowInArena, true);
    const refused = refusedFor('currentRowInArena');
    refused({ currentRowInArena: true }, /native backend/);
    refused({ executionProvider: 'cuda', currentRowInArena: 1 }, /must be true or false, got 1/);
  });

  it('pagedAttention: on for cuda where its CUDA kernels are built, else off unless asked for; a native-backend kernel only, a boolean', () => {
    assert.equal(resolveEngineOptions({ model: 'm', executionProvider: 'cuda' }).pagedAttention, pagedAttentionCudaKernelsBuilt());
    assert.equal(resolveEngineOptions({ model: 'm', executionProvider: 'cuda', pagedAttention: false }).pagedAttention, false);
    assert.equal(resolveEngineOptions({ model: 'm', executionProvider: 'cuda', nativeBackend: false }).pagedAttention, false);
    assert.equal(resolveEngineOptions({ model: 'm', nativeBackend: true }).pagedAttention, false);
    assert.equal(resolveEngineOptions({ model: 'm', nativeBackend: true, pagedAttention: true }).pagedAttention, true);
    const refused = refusedFor('pagedAttention');
    refused({ pagedAttention: true }, /native backend/);
    refused({ executionProvider: 'cuda', pagedAttention: 'on' }, /must be true or false, got "on"/);
  });

  it('cudaGraphs: off unless asked for; only on cuda with pagedAttention, a boolean', () => {
    assert.equal(resolveEngineOptions({ model: 'm', executionProvider: 'cuda' }).cudaGraphs, false);
    assert.equal(resolveEngineOptions({ model: 'm', executionProvider: 'cuda', pagedAttention: true, cudaGraphs: true }).cudaGraphs, true);
    const refused = refusedFor('cudaGraphs');
    refused({ nativeBackend: true, pagedAttention: true, cudaGraphs: true }, /needs the cuda provider and pagedAttention/);
    refused({ executionProvider: 'cuda', pagedAttention: false, cudaGraphs: true }, /needs the cuda provider and pagedAttention/);
    refused({ executionProvider: 'cuda', cudaGraphs: 1 }, /must be true or false, got 1/);
  });
});
