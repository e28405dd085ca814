import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import { onnx } from 'onnx-proto';
import { GraphBuilder } from './graph-builder';
import {
  ExecutionProviderError,
  executionProviderFromEnv,
  parseExecutionProvider,
  providerError,
  providerSessionOptions,
} from './execution-provider';
import { graphForProvider } from './execution-provider-graph';

describe('execution providers', () => {
  it('parses the provider names and reads KCACHE_EP from a given environment', () => {
    assert.equal(parseExecutionProvider('webgpu', '--ep'), 'webgpu');
    assert.throws(() => parseExecutionProvider('tpu', '--ep'), /--ep must be one of cpu, webgpu, cuda, got 'tpu'/);
    assert.equal(executionProviderFromEnv({}), 'cpu');
    assert.equal(executionProviderFromEnv({ KCACHE_EP: 'cuda' }), 'cuda');
    assert.throws(() => executionProviderFromEnv({ KCACHE_EP: 'gpu' }), /KCACHE_EP must be one of/);
  });

  it('leaves CPU sessions exactly as before and names the GPU providers', () => {
    assert.deepEqual(providerSessionOptions('cpu'), {});
    assert.deepEqual(providerSessionOptions('webgpu'), { executionProviders: [{ name: 'webgpu' }] });
  });

  it('explains a provider that cannot start, keeping onnxruntime\'s text; CPU errors pass unchanged', () => {
    const webgpu = providerError('webgpu', new Error('Failed to get a WebGPU adapter: No supported adapters'));
    assert.ok(webgpu instanceof ExecutionProviderError);
    assert.match(webgpu.message, /'webgpu' could not start: no WebGPU adapter.*Vulkan.*No supported adapters/);
    const cuda = providerError('cuda', new Error('OrtSessionOptionsAppendExecutionProvider_Cuda: Failed to load shared library'));
    assert.match((cuda as Error).message, /--onnxruntime-node-install=cuda12.*CUDA 13 build of libonnxruntime_providers_cuda\.so/);
    const hint = (detail: string) => (providerError('cuda', new Error(detail)) as Error).message;
    assert.match(hint('no CUDA runtime: the CUDA runtime (libcudart.so.13 or .12) could not be opened'), /CUDA runtime libraries were not found: put CUDA's lib folder .* on LD_LIBRARY_PATH/);
    assert.match(hint('cudaHostAlloc failed: CUDA driver version is insufficient for CUDA runtime version'), /no usable GPU or driver: nvidia-smi/);
    assert.match(hint('the onnxruntime C API addon is not built (.../kcache_ort.node is missing)'), /build-native\.sh/);
    const kernels = hint('PagedDecodeAttention: the CUDA PagedDecodeAttention kernels could not be opened (x.so: cannot open shared object file): build them with libs/kcache/scripts/build-native.sh on a machine with nvcc');
    assert.match(kernels, /PagedDecodeAttention operator's CUDA kernels .* nvcc .*\(pagedAttention: false, PAGED_ATTENTION=false/);
    assert.doesNotMatch(kernels, /onnxruntime addon is missing/);
    const cpuError = new Error('bad graph');
    assert.equal(providerError('cpu', cpuError), cpuError);
  });

  it('rewrites FusedMatMul for WebGPU into standard ops with the same result, and leaves other graphs alone', async () => {
    const g = new GraphBuilder('fused');
    const a = g.input('a', 'float32', [1, 2, 3, 4]);
    const b = g.input('b', 'float32', [1, 2, 5, 4]);
    g.output(g.contribOp('FusedMatMul', [a, b], { transB: 1, alpha: { float: 0.5 } }), 'y', 'float32', [1, 2, 3, 5]);
    const bytes = g.toBytes();
    assert.equal(graphForProvider(bytes, 'cpu'), bytes);
    const rewritten = graphForProvider(bytes, 'webgpu');
    const ops = onnx.ModelProto.decode(rewritten).graph!.node!.map((n) => n.opType);
    assert.deepEqual(ops, ['Transpose', 'MatMul', 'Mul']);
    const feeds = {
      a: new ort.Tensor('float32', Float32Array.from({ length: 24 }, (_, i) => Math.sin(i)), [1, 2, 3, 4]),
      b: new ort.Tensor('float32', Float32Array.from({ length: 40 }, (_, i) => Math.cos(i)), [1, 2, 5, 4]),
    };
    const run = async (model: Uint8Array) => {
      const session = await ort.InferenceSession.create(model, { graphOptimizationLevel: 'disabled' });
      const y = (await session.run(feeds)).y.data as Float32Array;
      await session.release();
      return y;
    };
    const [expected, actual] = [await run(bytes), await run(rewritten)];
    expected.forEach((value, i) => assert.ok(Math.abs(value - actual[i]) < 1e-6, `element ${i}: ${value} vs ${actual[i]}`));
  });
});
