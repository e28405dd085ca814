import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AttentionConfig, FULL_ATTENTION } from '../attention/attention-config';
import { loadModel } from '../formats/model-source';
import { GREEDY } from '../sampling/sampling-params';
import { stories260kDir } from '../testing/reference-data';
import { createEngine } from './create-engine';

const model = loadModel(stories260kDir());

/** Device and host bytes held while one 200-token prompt sits in the cache. */
async function bytesHeld(attention: AttentionConfig): Promise<{ device: number; host: number }> {
  const engine = await createEngine({ model: stories260kDir(), numThreads: 1, defaultAttention: attention }, model);
  const prompt = model.tokenizer.encode('Once upon a time there was a dog. '.repeat(20), { bos: true }).slice(0, 200);
  let held = { device: 0, host: 0 };
  await new Promise<void>((resolve) =>
    engine.submit(
      { requestId: 'r', promptTokenIds: prompt, maxNewTokens: 2, sampling: GREEDY, stopTokenIds: [], stopStrings: [], attention, priority: 0, logprobs: false },
      (event) => {
        if (event.type === 'token' && event.index === 0) {
          const stats = engine.stats();
          held = { device: stats.device.usedBytes, host: stats.host.usedBytes };
        }
        if (event.type === 'finish') resolve();
      },
    ),
  );
  await engine.close();
  return held;
}

describe('device-tier accounting', () => {
  it('kcache keeps K only in the device tier: exactly half of full, V bytes in the host tier', async () => {
    const full = await bytesHeld(FULL_ATTENTION);
    const kcache = await bytesHeld({ mode: 'kcache', topN: 32, denseLayers: 0, renormalize: false });
    // 200 tokens → 13 blocks of 16; per block: 5 layers · 32 floats · 4 bytes · 16 tokens = 10240 bytes of K.
    assert.equal(full.device, 13 * 10240 * 2);
    assert.equal(full.host, 0);
    assert.equal(kcache.device, full.device / 2);
    assert.equal(kcache.host, full.device / 2);
  });

  it('dense layers keep their V in the device tier', async () => {
    const twoDense = await bytesHeld({ mode: 'kcache', topN: 32, denseLayers: 2, renormalize: false });
    assert.equal(twoDense.device, 13 * 10240 + (13 * 10240 * 2) / 5);
    assert.equal(twoDense.host, (13 * 10240 * 3) / 5);
  });
});
