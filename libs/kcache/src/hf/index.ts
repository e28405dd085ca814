export { ChatTemplate } from './chat-template';
export { HfCheckpoint, isHfModelDir, loadHfCheckpoint } from './hf-checkpoint';
export { HfArchitecture, HfModelConfig, SUPPORTED_ARCHITECTURES, parseHfConfig } from './hf-config';
export { writeHfModel, HfExportOptions } from './hf-export';
export { LoadedHfModel, loadHfModel } from './hf-model';
export { HfTokenizer, TokenizerDefaults } from './hf-tokenizer';
export { interleavedToRotateHalf, rotateHalfToInterleaved } from './rope-layout';
export { SafetensorsDtype, SafetensorsFile, SafetensorsTensorInfo, serializeSafetensors } from './safetensors';
