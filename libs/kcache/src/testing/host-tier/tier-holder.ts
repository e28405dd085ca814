/**
 * A process for the tier's unit tests: attaches to a shared host tier without an engine and then
 * waits to be killed. Start it with fork(thisFile, [JSON of TierHolderConfig]).
 *   mode 'hold':        reserves and allocates numBlocks blocks, publishes the first under hash [7, 7, 7, 7];
 *                       sends { type: 'holding', ids, slot }
 *   mode 'die-in-lock': takes the tier's file lock as a worker would, marks the state dirty and
 *                       scrambles a derived field (the free stack top); sends { type: 'in-lock' }
 */
import { openSync } from 'node:fs';
import { ResolvedSharedHostTierOptions } from '../../host-tier/host-tier-options';
import { loadNativeShm } from '../../host-tier/native-shm';
import { SharedHostTier, TierModelShape } from '../../host-tier/shared-host-tier';
import { tierFilePath } from '../../host-tier/tier-file';
import { S, STATE_WORD } from '../../host-tier/tier-layout';

export interface TierHolderConfig {
  readonly options: ResolvedSharedHostTierOptions;
  readonly shape: TierModelShape;
  readonly mode: 'hold' | 'die-in-lock';
  readonly numBlocks: number;
}

const config = JSON.parse(process.argv[2]) as TierHolderConfig;
if (config.mode === 'hold') {
  const tier = SharedHostTier.open(config.options, config.shape);
  const reserved = tier.reserve(config.numBlocks, []);
  if (!('hitIds' in reserved)) throw new Error('holder: no room');
  const ids = tier.allocate(config.numBlocks);
  tier.publish([{ id: ids[0], hash: Uint32Array.of(7, 7, 7, 7) }], { vLayers: config.shape.numLayers > 0 ? Array(config.shape.numLayers).fill(true) : [], keys: false });
  process.send?.({ type: 'holding', ids, slot: tier.slot });
} else {
  const native = loadNativeShm();
  const fd = openSync(tierFilePath(config.options.directory, config.options.name), 'r+');
  const control = new Uint32Array(native.map(fd, 0, 8192, false));
  native.flock(fd, 'ex');
  control[STATE_WORD + S.dirty] = 1;
  control[STATE_WORD + S.freeTop] = 0;
  process.send?.({ type: 'in-lock' });
}
setInterval(() => undefined, 1 << 30);
