export { ModelConfig, RopeScaling, headDimOf, kvDimOf } from './model-config';
export { LayerWeights, ModelWeights, QkvBiases } from './model-weights';
export { ModelChecksumError, ModelDownloadError, ModelFormatError, ModelNotFoundError } from './model-errors';
export {
  LLAMA2C_HEADER_BYTES,
  LLAMA2C_NORM_EPS,
  LLAMA2C_ROPE_THETA,
  llama2cFileBytes,
  validateLlama2cConfig,
} from './llama2c-header';
export { loadLlama2cCheckpoint, parseLlama2cCheckpoint, serializeLlama2cCheckpoint } from './llama2c-checkpoint';
export { legacyRopeTables } from './legacy-rope-tables';
export { Xoshiro128Random } from './xoshiro128-random';
export { SYNTHETIC_MODELS, createRandomModelWeights, createSyntheticModel, syntheticModelConfig } from './synthetic-models';
export { STORIES260K_BASE_URL, STORIES260K_FILES, STORIES260K_NAME, PinnedFile } from './stories260k-files';
export { fileSha256 } from './file-sha256';
export { VerifiedDownload, downloadVerifiedFile } from './verified-download';
export {
  DefaultModelResolverOptions,
  ModelDirSource,
  ResolvedModelDir,
  resolveDefaultModelDir,
} from './default-model-resolver';
export { findCheckpointFile, findTokenizerFile } from './model-files';
