import { openSharedHostVBlocks } from '../host-tier/open-shared-host-tier';
import { loadModel, LoadedModel } from '../formats/model-source';
import { EngineOptions, resolveEngineOptions } from './engine-options';
import { LlmEngine } from './llm-engine';

/**
 * Loads the model (unless given), attaches to the node's shared host tier when options.hostTier
 * asks for one, builds the engine and compiles its default graphs.
 */
export async function createEngine(options: EngineOptions, preloaded?: LoadedModel): Promise<LlmEngine> {
  const resolved = resolveEngineOptions(options);
  const model = preloaded ?? loadModel(resolved.model);
  const sharedHost = resolved.hostTier.kind === 'shared' ? openSharedHostVBlocks(resolved.hostTier, resolved, model) : null;
  let engine: LlmEngine;
  try {
    engine = new LlmEngine(model, resolved, sharedHost);
  } catch (error) {
    sharedHost?.close();
    throw error;
  }
  try {
    await engine.warmUp();
  } catch (error) {
    await engine.close();
    throw error;
  }
  return engine;
}
