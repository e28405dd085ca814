import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { syntheticModelConfig } from '../../model/synthetic-models';
import { NativeOrt } from '../../ort-native/native-ort';
import { NativeKvMemory } from './native-kv-memory';

const config = syntheticModelConfig('tiny');
const capacity = { kIds: 6, deviceVIds: 4, hostVIds: 5 };

/** The device copy of one layer's K arena, read back. */
function deviceK(memory: NativeKvMemory, layer: number): Float32Array {
  const place = memory.layerArena('k', layer);
  const out = new Float32Array(place.floats);
  place.memory.copy('fromDevice', place.byteOffset, out);
  return out;
}

describe('NativeKvMemory (cpu, device copy kept on the host as on a GPU)', () => {
  const native = NativeOrt.load();

  it('uploads exactly positions [from, to): whole blocks in one copy, partial blocks per KV head, nothing else', () => {
    const memory = NativeKvMemory.create(native, 'cpu', config, 16, capacity, { deviceCopyOnHost: true });
    const a = memory.arenas;
    assert.ok(memory.hasDeviceCopy);
    a.k.forEach((arena, layer) => arena.forEach((_, i) => (arena[i] = layer * 1e6 + i + 1)));
    const blockIds = [4, 1, 3];
    memory.uploadPositions('k', 1, blockIds, 5, 37); // block 4: positions 5..15, block 1 whole, block 3: 32..36
    const copy = deviceK(memory, 1);
    const numKv = a.rowsPerBlock / a.blockSize;
    for (let row = 0; row < copy.length / a.headDim; row++) {
      const id = Math.floor(row / a.rowsPerBlock);
      const inBlock = row % a.blockSize;
      const b = blockIds.indexOf(id);
      const position = b * 16 + inBlock;
      const expected = b >= 0 && position >= 5 && position < 37;
      for (let c = 0; c < a.headDim; c++) {
        const value = copy[row * a.headDim + c];
        assert.equal(value, expected ? a.k[1][row * a.headDim + c] : 0, `row ${row} (block ${id}, head ${Math.floor((row % a.rowsPerBlock) / a.blockSize)} of ${numKv}, position ${position})`);
      }
    }
    assert.ok(deviceK(memory, 0).every((x) => x === 0), 'other layers untouched');
    memory.reload();
    assert.deepEqual(deviceK(memory, 0), a.k[0], 'reload copies everything');
    memory.release();
  });

  it('places device V at its first use, from the host view (rows restored before then come along)', () => {
    const memory = NativeKvMemory.create(native, 'cpu', config, 16, capacity, { deviceCopyOnHost: true });
    const a = memory.arenas;
    a.deviceV[1].fill(0.5, 0, 3 * a.rowsPerBlock * a.headDim);
    const place = memory.layerArena('deviceV', 1);
    const copy = new Float32Array(place.floats);
    place.memory.copy('fromDevice', place.byteOffset, copy);
    assert.deepEqual(copy, a.deviceV[1]);
    assert.equal(memory.deviceVGroup(0), memory.deviceVGroup(0), 'placed once');
    memory.release();
  });

  it('on cpu without a device copy, the arenas are bound as they are and uploads are no-ops', () => {
    const memory = NativeKvMemory.create(native, 'cpu', config, 16, capacity);
    assert.equal(memory.hasDeviceCopy, false);
    memory.arenas.k[0][7] = 42;
    assert.equal(deviceK(memory, 0)[7], 42, 'the "device" arena is the host view itself');
    memory.release();
  });
});
