import { headDimOf } from '../model/model-config';
import { LoadedModel } from '../formats/model-source';
import { resolveSharedHostTierOptions, SharedHostTierOptions } from './host-tier-options';
import { modelFingerprint } from './prefix-hash';
import { SharedHostTier } from './shared-host-tier';
import { SharedHostVBlocks } from './shared-host-v-blocks';

/**
 * Attaches this process to the node's shared host tier (creating its file if it is the first)
 * for an engine of this model and block size. Every failure (no addon, foreign or corrupt file,
 * no room, capacity 0) is a named error here, at start-up.
 */
export function openSharedHostVBlocks(
  options: SharedHostTierOptions,
  engine: { readonly blockSize: number; readonly hostCapacityBytes: number },
  model: LoadedModel,
): SharedHostVBlocks {
  const resolved = resolveSharedHostTierOptions(options, engine.hostCapacityBytes);
  const config = model.weights.config;
  const tier = SharedHostTier.open(resolved, {
    blockSize: engine.blockSize,
    numLayers: config.numLayers,
    numKvHeads: config.numKvHeads,
    headDim: headDimOf(config),
  });
  try {
    return new SharedHostVBlocks(tier, {
      blockSize: engine.blockSize,
      numLayers: config.numLayers,
      prefixSharing: resolved.prefixSharing,
      modelFingerprint: resolved.prefixSharing ? modelFingerprint(model.name, model.weights) : '',
    });
  } catch (error) {
    tier.close();
    throw error;
  }
}
