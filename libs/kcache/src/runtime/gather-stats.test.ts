import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FULL_ATTENTION } from '../attention/attention-config';
import { emptySequenceBlocks } from '../memory/sequence-blocks';
import { GatherStats } from './gather-stats';
import { graphVariantOf } from './graph-variant';

const item = (position: number) => ({ tokenId: 1, position, blocks: emptySequenceBlocks() });

describe('GatherStats', () => {
  it('counts B · numHeads · min(N, T+1) rows per TopN layer, T the padded past of the batch, and their rate', () => {
    const stats = new GatherStats(2, 16);
    const variant = graphVariantOf({ mode: 'kcache', topN: 16, denseLayers: 1, renormalize: false }, 4);
    stats.recordDecode(variant, 16, [item(20), item(40)], 2); // T = 48: min(16, 49) = 16 rows per head, 3 TopN layers
    assert.equal(stats.numHostVRows, 2 * 2 * 16 * 3);
    stats.recordDecode(variant, 64, [item(5)], 2); // T = 16: min(64, 17) = 17
    assert.equal(stats.numHostVRows, 192 + 2 * 17 * 3);
    assert.equal(stats.hostVRowsPerSecond, ((192 + 102) * 1000) / 4);
  });

  it('decodes without TopN layers gather nothing and take no time from the rate', () => {
    const stats = new GatherStats(2, 16);
    stats.recordDecode(graphVariantOf(FULL_ATTENTION, 4), 0, [item(30)], 5);
    assert.deepEqual([stats.numHostVRows, stats.hostVRowsPerSecond], [0, 0]);
  });
});
