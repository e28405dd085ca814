import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { syntheticModelConfig } from '../../model/synthetic-models';
import { ArenaSpace, KvArenas } from '../kv-arenas';
import { createExecutionBackend } from './create-execution-backend';
import { HostArenasBackend } from './host-arenas-backend';
import { ExecutionProviderError } from '../execution-provider';
import { NativeBackend } from './native-backend';
import { ResidentDeviceTierBackend } from './resident-device-tier-backend';

const config = syntheticModelConfig('tiny');
const base = { blockSize: 16, arenaCapacity: { kIds: 4, deviceVIds: 3, hostVIds: 4 }, numThreads: 1 };

describe('createExecutionBackend', () => {
  it('cpu gets the host-arenas backend; webgpu and cuda keep the device tier resident; residentDeviceTier overrides', () => {
    const cpu = createExecutionBackend(config, base);
    assert.ok(cpu instanceof HostArenasBackend && !cpu.hasResidentDeviceTier && cpu.provider === 'cpu');
    assert.equal(cpu.graphOptions.hostVAsHalves, false);
    for (const [provider, nativeBackend] of [['webgpu', undefined], ['cuda', false]] as const) {
      const gpu = createExecutionBackend(config, { ...base, executionProvider: provider, nativeBackend });
      assert.ok(gpu instanceof ResidentDeviceTierBackend && gpu.hasResidentDeviceTier && gpu.provider === provider);
      assert.equal(gpu.graphOptions.hostVAsHalves, true);
    }
    assert.ok(createExecutionBackend(config, { ...base, residentDeviceTier: true }) instanceof ResidentDeviceTierBackend);
    assert.ok(createExecutionBackend(config, { ...base, executionProvider: 'webgpu', residentDeviceTier: false }) instanceof HostArenasBackend);
  });

  it('nativeBackend: the native backend on cpu; cuda gets it by default (or, without CUDA, an error naming what to install); never webgpu', async () => {
    const native = createExecutionBackend(config, { ...base, nativeBackend: true });
    assert.ok(native instanceof NativeBackend && native.hasResidentDeviceTier && native.provider === 'cpu');
    assert.deepEqual(native.graphOptions, { hostVAsHalves: false, writeKvInPlace: true, layerArenaViews: true, currentRowInArena: false, fusedAttention: false, pagedAttention: false, fixedShapes: false });
    await native.release();
    const inArena = createExecutionBackend(config, { ...base, nativeBackend: true, currentRowInArena: true });
    assert.equal(inArena.graphOptions.currentRowInArena, true, 'currentRowInArena reaches the native backend');
    await inArena.release();
    try {
      const cuda = createExecutionBackend(config, { ...base, executionProvider: 'cuda' });
      assert.ok(cuda instanceof NativeBackend && cuda.provider === 'cuda');
      await cuda.release();
    } catch (error) {
      assert.ok(error instanceof ExecutionProviderError, String(error));
      assert.match(error.message, /execution provider 'cuda' could not start: .*(libcudart|LD_LIBRARY_PATH|CUDA)/);
    }
    assert.throws(() => createExecutionBackend(config, { ...base, executionProvider: 'webgpu', nativeBackend: true }), /webgpu runs through onnxruntime-node only/);
  });

  it('uses given arenas, or host-V arenas from elsewhere with its own K and device V', () => {
    const arenas = new KvArenas(config, 16, base.arenaCapacity);
    assert.equal(createExecutionBackend(config, { ...base, arenas }).arenas, arenas);
    const hostV = new KvArenas(config, 16, base.arenaCapacity).hostV;
    const backend = createExecutionBackend(config, { ...base, hostVArenas: hostV });
    assert.deepEqual(backend.arenas.hostV, hostV);
    assert.notEqual(backend.arenas.k[0].buffer, arenas.k[0].buffer);
  });

  it('KvArenas takes its buffers from the allocator it is given, per space', () => {
    const asked: Array<[ArenaSpace, number]> = [];
    const arenas = new KvArenas(config, 16, base.arenaCapacity, undefined, undefined, (floats, space) => {
      asked.push([space, floats]);
      return new Float32Array(floats);
    });
    const floatsPerBlock = 16 * config.numKvHeads * (config.dim / config.numHeads);
    assert.deepEqual(asked, [
      ['k', config.numLayers * 4 * floatsPerBlock],
      ['deviceV', config.numLayers * 3 * floatsPerBlock],
      ...Array.from({ length: config.numLayers }, () => ['hostV', 4 * floatsPerBlock] as [ArenaSpace, number]),
    ]);
    assert.equal(arenas.k.length, config.numLayers);
  });
});
