export { LoadedModel, ModelSpec, loadDefaultModel, loadModel, parseModelSpec } from './model-source';
export { ConvertOptions, ConvertResult, ModelFormat, convertModel } from './convert-model';
