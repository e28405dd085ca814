import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { AttentionConfig } from '../attention/attention-config';
import { createEngine } from '../engine/create-engine';
import { generate } from '../engine/generate';
import { loadModel, LoadedModel } from '../formats/model-source';
import { stories260kDir } from '../testing/reference-data';
import { greedyRequest, KCACHE_32, sharedPrefixPrompts } from '../testing/host-tier/tier-prompts';

/**
 * The native backend (the CUDA path, on the CPU provider) over the node's shared host tier: host V is
 * the tier's /dev/shm mapping, bound in place (registered with the GPU on cuda), and a prefix hit
 * restores K (and exact-layer V) into the host view, which the backend copies to its device tier.
 */
const PREFIX_LENGTH = 64;
let model: LoadedModel;
let directory: string;
let prompts: number[][];

describe('native backend with the shared host tier (stories260K)', () => {
  before(() => {
    model = loadModel(stories260kDir());
    directory = mkdtempSync('/dev/shm/kcache-native-tier-test-');
    prompts = sharedPrefixPrompts(model, PREFIX_LENGTH, 6);
  });

  after(() => rmSync(directory, { recursive: true, force: true }));

  const attentions: ReadonlyArray<[string, AttentionConfig]> = [
    ['kcache N=32', KCACHE_32],
    ['kcache N=32, 2 exact layers', { mode: 'kcache', topN: 32, denseLayers: 2, renormalize: false }],
  ];
  for (const [index, [name, attention]] of attentions.entries()) {
    it(`${name}: restored prefixes (K spilled to the tier) give the tokens of the in-process tier on onnxruntime-node`, async () => {
      const reference = await createEngine({ model: stories260kDir(), numThreads: 1, defaultAttention: attention }, model);
      const expected: number[][] = [];
      for (const [i, p] of prompts.entries()) expected.push((await generate(reference, greedyRequest(`e${i}`, p, 60, attention))).tokenIds);
      await reference.close();

      const hostTier = { kind: 'shared' as const, directory, name: `native-${index}`, capacityBytes: 16 << 20, leaseMs: 500, prefixKeys: 'spill' as const };
      const engine = await createEngine({ model: stories260kDir(), numThreads: 1, defaultAttention: attention, nativeBackend: true, hostTier }, model);
      const first = await generate(engine, greedyRequest('owner', prompts[0], 60, attention));
      assert.deepEqual(first.tokenIds, expected[0], 'the prompt that publishes the prefix');
      const rest = await Promise.all(prompts.slice(1).map((p, i) => generate(engine, greedyRequest(`s${i}`, p, 60, attention))));
      rest.forEach((result, i) => assert.deepEqual(result.tokenIds, expected[i + 1], `prompt ${i + 1}`));
      const stats = engine.stats().hostTier!;
      // The later prompts run together: each restores the prefix blocks published by then (the owner's, at least).
      assert.ok(stats.numRestoredBlocks >= 2 * (PREFIX_LENGTH / 16), `restored ${stats.numRestoredBlocks} blocks`);
      await engine.close();
    });
  }
});
