export { GgufFile, GgufTensorInfo, GgufValue } from './gguf-file';
export { GgufVocabulary, ggufVocabularyFromTokenizerJson, serializeGgufModel } from './gguf-export';
export { LoadedGgufModel, loadGgufModel } from './gguf-model';
export { ggufTokenizerJson, loadGgufTokenizer } from './gguf-tokenizer';
