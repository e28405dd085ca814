import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { bf16ToFloat32, float16ToFloat32, float32ToBf16 } from './float-formats';
import { SafetensorsFile, serializeSafetensors } from './safetensors';

describe('safetensors', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'kcache-safetensors-'));
  after(() => rmSync(scratch, { recursive: true, force: true }));

  it('writes and reads F32 and BF16 tensors, data 8-byte aligned', () => {
    const a = Float32Array.from({ length: 12 }, (_, i) => i * 0.5 - 2);
    const b = Float32Array.from([1, -1.5, 3.25]);
    for (const dtype of ['F32', 'BF16'] as const) {
      const path = join(scratch, `t-${dtype}.safetensors`);
      const bytes = serializeSafetensors([{ name: 'a', shape: [3, 4], data: a }, { name: 'b', shape: [3], data: b }], { dtype });
      assert.equal(Number(Buffer.from(bytes).readBigUInt64LE(0)) % 8, 0);
      writeFileSync(path, bytes);
      const file = SafetensorsFile.open(path);
      try {
        assert.deepEqual([...file.tensors.keys()], ['a', 'b']);
        assert.deepEqual(file.tensors.get('a')!.shape, [3, 4]);
        assert.equal(file.tensors.get('a')!.dtype, dtype);
        assert.deepEqual(file.readFloat32('a'), a, 'these values are exact in bf16');
        assert.deepEqual(file.readFloat32('b'), b);
        assert.deepEqual(file.metadata, { format: 'pt' });
      } finally {
        file.close();
      }
    }
  });

  it('converts half precision exactly, subnormals and specials included', () => {
    const halves = Uint16Array.from([0x3c00, 0xc000, 0x7bff, 0x0001, 0x8400, 0x7c00, 0xfc00, 0x0000, 0x3555]);
    const floats = float16ToFloat32(halves);
    assert.deepEqual([...floats], [1, -2, 65504, 2 ** -24, -(2 ** -14), Infinity, -Infinity, 0, 0.333251953125]);
    assert.ok(Number.isNaN(float16ToFloat32(Uint16Array.from([0x7e00]))[0]));
  });

  it('rounds fp32 to bf16 to nearest even', () => {
    const values = Float32Array.from([1 + 2 ** -8, 1 + 3 * 2 ** -8, 1 + 2 ** -8 + 2 ** -20, -0, NaN]);
    const back = bf16ToFloat32(new Uint16Array(float32ToBf16(values).buffer));
    assert.deepEqual([...back.subarray(0, 3)], [1, 1 + 2 ** -6, 1 + 2 ** -7]);
    assert.ok(Object.is(back[3], -0));
    assert.ok(Number.isNaN(back[4]));
  });
});
