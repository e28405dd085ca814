import { loadModel, LoadedModel } from '../model/model-source';
import { EngineOptions, resolveEngineOptions } from './engine-options';
import { LlmEngine } from './llm-engine';

/** Loads the model (unless given), builds the engine and compiles its default graphs. */
export async function createEngine(options: EngineOptions, preloaded?: LoadedModel): Promise<LlmEngine> {
  const resolved = resolveEngineOptions(options);
  const model = preloaded ?? loadModel(resolved.model);
  const engine = new LlmEngine(model, resolved);
  await engine.warmUp();
  return engine;
}
