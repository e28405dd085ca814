import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FULL_ATTENTION } from '@kcache-serve/kcache/dist/attention/attention-config';
import { syntheticModelConfig } from '@kcache-serve/kcache/dist/model/synthetic-models';
import { decodeStepBytes, gpuMemoryBytesPerSecond, rooflineFraction } from './hbm-roofline';

describe('HBM roofline of a decode step', () => {
  const config = syntheticModelConfig('llama-110m');

  it('~110M, batch 32, context 512: about 0.44 GB of weights and 1.2 GB of K/V a step, as the CUDA issue counts them', () => {
    const full = decodeStepBytes(config, FULL_ATTENTION, 512, 32);
    assert.equal(full.deviceKvBytes, 32 * 512 * 12 * 2 * 768 * 4);
    assert.ok(Math.abs(full.weightBytes / 1e9 - 0.438) < 0.005, `${full.weightBytes}`);
    assert.equal(full.hostVBytes, 0);
    // 1.64 GB at 4.8 TB/s is 0.34 ms: a 1.37 ms step reaches a quarter of it.
    assert.ok(Math.abs(rooflineFraction(full, 4.8e12, 1.37) - 0.25) < 0.005);
  });

  it('kcache reads K from GPU memory and min(N, context + 1) V rows per query head from the host tier', () => {
    const kcache = decodeStepBytes(config, { mode: 'kcache', topN: 64, denseLayers: 2, renormalize: false }, 2048, 4);
    const layerRows = 4 * 4 * 768 * 2048;
    assert.equal(kcache.deviceKvBytes, 12 * layerRows + 2 * layerRows);
    assert.equal(kcache.hostVBytes, 10 * 4 * 64 * 12 * 64 * 4);
  });

  it('takes the bandwidth from the flag, refusing nonsense', () => {
    assert.equal(gpuMemoryBytesPerSecond('3.35'), 3.35e12);
    assert.throws(() => gpuMemoryBytesPerSecond('fast'), /--hbm-tb-per-s must be a positive number of TB\/s, got 'fast'/);
  });
});
